/* sk_unix_dgram_gone.c: datagrams queued from senders that are gone. A
 * datagram socket R bound to r.sock holds, in order: one from a socket
 * bound to s1.sock (closed, its socket file left behind), one from s2.sock
 * (closed, file unlinked), one from the abstract name ...s3 (closed), one
 * from an unnamed socket (closed), one from the relative name rel5.sock
 * (closed, unlinked). A socketpair end P0 holds two datagrams its other end
 * sent before it was closed. After go: each datagram comes with its
 * sender's address exactly as before (an unnamed sender: address length
 * 0), in order; s1.sock is still the old stale file, s2.sock and rel5.sock
 * do not exist (nor /tmp/rel5.sock); P0 gives its two datagrams (address
 * length 0), then a send fails with ECONNREFUSED, as the original's does.
 * Q0, the end of another pair whose other end was closed with nothing
 * queued, refuses sends the same way. N, bound to n.sock, holds "early"
 * from an unnamed socket, then was connected to M (bound to m.sock),
 * which sent "m-data" and was closed: both come back with their
 * addresses, then N's sends are refused with ECONNREFUSED. */
#include "wl.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

struct sender {
	const char *data;
	const char *name; /* NULL: unnamed */
	bool abstract, relative, unlink_after;
	struct sockaddr_un sa;
	unsigned len;
};

static struct sender senders[] = {
    {"from-s1", "s1.sock", false, false, false, {0}, 0},
    {"from-s2", "s2.sock", false, false, true, {0}, 0},
    {"from-s3", "sk_unix_dgram_gone.s3", true, false, false, {0}, 0},
    {"from-unnamed", NULL, false, false, false, {0}, 0},
    {"from-rel5", "rel5.sock", false, true, true, {0}, 0},
};
#define NR_SENDERS (sizeof(senders) / sizeof(senders[0]))

static void send_gone(struct sender *s, const struct sockaddr_un *to, unsigned tolen)
{
	char path[4096];
	int fd = socket(AF_UNIX, SOCK_DGRAM, 0);

	if (s->name && !s->abstract && !s->relative)
		s->len = wl_unix_addr(&s->sa, wl_path(s->name, path, sizeof(path)), false);
	else if (s->name)
		s->len = wl_unix_addr(&s->sa, s->name, s->abstract); /* relative: in the cwd */
	if (fd < 0 || (s->name && bind(fd, (struct sockaddr *)&s->sa, s->len)) ||
	    sendto(fd, s->data, strlen(s->data), 0, (const struct sockaddr *)to, tolen) !=
		(ssize_t)strlen(s->data))
		wl_die("sender %s: %s", s->data, strerror(errno));
	close(fd);
	if (s->unlink_after && unlink(s->sa.sun_path))
		wl_die("unlink: %s", strerror(errno));
}

static void check_from(const char *name, int fd, const char *data, const struct sockaddr_un *sa,
		       unsigned len)
{
	struct sockaddr_un from;
	socklen_t flen = sizeof(from);
	char buf[32] = {0}, tag[64];
	ssize_t n = recvfrom(fd, buf, sizeof(buf), MSG_DONTWAIT, (struct sockaddr *)&from, &flen);

	snprintf(tag, sizeof(tag), "%s_data", name);
	wl_check(tag, n == (ssize_t)strlen(data) && !memcmp(buf, data, n), "got %zd '%s'", n, buf);
	snprintf(tag, sizeof(tag), "%s_address", name);
	wl_check(tag, flen == len && (!len || !memcmp(&from, sa, len)), "length %u (want %u) '%s'",
		 flen, len, flen > 2 ? from.sun_path + !from.sun_path[0] : "");
}

