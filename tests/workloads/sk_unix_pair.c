/* sk_unix_pair.c: workload with AF_UNIX socketpairs (stream, dgram, seqpacket)
 * holding queued data in both directions, a shut-down end, options (O_NONBLOCK,
 * SO_SNDBUF, SO_PASSCRED, SO_PEEK_OFF) and fds in flight (SCM_RIGHTS: a
 * regular file closed in the process, and a pipe end still open in it); checks
 * every bit of it after restore. */
#include "wl.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#define N_AB 20000 /* stream a->b */
#define N_BA 3000  /* stream b->a */

/* Receives one message; returns its length, *fd the fd passed with it or -1. */
static int recv_fd(int sk, char *buf, int len, int *fd)
{
	char cbuf[CMSG_SPACE(4 * sizeof(int))];
	struct iovec iov = {buf, len};
	struct msghdr mh = {
	    .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf, .msg_controllen = sizeof(cbuf)};
	int n = recvmsg(sk, &mh, MSG_DONTWAIT);

	*fd = -1;
	for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); n >= 0 && c; c = CMSG_NXTHDR(&mh, c))
		if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS)
			memcpy(fd, CMSG_DATA(c), sizeof(int));
	return n < 0 ? -errno : n;
}

static void check_unnamed(const char *name, int fd, int type)
{
	struct sockaddr_un sa;
	socklen_t len = sizeof(sa);
	int t = wl_sockopt(fd, SO_TYPE);

	wl_check(name,
		 t == type && getsockname(fd, (struct sockaddr *)&sa, &len) == 0 &&
		     len == sizeof(sa_family_t) && sa.sun_family == AF_UNIX,
		 "type %d (want %d), name length %u", t, type, len);
}

/* A message written on one end arrives at the other, both ways. */
static void check_link(const char *name, int a, int b)
{
	char buf[32] = {0};
	int n1, n2, n3, n4;

	n1 = send(a, "ping", 4, MSG_DONTWAIT);
	n2 = recv(b, buf, sizeof(buf), MSG_DONTWAIT);
	bool ok = n1 == 4 && n2 == 4 && !memcmp(buf, "ping", 4);
	n3 = send(b, "pong!", 5, MSG_DONTWAIT);
	n4 = recv(a, buf, sizeof(buf), MSG_DONTWAIT);
	ok = ok && n3 == 5 && n4 == 5 && !memcmp(buf, "pong!", 5);
	wl_check(name, ok, "sent %d got %d, sent %d got %d", n1, n2, n3, n4);
}

static const int dg_len[] = {1, 0, 100, 5000, 7};

