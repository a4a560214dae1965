/* sk_unix_seqpacket.c: SOCK_SEQPACKET where the other workloads test
 * SOCK_STREAM, with what only records have:
 *   A: a connection accepted from a listener on a path, holding towards
 *      the server the records "r1" (sent with MSG_EOR), an empty record
 *      and a 3000-byte one, and towards the client "back";
 *   B: a socketpair end whose last record queued is empty, after "x";
 *   C: a socketpair end holding "last" whose peer then shut down its
 *      sending side (shutdown(SHUT_WR));
 *   D: a connection accepted from a listener whose socket file was
 *      unlinked, holding "gone" towards the server;
 *   E: a pair end holding "ab" and "cd" with SO_PEEK_OFF at 2 (past the
 *      first record: a peek gives "cd").
 * After go: every record comes back whole, in order, with the same
 * msg_flags as the kernel gives such a record here (probed on a fresh pair
 * before the checkpoint; MSG_EOR is not reported by unix sockets), empty
 * ones as empty; then nothing more (EAGAIN), C's reader then gets end of
 * file; the listeners still accept; A and D's ends still talk both ways. */
#include "wl.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

static int eor_flags; /* what recvmsg gives for a record sent with MSG_EOR */

static void sendrec(int fd, const void *data, size_t len, int flags)
{
	if (send(fd, data, len, flags) != (ssize_t)len)
		wl_die("send: %s", strerror(errno));
}

/* Receives one record: its length (-1: none), flags in *flags. */
static ssize_t recvrec(int fd, void *buf, size_t len, int *flags)
{
	struct iovec iov = {buf, len};
	struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1};
	ssize_t n = recvmsg(fd, &mh, MSG_DONTWAIT);

	*flags = mh.msg_flags;
	return n;
}

static void probe_eor(void)
{
	int sv[2];
	char c;

	if (socketpair(AF_UNIX, SOCK_SEQPACKET, 0, sv))
		wl_die("socketpair: %s", strerror(errno));
	sendrec(sv[0], "p", 1, MSG_EOR);
	if (recvrec(sv[1], &c, 1, &eor_flags) != 1)
		wl_die("probe: %s", strerror(errno));
	close(sv[0]);
	close(sv[1]);
}

static void check_rec(const char *name, int fd, const void *want, size_t len)
{
	static char buf[4096];
	int flags;
	ssize_t n = recvrec(fd, buf, sizeof(buf), &flags);

	wl_check(name, n == (ssize_t)len && !memcmp(buf, want, len) && flags == eor_flags,
		 "got %zd bytes (want %zu), flags %#x (want %#x)", n, len, flags, eor_flags);
}

static void check_none(const char *name, int fd)
{
	char c;
	int flags;
	ssize_t n = recvrec(fd, &c, 1, &flags);

	wl_check(name, n < 0 && errno == EAGAIN, "recv gave %zd (%s)", n, strerror(errno));
}

static int seq_listener(const struct sockaddr_un *sa, unsigned len)
{
	int l = socket(AF_UNIX, SOCK_SEQPACKET, 0);

	if (l < 0 || bind(l, (const struct sockaddr *)sa, len) || listen(l, 4))
		wl_die("listen: %s", strerror(errno));
	return l;
}

static int seq_connect(const struct sockaddr_un *sa, unsigned len, int l, int *a)
{
	int c = socket(AF_UNIX, SOCK_SEQPACKET, 0);

	if (c < 0 || connect(c, (const struct sockaddr *)sa, len) ||
	    (*a = accept(l, NULL, NULL)) < 0)
		wl_die("connect: %s", strerror(errno));
	return c;
}

static void check_talk(const char *name, int x, int y)
{
	char buf[8] = {0};
	bool ok =
	    send(x, "hey", 3, MSG_NOSIGNAL) == 3 && recv(y, buf, sizeof(buf), MSG_DONTWAIT) == 3 &&
	    send(y, "ho", 2, MSG_NOSIGNAL) == 2 && recv(x, buf, sizeof(buf), MSG_DONTWAIT) == 2;
	wl_check(name, ok, "%s", strerror(errno));
}