int main(void)
{
	struct sockaddr_un sr;
	char path[4096], tmp[64];
	int r, p[2], q[2], nn, mm, un;
	struct stat st;

	wl_init();
	unsigned lr = wl_unix_addr(&sr, wl_path("r.sock", path, sizeof(path)), false);
	r = socket(AF_UNIX, SOCK_DGRAM, 0);
	if (r < 0 || bind(r, (struct sockaddr *)&sr, lr))
		wl_die("bind: %s", strerror(errno));
	for (size_t i = 0; i < NR_SENDERS; i++)
		send_gone(&senders[i], &sr, lr);
	if (socketpair(AF_UNIX, SOCK_DGRAM, 0, p) || send(p[1], "pair-1", 6, 0) != 6 ||
	    send(p[1], "pair-2", 6, 0) != 6)
		wl_die("socketpair: %s", strerror(errno));
	close(p[1]);
	if (socketpair(AF_UNIX, SOCK_DGRAM, 0, q))
		wl_die("socketpair: %s", strerror(errno));
	close(q[1]);
	struct sockaddr_un sn, sm;
	char pn[4096], pm[4096];
	unsigned ln = wl_unix_addr(&sn, wl_path("n.sock", pn, sizeof(pn)), false);
	unsigned lm = wl_unix_addr(&sm, wl_path("m.sock", pm, sizeof(pm)), false);
	nn = socket(AF_UNIX, SOCK_DGRAM, 0);
	mm = socket(AF_UNIX, SOCK_DGRAM, 0);
	un = socket(AF_UNIX, SOCK_DGRAM, 0);
	if (bind(nn, (struct sockaddr *)&sn, ln) || bind(mm, (struct sockaddr *)&sm, lm) ||
	    sendto(un, "early", 5, 0, (struct sockaddr *)&sn, ln) != 5 ||
	    connect(nn, (struct sockaddr *)&sm, lm) ||
	    sendto(mm, "m-data", 6, 0, (struct sockaddr *)&sn, ln) != 6)
		wl_die("n/m: %s", strerror(errno));
	close(un);
	close(mm);
	if (lstat(senders[0].sa.sun_path, &st))
		wl_die("s1.sock: %s", strerror(errno));
	ino_t stale = st.st_ino;

	wl_ready();
	wl_wait_go();

	for (size_t i = 0; i < NR_SENDERS; i++)
		check_from(senders[i].data, r, senders[i].data, &senders[i].sa, senders[i].len);
	wl_check("s1_stale_file_kept", !lstat(senders[0].sa.sun_path, &st) && st.st_ino == stale,
		 "lstat: %s", strerror(errno));
	wl_check("s2_absent", lstat(senders[1].sa.sun_path, &st) && errno == ENOENT, "exists");
	wl_check("rel5_absent", lstat("rel5.sock", &st) && errno == ENOENT, "exists");
	snprintf(tmp, sizeof(tmp), "/tmp/rel5.sock");
	wl_check("tmp_rel5_absent", lstat(tmp, &st) && errno == ENOENT, "exists");
	check_from("pair_first", p[0], "pair-1", NULL, 0);
	check_from("pair_second", p[0], "pair-2", NULL, 0);
	ssize_t n = send(p[0], "x", 1, MSG_DONTWAIT);
	wl_check("pair_send_refused", n < 0 && errno == ECONNREFUSED, "send gave %zd (%s)", n,
		 strerror(errno));
	n = send(q[0], "x", 1, MSG_DONTWAIT);
	wl_check("empty_pair_send_refused", n < 0 && errno == ECONNREFUSED, "send gave %zd (%s)", n,
		 strerror(errno));
	wl_check_unix_name("n_name", nn, false, &sn, ln);
	check_from("n_early", nn, "early", NULL, 0);
	check_from("n_from_m", nn, "m-data", &sm, lm);
	n = send(nn, "x", 1, MSG_DONTWAIT);
	wl_check("n_send_refused", n < 0 && errno == ECONNREFUSED, "send gave %zd (%s)", n,
		 strerror(errno));
	wl_done();
}