int main(void)
{
	static unsigned char buf[N_AB + 100];
	int s[2], d[2], q[2], r[2], p[2], n, fd, sndbuf;
	char path[4096];

	wl_init();
	if (socketpair(AF_UNIX, SOCK_STREAM, 0, s) || socketpair(AF_UNIX, SOCK_DGRAM, 0, d) ||
	    socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK, 0, q) ||
	    socketpair(AF_UNIX, SOCK_STREAM, 0, r) || pipe(p))
		wl_die("socketpair: %s", strerror(errno));
	/* stream: a->b in pieces, b->a */
	fcntl(s[0], F_SETFL, O_NONBLOCK);
	n = 60000;
	setsockopt(s[0], SOL_SOCKET, SO_SNDBUF, &n, sizeof(n));
	sndbuf = wl_sockopt(s[0], SO_SNDBUF);
	wl_fill(buf, N_AB, 1);
	for (int off = 0; off < N_AB; off += 4000)
		if (write(s[0], buf + off, 4000) != 4000)
			wl_die("write s0: %s", strerror(errno));
	if (!wl_write_pattern(s[1], N_BA, 2))
		wl_die("write s1: %s", strerror(errno));
	n = 5;
	setsockopt(s[1], SOL_SOCKET, SO_PEEK_OFF, &n, sizeof(n));
	/* dgram: messages of several sizes (one empty) each way */
	for (int i = 0; i < 5; i++) {
		wl_fill(buf, dg_len[i], 10 + i);
		if (send(d[0], buf, dg_len[i], 0) != dg_len[i])
			wl_die("send d0 %d: %s", i, strerror(errno));
	}
	if (send(d[1], "back1", 5, 0) != 5 || send(d[1], "back-2", 6, 0) != 6)
		wl_die("send d1");
	n = 1;
	setsockopt(d[1], SOL_SOCKET, SO_PASSCRED, &n, sizeof(n));
	/* seqpacket: 3 records a->b, one b->a, then b shuts its sending side */
	if (send(q[0], "rec-one", 7, 0) != 7 || send(q[0], "rec-2", 5, 0) != 5 ||
	    send(q[0], "r3", 2, 0) != 2 || send(q[1], "reply", 5, 0) != 5)
		wl_die("send q");
	shutdown(q[1], SHUT_WR);
	/* fds in flight: a file closed here, a pipe end still open here */
	fd = open(wl_path("passed.txt", path, sizeof(path)), O_RDWR | O_CREAT | O_TRUNC, 0644);
	if (fd < 0 || write(fd, "0123456789", 10) != 10 || lseek(fd, 3, SEEK_SET) != 3)
		wl_die("passed.txt: %s", strerror(errno));
	wl_send_fd(r[0], "file", 4, fd);
	close(fd);
	if (write(r[0], "plain", 5) != 5)
		wl_die("write r0");
	wl_send_fd(r[0], "pipe", 4, p[1]);

	wl_ready();
	wl_wait_go();

	/* stream pair */
	check_unnamed("s0_name", s[0], SOCK_STREAM);
	check_unnamed("s1_name", s[1], SOCK_STREAM);
	n = fcntl(s[0], F_GETFL);
	wl_check("s0_nonblock", n & O_NONBLOCK, "flags %#x", n);
	n = fcntl(s[1], F_GETFL);
	wl_check("s1_blocking", !(n & O_NONBLOCK), "flags %#x", n);
	n = wl_sockopt(s[0], SO_SNDBUF);
	wl_check("s0_sndbuf", n == sndbuf, "SO_SNDBUF %d, expected %d", n, sndbuf);
	n = wl_sockopt(s[1], SO_PEEK_OFF);
	wl_check("s1_peek_off", n == 5, "SO_PEEK_OFF %d", n);
	n = -1;
	setsockopt(s[1], SOL_SOCKET, SO_PEEK_OFF, &n, sizeof(n));
	wl_check_queued("s_ab", s[1], N_AB, 1); /* s_ab_len, s_ab_data, s_ab_empty */
	wl_check_queued("s_ba", s[0], N_BA, 2);
	check_link("s_link", s[0], s[1]);

	/* dgram pair */
	check_unnamed("d0_name", d[0], SOCK_DGRAM);
	check_unnamed("d1_name", d[1], SOCK_DGRAM);
	n = wl_sockopt(d[1], SO_PASSCRED);
	wl_check("d1_passcred", n == 1, "SO_PASSCRED %d", n);
	for (int i = 0; i < 5; i++) {
		char name[32];
		memset(buf, 0xee, 6000);
		n = recv(d[1], buf, 6000, MSG_DONTWAIT);
		snprintf(name, sizeof(name), "d_msg%d", i);
		/* n == dg_len[i] first: wl_first_bad only for n >= 0 */
		wl_check(name, n == dg_len[i] && (int)wl_first_bad(buf, n, 10 + i) == n,
			 "got %d bytes (want %d), byte %d differs", n, dg_len[i],
			 n > 0 ? (int)wl_first_bad(buf, n, 10 + i) : 0);
	}
	wl_check("d_ab_empty", wl_revents(d[1], POLLIN) == 0, "extra datagram at d1");
	memset(buf, 0, 16);
	n = recv(d[0], buf, 16, MSG_DONTWAIT);
	wl_check("d_ba_1", n == 5 && !memcmp(buf, "back1", 5), "got %d '%.*s'", n, n > 0 ? n : 0,
		 buf);
	n = recv(d[0], buf, 16, MSG_DONTWAIT);
	wl_check("d_ba_2", n == 6 && !memcmp(buf, "back-2", 6), "got %d '%.*s'", n, n > 0 ? n : 0,
		 buf);
	wl_check("d_ba_empty", wl_revents(d[0], POLLIN) == 0, "extra datagram at d0");
	check_link("d_link", d[0], d[1]);

	/* seqpacket pair: records, shutdown */
	check_unnamed("q0_name", q[0], SOCK_SEQPACKET);
	n = fcntl(q[1], F_GETFL);
	wl_check("q1_nonblock", n & O_NONBLOCK, "flags %#x", n);
	{
		static const char *recs[] = {"rec-one", "rec-2", "r3"};
		char rb[32];
		for (int i = 0; i < 3; i++) {
			char name[32];
			memset(rb, 0, sizeof(rb));
			n = recv(q[1], rb, sizeof(rb), MSG_DONTWAIT);
			snprintf(name, sizeof(name), "q_rec%d", i);
			wl_check(name, n == (int)strlen(recs[i]) && !memcmp(rb, recs[i], n),
				 "got %d '%.*s'", n, n > 0 ? n : 0, rb);
		}
		wl_check("q_ab_empty", wl_revents(q[1], POLLIN) == 0, "extra record at q1");
		n = recv(q[0], rb, sizeof(rb), MSG_DONTWAIT);
		wl_check("q_ba", n == 5 && !memcmp(rb, "reply", 5), "got %d", n);
		errno = 0;
		n = recv(q[0], rb, sizeof(rb), MSG_DONTWAIT);
		wl_check("q_ba_eof", n == 0, "recv %d errno %d, expected EOF", n, errno);
		errno = 0;
		n = send(q[1], "x", 1, MSG_DONTWAIT | MSG_NOSIGNAL);
		wl_check("q1_shut_wr", n < 0 && errno == EPIPE, "send %d errno %d", n, errno);
		n = send(q[0], "still", 5, MSG_DONTWAIT | MSG_NOSIGNAL);
		int m = recv(q[1], rb, sizeof(rb), MSG_DONTWAIT);
		wl_check("q_ab_works", n == 5 && m == 5 && !memcmp(rb, "still", 5),
			 "sent %d got %d", n, m);
	}

	/* fds in flight */
	{
		char mb[16] = {0}, fb[16] = {0};
		int pfd;
		n = recv_fd(r[1], mb, 4, &pfd);
		wl_check("r_file_msg", n == 4 && !memcmp(mb, "file", 4) && pfd >= 0,
			 "got %d '%.4s' fd %d", n, mb, pfd);
		if (pfd >= 0) {
			int k = read(pfd, fb, sizeof(fb));
			wl_check("r_file_pos", k == 7 && !memcmp(fb, "3456789", 7),
				 "read %d '%.*s' from the passed file", k, k > 0 ? k : 0, fb);
			k = fcntl(pfd, F_GETFL);
			wl_check("r_file_flags", (k & O_ACCMODE) == O_RDWR, "flags %#x", k);
			close(pfd);
		}
		/* a reader taking the whole run gets the fd with it (where exactly it
		 * starts within the run is not kept: see sockets/unix.c) */
		memset(mb, 0, sizeof(mb));
		n = recv_fd(r[1], mb, sizeof(mb), &pfd);
		wl_check("r_pipe_msg", n == 9 && !memcmp(mb, "plainpipe", 9) && pfd >= 0,
			 "got %d '%.9s' fd %d", n, mb, pfd);
		if (pfd >= 0) {
			struct stat a, b;
			fstat(pfd, &a);
			fstat(p[1], &b);
			wl_check("r_pipe_same", a.st_ino == b.st_ino,
				 "passed pipe %lu, fd pipe %lu", (unsigned long)a.st_ino,
				 (unsigned long)b.st_ino);
			int k = write(pfd, "via", 3);
			int m = read(p[0], fb, sizeof(fb));
			wl_check("r_pipe_works", k == 3 && m == 3 && !memcmp(fb, "via", 3),
				 "write %d read %d", k, m);
			close(pfd);
		}
		wl_check("r_empty", wl_revents(r[1], POLLIN) == 0, "extra data at r1");
		check_link("r_link", r[0], r[1]);
	}
	wl_done();
}
