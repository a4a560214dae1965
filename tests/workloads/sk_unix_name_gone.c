/* sk_unix_name_gone.c: unix sockets whose socket file is no longer theirs:
 *   L: a stream listener bound to gone.sock (absolute path), with one
 *      connection accepted and data queued both ways, then gone.sock
 *      unlinked;
 *   D: a datagram socket bound to replaced.sock holding two datagrams from
 *      an unnamed socket, then its file unlinked and a regular file written
 *      in its place;
 *   Q: a seqpacket socket bound to dir/q.sock, then the file and dir
 *      removed;
 *   R: a datagram socket bound to the relative name rel.sock in sub/, its
 *      file then unlinked.
 * After go: every getsockname (and the accepted connection's, the client's
 * getpeername) is the name as bound; nothing exists at gone.sock, dir,
 * sub/rel.sock and replaced.sock is still the regular file with its text;
 * the queues hold what they held, with their boundaries; the listener
 * still accepts a connection made through its socket file (SIOCUNIXFILE),
 * as the original did. */
#include "wl.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>
#include <linux/sockios.h>

#ifndef SIOCUNIXFILE
#define SIOCUNIXFILE (SIOCPROTOPRIVATE + 0)
#endif

#define OTHER "another file now"

static int bound(int type, const struct sockaddr_un *sa, unsigned len)
{
	int fd = socket(AF_UNIX, type, 0);

	if (fd < 0 || bind(fd, (const struct sockaddr *)sa, len))
		wl_die("bind %s: %s", sa->sun_path, strerror(errno));
	return fd;
}

static void check_absent(const char *name, const char *path)
{
	struct stat st;
	int r = lstat(path, &st);

	wl_check(name, r && errno == ENOENT, "lstat %s: %d (%s)", path, r, strerror(errno));
}

/* A connection to l made through its socket file, as only the process can. */
static void check_accepts_by_file(int l)
{
	struct sockaddr_un sa;
	int file = ioctl(l, SIOCUNIXFILE), c = socket(AF_UNIX, SOCK_STREAM, 0), a = -1;
	char path[64], buf[8] = {0};

	snprintf(path, sizeof(path), "/proc/self/fd/%d", file);
	unsigned len = wl_unix_addr(&sa, path, false);
	if (file >= 0 && connect(c, (struct sockaddr *)&sa, len) == 0)
		a = accept(l, NULL, NULL);
	bool talk = a >= 0 && send(c, "hi", 2, 0) == 2 && recv(a, buf, sizeof(buf), 0) == 2;
	wl_check("listener_accepts_by_file", talk && !strcmp(buf, "hi"), "file %d accept %d (%s)",
		 file, a, strerror(errno));
	close(a);
	close(c);
	close(file);
}

static void check_dgram(const char *name, int fd, const char *want)
{
	char buf[64] = {0};
	ssize_t n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);

	wl_check(name, n == (ssize_t)strlen(want) && !memcmp(buf, want, n), "got %zd '%s'", n, buf);
}

int main(void)
{
	struct sockaddr_un sl, sd, sq, sr;
	unsigned ll, ld, lq, lr;
	char pl[4096], pd[4096], pq[4096], dir[4096], sub[4096], rel[4096], buf[64] = {0};
	int l, c, a, d, q, r, u;

	wl_init();
	ll = wl_unix_addr(&sl, wl_path("gone.sock", pl, sizeof(pl)), false);
	ld = wl_unix_addr(&sd, wl_path("replaced.sock", pd, sizeof(pd)), false);
	wl_path("dir", dir, sizeof(dir));
	lq = wl_unix_addr(&sq, wl_path("dir/q.sock", pq, sizeof(pq)), false);
	wl_path("sub", sub, sizeof(sub));
	lr = wl_unix_addr(&sr, "rel.sock", false);
	if (mkdir(dir, 0700) || mkdir(sub, 0700))
		wl_die("mkdir: %s", strerror(errno));

	l = bound(SOCK_STREAM, &sl, ll);
	c = socket(AF_UNIX, SOCK_STREAM, 0);
	if (listen(l, 4) || connect(c, (struct sockaddr *)&sl, ll) ||
	    (a = accept(l, NULL, NULL)) < 0)
		wl_die("listen/connect: %s", strerror(errno));
	if (!wl_write_pattern(c, 5000, 1) || !wl_write_pattern(a, 700, 2))
		wl_die("write: %s", strerror(errno));
	d = bound(SOCK_DGRAM, &sd, ld);
	u = socket(AF_UNIX, SOCK_DGRAM, 0);
	if (sendto(u, "one", 3, 0, (struct sockaddr *)&sd, ld) != 3 ||
	    sendto(u, "second", 6, 0, (struct sockaddr *)&sd, ld) != 6)
		wl_die("sendto: %s", strerror(errno));
	close(u);
	q = bound(SOCK_SEQPACKET, &sq, lq);
	if (chdir(sub))
		wl_die("chdir: %s", strerror(errno));
	r = bound(SOCK_DGRAM, &sr, lr);
	if (unlink("rel.sock") || chdir(".."))
		wl_die("unlink rel.sock: %s", strerror(errno));
	if (unlink(pl) || unlink(pd) || unlink(pq) || rmdir(dir))
		wl_die("unlink: %s", strerror(errno));
	wl_mkfile(pd, OTHER, strlen(OTHER), 0644);

	wl_ready();
	wl_wait_go();

	wl_check_unix_name("listener_name", l, false, &sl, ll);
	wl_check_unix_name("accepted_name", a, false, &sl, ll);
	wl_check_unix_name("client_peer", c, true, &sl, ll);
	wl_check_unix_name("dgram_name", d, false, &sd, ld);
	wl_check_unix_name("seqpacket_name", q, false, &sq, lq);
	wl_check_unix_name("relative_name", r, false, &sr, lr);
	check_absent("gone_sock_absent", pl);
	check_absent("dir_absent", dir);
	check_absent("rel_sock_absent", wl_path("sub/rel.sock", rel, sizeof(rel)));
	int fd = open(pd, O_RDONLY);
	ssize_t n = fd >= 0 ? read(fd, buf, sizeof(buf)) : -1;
	wl_check("replaced_file_kept", n == (ssize_t)strlen(OTHER) && !memcmp(buf, OTHER, n),
		 "read %zd", n);
	close(fd);
	check_dgram("dgram_first", d, "one");
	check_dgram("dgram_second", d, "second");
	wl_check_queued("accepted_queue", a, 5000, 1);
	wl_check_queued("client_queue", c, 700, 2);
	check_accepts_by_file(l);
	wl_done();
}