static void check_accepts(const char *name, int l, const struct sockaddr_un *sa, unsigned len)
{
	int a = -1, c = socket(AF_UNIX, SOCK_SEQPACKET, 0);
	struct pollfd pf = {l, POLLIN, 0};

	if (connect(c, (const struct sockaddr *)sa, len) == 0 && poll(&pf, 1, 2000) == 1)
		a = accept(l, NULL, NULL);
	wl_check(name, a >= 0, "%s", strerror(errno));
	close(a);
	close(c);
}

int main(void)
{
	struct sockaddr_un sa, sd;
	char path[4096], gone[4096];
	static unsigned char big[3000];
	int la, ld, ca, aa, cd, ad, b[2], c[2], e[2], fl;

	wl_init();
	probe_eor();
	wl_fill(big, sizeof(big), 21);
	unsigned lena = wl_unix_addr(&sa, wl_path("seq.sock", path, sizeof(path)), false);
	unsigned lend = wl_unix_addr(&sd, wl_path("seq-gone.sock", gone, sizeof(gone)), false);
	la = seq_listener(&sa, lena);
	ca = seq_connect(&sa, lena, la, &aa);
	sendrec(ca, "r1", 2, MSG_EOR);
	sendrec(ca, "", 0, 0);
	sendrec(ca, big, sizeof(big), 0);
	sendrec(aa, "back", 4, 0);
	if (socketpair(AF_UNIX, SOCK_SEQPACKET, 0, b) ||
	    socketpair(AF_UNIX, SOCK_SEQPACKET, 0, c) || socketpair(AF_UNIX, SOCK_SEQPACKET, 0, e))
		wl_die("socketpair: %s", strerror(errno));
	sendrec(b[1], "x", 1, 0);
	sendrec(b[1], "", 0, 0);
	sendrec(c[1], "last", 4, 0);
	shutdown(c[1], SHUT_WR);
	ld = seq_listener(&sd, lend);
	cd = seq_connect(&sd, lend, ld, &ad);
	sendrec(cd, "gone", 4, 0);
	unlink(gone);
	sendrec(e[1], "ab", 2, 0);
	sendrec(e[1], "cd", 2, 0);
	wl_setopt(e[0], SOL_SOCKET, SO_PEEK_OFF, 2);

	wl_ready();
	wl_wait_go();

	check_rec("a_r1", aa, "r1", 2);
	check_rec("a_empty", aa, "", 0);
	check_rec("a_big", aa, big, sizeof(big));
	check_none("a_no_more", aa);
	check_rec("a_back", ca, "back", 4);
	check_none("a_client_no_more", ca);
	check_rec("b_x", b[0], "x", 1);
	check_rec("b_empty_last", b[0], "", 0);
	check_none("b_no_more", b[0]);
	check_rec("c_last", c[0], "last", 4);
	char ch;
	ssize_t n = recv(c[0], &ch, 1, MSG_DONTWAIT);
	wl_check("c_eof", n == 0, "recv gave %zd (%s)", n, strerror(errno));
	check_rec("d_gone", ad, "gone", 4);
	wl_check_unix_name("d_name", ld, false, &sd, lend);
	char pk[4] = {0};
	n = recv(e[0], pk, sizeof(pk), MSG_PEEK | MSG_DONTWAIT);
	wl_check("e_peek_off", n == 2 && !memcmp(pk, "cd", 2) && wl_sockopt(e[0], SO_PEEK_OFF) == 4,
		 "peek gave %zd '%s', SO_PEEK_OFF %d", n, pk, wl_sockopt(e[0], SO_PEEK_OFF));
	fl = wl_sockopt(aa, SO_TYPE);
	wl_check("a_type", fl == SOCK_SEQPACKET, "SO_TYPE %d", fl);
	check_talk("a_talks", ca, aa);
	check_talk("d_talks", cd, ad);
	check_accepts("listener_accepts", la, &sa, lena);
	wl_done();
}
