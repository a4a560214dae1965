/* tree_unix.c: workload with AF_UNIX sockets connected ACROSS the processes
 * of a tree (a root P and two children C1, C2):
 *   1. a stream socketpair P <-> C1 with data in flight both ways;
 *   2. a seqpacket socketpair P <-> C2 with 3 records queued towards C2, one
 *      carrying (SCM_RIGHTS) the read end of a pipe of P, with data in that
 *      pipe; P closes its read end, so that end exists only in flight;
 *   3. a stream listener of P bound to "srv.sock", with a connection from C1
 *      and one from C2, both accepted by P, with data queued each way;
 *   4. a datagram socket of C2 bound to an abstract name, holding 2
 *      datagrams sent by an unbound datagram socket of C1 connected to it;
 *   5. one socket description (end A of a socketpair) open in both P and C1
 *      (inherited by fork), its peer B only in P, data queued each way;
 *   6. named sockets in two processes: P's "srv.sock" and C2's datagram
 *      socket bound to "c2.sock" (with one datagram queued).
 * After `go` each process checks what it holds (names, queued data, record
 * and datagram boundaries, the passed fd), then they talk: round trips on
 * the connections, more data through the passed pipe, a third datagram, a
 * flag set through A in C1 seen by P (and back), a new connection to the
 * listener. The processes order these steps through a MAP_SHARED control
 * block; every wait and read has a deadline, so a broken restore fails
 * instead of hanging. Children report through their own `wl:` lines and
 * their exit status, which P checks. */
#include "wl.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* stream P <-> C1 (1) */
#define SP_P2C 20000 /* seed 11 */
#define SP_C2P 3000  /* seed 12 */
#define SP_RT  5000  /* round trip after go, seed 13 */
/* seqpacket records P -> C2 (2) */
#define Q_LEN1	    100	 /* seed 21 */
#define Q_LEN3	    5000 /* seed 23 */
#define Q_FDMSG	    "carries-a-pipe"
#define PIPE_BEFORE 2000 /* seed 25 */
#define PIPE_AFTER  3000 /* seed 26 */
/* connections to srv.sock (3) */
#define A1_IN  4000 /* C1 -> P, seed 31 */
#define A1_OUT 2500 /* P -> C1, seed 32 */
#define A2_IN  1500 /* C2 -> P, seed 33 */
#define A2_OUT 700  /* P -> C2, seed 34 */
#define A1_RT  1000 /* seed 35 */
#define A2_RT  900  /* seed 36 */
/* datagrams C1 -> C2 (4) */
#define DG1	"dgram-one"
#define DG2_LEN 300 /* seed 41 */
#define DG3	"third-dgram"
/* shared description (5) */
#define SH_B2A	 1000 /* P writes B, C1 reads A, seed 51 */
#define SH_A2B	 600  /* C1 writes A, P reads B, seed 52 */
#define SH_AFTER 800  /* after go, seed 53 */

#define SETUP_TIME 10.0 /* seconds allowed for the setup steps */
#define CHECK_TIME 7.0	/* seconds allowed after go */

/* The control block, in MAP_SHARED memory: flags each set once to 1. */
struct ctl {
	volatile uint32_t c1_setup, c2_bound, c2_setup; /* before ready */
	volatile uint32_t c1_checked, c2_checked;	/* queues checked */
	volatile uint32_t c1_nonblock, p_cleared;	/* the shared description */
	volatile uint64_t a_ino;			/* C1's inode of A */
	volatile uint64_t pipe_ino;			/* C2's inode of the passed fd */
};

static struct ctl *ctl;
static pid_t root, c1, c2;
static int lsn, sp[2], sh[2], qp[2];
static double deadline;
static char abs_name[64]; /* without its leading NUL */

static void set_flag(volatile uint32_t *f)
{
	__atomic_store_n(f, 1, __ATOMIC_SEQ_CST);
}

/* Waits until *f is set or the time is past until; returns whether it is. */
static bool wait_flag(volatile uint32_t *f, double until)
{
	struct timespec ts = {0, 1000 * 1000};

	while (!__atomic_load_n(f, __ATOMIC_SEQ_CST)) {
		if (wl_now() > until)
			return false;
		nanosleep(&ts, NULL);
	}
	return true;
}

static bool check_flag(const char *name, volatile uint32_t *f)
{
	return wl_check(name, wait_flag(f, deadline),
			"the other process did not get there in time");
}

/* Milliseconds left until the deadline (0 when past it). */
static int ms_left(void)
{
	double left = deadline - wl_now();

	return left > 0 ? (int)(left * 1000) + 1 : 0;
}

/* Polls fd for POLLIN until the deadline: its revents (0 if none came). */
static int wait_in(int fd)
{
	struct pollfd pf = {.fd = fd, .events = POLLIN};

	return poll(&pf, 1, ms_left()) > 0 ? pf.revents : 0;
}

/* Reads up to n bytes, waiting for them until the deadline; stops at EOF or
 * an error. Returns the number read. */
static size_t read_until(int fd, void *buf, size_t n)
{
	size_t got = 0;

	while (got < n) {
		if (!wait_in(fd))
			break;
		ssize_t r = read(fd, (char *)buf + got, n - got);
		if (r <= 0)
			break;
		got += r;
	}
	return got;
}

/* Checks NAME: n bytes of pattern seed arrive on fd before the deadline. */
static void check_read(const char *name, int fd, size_t n, int seed)
{
	unsigned char *buf = calloc(1, n);
	size_t got = read_until(fd, buf, n);
	char tag[64];

	snprintf(tag, sizeof(tag), "%s_len", name);
	wl_check(tag, got == n, "read %zu of %zu bytes from fd %d in time", got, n, fd);
	snprintf(tag, sizeof(tag), "%s_data", name);
	wl_check_pattern(tag, buf, got, seed);
	free(buf);
}

/* Sends n bytes of pattern seed on fd and checks that they come back. */
static void round_trip(const char *name, int fd, size_t n, int seed)
{
	char tag[64];

	snprintf(tag, sizeof(tag), "%s_send", name);
	if (wl_check(tag, wl_write_pattern(fd, n, seed), "write: %s", strerror(errno)))
		check_read(name, fd, n, seed);
}

/* The other side of round_trip: reads n bytes and writes them back. */
static void echo(const char *name, int fd, size_t n)
{
	unsigned char *buf = calloc(1, n);
	size_t got = read_until(fd, buf, n);
	ssize_t put = got == n ? wl_write_full(fd, buf, n) : -1;

	wl_check(name, got == n && put == (ssize_t)n, "read %zu of %zu bytes, wrote back %zd", got,
		 n, put);
	free(buf);
}

/* wl_check_queued on fd with O_NONBLOCK set meanwhile: data that should be
 * queued but is not fails the check instead of blocking. */
static void check_queued(const char *name, int fd, size_t n, int seed)
{
	int fl = fcntl(fd, F_GETFL);

	fcntl(fd, F_SETFL, fl | O_NONBLOCK);
	wl_check_queued(name, fd, n, seed);
	fcntl(fd, F_SETFL, fl);
}

/* Checks NAME: getsockname (or getpeername) of fd is the address sa/len, or
 * unnamed (just the family) when sa is NULL. */
static void check_name(const char *name, int fd, bool peer, const struct sockaddr_un *sa,
		       socklen_t len)
{
	struct sockaddr_un got, none = {.sun_family = AF_UNIX};
	socklen_t glen = sizeof(got);
	int r;

	memset(&got, 0, sizeof(got));
	r = peer ? getpeername(fd, (struct sockaddr *)&got, &glen)
		 : getsockname(fd, (struct sockaddr *)&got, &glen);
	if (!sa) {
		sa = &none;
		len = sizeof(sa_family_t);
	}
	wl_check(name, r == 0 && glen == len && !memcmp(&got, sa, len),
		 "r %d (%s) len %u (want %u) path '%s'%s", r, r ? strerror(errno) : "ok", glen, len,
		 got.sun_path[0] ? got.sun_path : got.sun_path + 1,
		 got.sun_path[0] ? "" : " (abstract or none)");
}

static void check_is_socket_file(const char *name, const char *path)
{
	struct stat st;
	int r = stat(path, &st);

	wl_check(name, r == 0 && S_ISSOCK(st.st_mode), "stat %s: %d, mode %o", path, r,
		 r == 0 ? st.st_mode : 0);
}

static int connect_to(int type, const struct sockaddr_un *sa, socklen_t len)
{
	int fd = socket(AF_UNIX, type, 0);

	if (fd < 0 || connect(fd, (const struct sockaddr *)sa, len))
		wl_die("connect %s: %s", sa->sun_path[0] ? sa->sun_path : sa->sun_path + 1,
		       strerror(errno));
	return fd;
}

static int bound(int type, const struct sockaddr_un *sa, socklen_t len)
{
	int fd = socket(AF_UNIX, type, 0);

	if (fd < 0 || bind(fd, (const struct sockaddr *)sa, len))
		wl_die("bind %s: %s", sa->sun_path[0] ? sa->sun_path : sa->sun_path + 1,
		       strerror(errno));
	return fd;
}

/* Receives one record without waiting: its length (or -errno), the fds that
 * came with it (*nfds of them, the first in *fd, else -1) and msg_flags. */
static int recv_rec(int sk, void *buf, size_t len, int *fd, int *nfds, int *flags)
{
	char cbuf[CMSG_SPACE(4 * sizeof(int))];
	struct iovec iov = {buf, len};
	struct msghdr mh = {
	    .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf, .msg_controllen = sizeof(cbuf)};
	int n = recvmsg(sk, &mh, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);

	*fd = -1;
	*nfds = 0;
	*flags = n < 0 ? 0 : mh.msg_flags;
	for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); n >= 0 && c; c = CMSG_NXTHDR(&mh, c)) {
		if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
			continue;
		int k = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		if (k > 0 && *fd < 0)
			memcpy(fd, CMSG_DATA(c), sizeof(int));
		*nfds += k;
	}
	return n < 0 ? -errno : n;
}

/* Receives one datagram on sk (waiting until the deadline) and checks NAME:
 * it is the n bytes at want, from an unnamed sender. */
static void check_dgram(const char *name, int sk, const void *want, size_t n)
{
	static unsigned char buf[8192];
	struct sockaddr_un from;
	socklen_t flen = sizeof(from);
	int r = -1;

	memset(buf, 0, sizeof(buf));
	if (wait_in(sk))
		r = recvfrom(sk, buf, sizeof(buf), MSG_DONTWAIT, (struct sockaddr *)&from, &flen);
	wl_check(name, r == (int)n && !memcmp(buf, want, n) && flen <= sizeof(sa_family_t),
		 "got %d bytes (want %zu)%s, sender name length %u", r, n,
		 r == (int)n && memcmp(buf, want, n) ? " with other contents" : "", flen);
}

/* ---- child 1 ---- */

static void child1(void)
{
	struct sockaddr_un ssrv, sab;
	socklen_t lsrv = wl_unix_addr(&ssrv, "srv.sock", false),
		  lab = wl_unix_addr(&sab, abs_name, true);
	int me = sp[1], a = sh[0], conn, d, again, n;
	unsigned char pat[DG2_LEN];
	char buf[64];
	struct stat st;

	close(lsn);
	close(sp[0]);
	close(sh[1]);
	/* (1) and (5): data towards P */
	if (!wl_write_pattern(me, SP_C2P, 12) || !wl_write_pattern(a, SH_A2B, 52))
		wl_die("c1: write: %s", strerror(errno));
	/* (3) a connection to P's listener */
	conn = connect_to(SOCK_STREAM, &ssrv, lsrv);
	if (!wl_write_pattern(conn, A1_IN, 31))
		wl_die("c1: write conn: %s", strerror(errno));
	/* (4) datagrams to C2's abstract name */
	if (!wait_flag(&ctl->c2_bound, wl_now() + SETUP_TIME))
		wl_die("c1: child 2 did not bind its abstract name");
	d = connect_to(SOCK_DGRAM, &sab, lab);
	wl_fill(pat, DG2_LEN, 41);
	if (send(d, DG1, strlen(DG1), 0) != (ssize_t)strlen(DG1) ||
	    send(d, pat, DG2_LEN, 0) != DG2_LEN)
		wl_die("c1: send to the abstract name: %s", strerror(errno));
	set_flag(&ctl->c1_setup);

	wl_wait_go();
	deadline = wl_now() + CHECK_TIME;
	/* what was queued at the checkpoint */
	check_queued("c1_sp", me, SP_P2C, 11);
	check_name("c1_conn_peer", conn, true, &ssrv, lsrv);
	check_name("c1_conn_name", conn, false, NULL, 0);
	check_queued("c1_conn", conn, A1_OUT, 32);
	check_queued("c1_shared_a", a, SH_B2A, 51);
	check_name("c1_dgram_peer", d, true, &sab, lab);
	n = wl_sockopt(d, SO_TYPE);
	wl_check("c1_dgram_type", n == SOCK_DGRAM, "SO_TYPE %d", n);
	set_flag(&ctl->c1_checked);

	/* (1), (3): the connections to P live */
	echo("c1_sp_echo", me, SP_RT);
	echo("c1_conn_echo", conn, A1_RT);

	/* (5): the O_NONBLOCK set here shows in P, the one P clears shows here */
	n = fstat(a, &st);
	ctl->a_ino = n == 0 ? st.st_ino : 0;
	n = fcntl(a, F_GETFL);
	wl_check("c1_shared_set_nonblock", n >= 0 && fcntl(a, F_SETFL, n | O_NONBLOCK) == 0,
		 "fcntl: %s", strerror(errno));
	set_flag(&ctl->c1_nonblock);
	if (check_flag("c1_shared_wait_parent", &ctl->p_cleared))
		wl_check_fl("c1_shared_cleared_by_parent", a, O_NONBLOCK, 0);
	check_read("c1_shared_after", a, SH_AFTER, 53);

	/* (4): one more datagram, once C2 has checked its queue */
	if (check_flag("c1_wait_c2_checked", &ctl->c2_checked)) {
		n = send(d, DG3, strlen(DG3), MSG_DONTWAIT);
		wl_check("c1_dgram_send3", n == (int)strlen(DG3), "send %d: %s", n,
			 strerror(errno));
	}

	/* (3): a new connection to the listener */
	again = socket(AF_UNIX, SOCK_STREAM, 0);
	n = connect(again, (struct sockaddr *)&ssrv, lsrv);
	if (wl_check("c1_connect_again", n == 0, "connect srv.sock: %s", strerror(errno))) {
		n = send(again, "again", 5, MSG_NOSIGNAL);
		memset(buf, 0, sizeof(buf));
		size_t got = n == 5 ? read_until(again, buf, 7) : 0;
		wl_check("c1_again_talk", n == 5 && got == 7 && !memcmp(buf, "welcome", 7),
			 "sent %d, got %zu '%.*s'", n, got, (int)got, buf);
	}
	wl_done();
}

/* ---- child 2 ---- */

static void child2(void)
{
	struct sockaddr_un ssrv, sab, sc2;
	socklen_t lsrv = wl_unix_addr(&ssrv, "srv.sock", false),
		  lab = wl_unix_addr(&sab, abs_name, true);
	socklen_t lc2 = wl_unix_addr(&sc2, "c2.sock", false);
	static unsigned char buf[8192];
	int q = qp[1], ab, c2d, conn, tmp, n, pfd = -1, nfds, flags;

	close(lsn);
	close(sp[0]);
	close(sh[0]);
	close(sh[1]);
	close(qp[0]);
	/* (4) the abstract datagram socket C1 sends to */
	ab = bound(SOCK_DGRAM, &sab, lab);
	set_flag(&ctl->c2_bound);
	/* (6) a datagram socket on a path, with one datagram queued */
	c2d = bound(SOCK_DGRAM, &sc2, lc2);
	tmp = socket(AF_UNIX, SOCK_DGRAM, 0);
	if (tmp < 0 || sendto(tmp, "early", 5, 0, (struct sockaddr *)&sc2, lc2) != 5)
		wl_die("c2: send to c2.sock: %s", strerror(errno));
	close(tmp);
	/* (3) a connection to P's listener */
	conn = connect_to(SOCK_STREAM, &ssrv, lsrv);
	if (!wl_write_pattern(conn, A2_IN, 33))
		wl_die("c2: write conn: %s", strerror(errno));
	set_flag(&ctl->c2_setup);

	wl_wait_go();
	deadline = wl_now() + CHECK_TIME;
	/* (2) the records, their boundaries, the fd */
	n = wl_sockopt(q, SO_TYPE);
	wl_check("c2_q_type", n == SOCK_SEQPACKET, "SO_TYPE %d", n);
	n = recv_rec(q, buf, sizeof(buf), &pfd, &nfds, &flags);
	wl_check("c2_q_rec1", n == Q_LEN1 && nfds == 0 && !(flags & (MSG_TRUNC | MSG_CTRUNC)),
		 "got %d bytes (want %d), %d fds, flags %#x", n, Q_LEN1, nfds, flags);
	if (n > 0)
		wl_check_pattern("c2_q_rec1_data", buf, n, 21);
	if (pfd >= 0)
		close(pfd);
	memset(buf, 0, sizeof(buf));
	n = recv_rec(q, buf, sizeof(buf), &pfd, &nfds, &flags);
	wl_check("c2_q_rec2",
		 n == (int)strlen(Q_FDMSG) && !memcmp(buf, Q_FDMSG, n) && nfds == 1 && pfd >= 0 &&
		     !(flags & (MSG_TRUNC | MSG_CTRUNC)),
		 "got %d bytes '%.*s', %d fds (first %d), flags %#x", n, n > 0 ? n : 0, buf, nfds,
		 pfd, flags);
	int fd2 = pfd;
	n = recv_rec(q, buf, sizeof(buf), &pfd, &nfds, &flags);
	wl_check("c2_q_rec3", n == Q_LEN3 && nfds == 0 && !(flags & (MSG_TRUNC | MSG_CTRUNC)),
		 "got %d bytes (want %d), %d fds, flags %#x", n, Q_LEN3, nfds, flags);
	if (n > 0)
		wl_check_pattern("c2_q_rec3_data", buf, n, 23);
	if (pfd >= 0)
		close(pfd);
	n = wl_revents(q, POLLIN);
	wl_check("c2_q_empty", n == 0, "revents %#x after the 3 records", n);
	/* the passed pipe read end and what was in the pipe */
	if (fd2 >= 0) {
		struct stat st;
		n = fstat(fd2, &st);
		wl_check("c2_passed_is_pipe", n == 0 && S_ISFIFO(st.st_mode), "fstat %d mode %o", n,
			 n == 0 ? st.st_mode : 0);
		ctl->pipe_ino = n == 0 ? st.st_ino : 0; /* P compares it with its pipe */
		wl_check_fl("c2_passed_rdonly", fd2, O_ACCMODE, O_RDONLY);
		check_queued("c2_pipe_before", fd2, PIPE_BEFORE, 25);
	}
	/* (3) the connection to srv.sock */
	check_name("c2_conn_peer", conn, true, &ssrv, lsrv);
	check_name("c2_conn_name", conn, false, NULL, 0);
	check_queued("c2_conn", conn, A2_OUT, 34);
	/* (4) the two datagrams from C1 */
	check_name("c2_abstract_name", ab, false, &sab, lab);
	wl_fill(buf, DG2_LEN, 41);
	check_dgram("c2_dgram1", ab, DG1, strlen(DG1));
	check_dgram("c2_dgram2", ab, buf, DG2_LEN);
	n = wl_revents(ab, POLLIN);
	wl_check("c2_dgram_empty", n == 0, "revents %#x after the 2 datagrams", n);
	/* (6) the socket bound to c2.sock and its datagram */
	check_name("c2_path_name", c2d, false, &sc2, lc2);
	check_is_socket_file("c2_path_file", "c2.sock");
	check_dgram("c2_path_early", c2d, "early", 5);
	n = wl_revents(c2d, POLLIN);
	wl_check("c2_path_empty", n == 0, "revents %#x after its datagram", n);
	set_flag(&ctl->c2_checked);

	/* talk: the connection, the pipe, C1's third datagram, c2.sock by name */
	echo("c2_conn_echo", conn, A2_RT);
	if (fd2 >= 0)
		check_read("c2_pipe_after", fd2, PIPE_AFTER, 26);
	check_dgram("c2_dgram3", ab, DG3, strlen(DG3));
	tmp = socket(AF_UNIX, SOCK_DGRAM, 0);
	n = sendto(tmp, "late", 4, 0, (struct sockaddr *)&sc2, lc2);
	wl_check("c2_path_send", n == 4, "sendto c2.sock: %d (%s)", n, strerror(errno));
	check_dgram("c2_path_late", c2d, "late", 4);
	wl_done();
}

/* ---- the root ---- */

static void kill_children(void)
{
	if (c1 > 0)
		kill(c1, SIGKILL);
	if (c2 > 0)
		kill(c2, SIGKILL);
}

/* Accepts one connection within the deadline: the fd, or -1. */
static int accept_in_time(void)
{
	if (wait_in(lsn) & POLLIN)
		return accept4(lsn, NULL, NULL, SOCK_CLOEXEC);
	errno = ETIMEDOUT;
	return -1;
}

static pid_t peer_pid(int fd)
{
	struct ucred cr;
	socklen_t len = sizeof(cr);

	return getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cr, &len) ? -1 : cr.pid;
}

/* Checks NAME: child pid exits with status 0 before the deadline (plus a
 * margin for its own); kills it otherwise. */
static void reap(const char *name, pid_t pid)
{
	struct timespec ts = {0, 2 * 1000 * 1000};
	int st = 0;
	pid_t r;

	while ((r = waitpid(pid, &st, WNOHANG)) == 0 && wl_now() < deadline + 2)
		nanosleep(&ts, NULL);
	if (r == 0) {
		kill(pid, SIGKILL);
		waitpid(pid, &st, 0);
		wl_check(name, false, "child %d did not end in time (killed)", pid);
		return;
	}
	wl_check(name, r == pid && WIFEXITED(st) && WEXITSTATUS(st) == 0,
		 "waitpid %d: %d, status 0x%x", pid, r, st);
}

int main(void)
{
	struct sockaddr_un ssrv;
	socklen_t lsrv = wl_unix_addr(&ssrv, "srv.sock", false);
	static unsigned char buf[Q_LEN3];
	int pp[2], a1 = -1, a2 = -1, a3, n;
	struct stat st;

	wl_init();
	signal(SIGPIPE, SIG_IGN); /* a broken peer shows as EPIPE, a failed check */
	root = getpid();
	snprintf(abs_name, sizeof(abs_name), "cryo-tree-unix-%d", root);
	ctl = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (ctl == MAP_FAILED)
		wl_die("mmap: %s", strerror(errno));
	unlink("srv.sock");
	unlink("c2.sock");
	lsn = bound(SOCK_STREAM, &ssrv, lsrv);
	if (listen(lsn, 8))
		wl_die("listen: %s", strerror(errno));
	/* sh[0] is A, the end P and C1 share; sh[1] is B */
	if (socketpair(AF_UNIX, SOCK_STREAM, 0, sp) || socketpair(AF_UNIX, SOCK_STREAM, 0, sh))
		wl_die("socketpair: %s", strerror(errno));
	c1 = fork();
	if (c1 < 0)
		wl_die("fork: %s", strerror(errno));
	if (c1 == 0)
		child1();
	close(sp[1]);
	if (socketpair(AF_UNIX, SOCK_SEQPACKET, 0, qp)) {
		kill_children();
		wl_die("socketpair: %s", strerror(errno));
	}
	c2 = fork();
	if (c2 < 0) {
		kill_children();
		wl_die("fork: %s", strerror(errno));
	}
	if (c2 == 0)
		child2();
	close(qp[1]);

	/* (2) the records to C2, the pipe read end in flight with its data */
	if (pipe2(pp, O_CLOEXEC) || !wl_write_pattern(pp[1], PIPE_BEFORE, 25)) {
		kill_children();
		wl_die("pipe: %s", strerror(errno));
	}
	wl_fill(buf, Q_LEN1, 21);
	if (send(qp[0], buf, Q_LEN1, 0) != Q_LEN1) {
		kill_children();
		wl_die("send rec1: %s", strerror(errno));
	}
	wl_send_fd(qp[0], Q_FDMSG, strlen(Q_FDMSG), pp[0]);
	close(pp[0]); /* the read end now lives only in the queue */
	wl_fill(buf, Q_LEN3, 23);
	if (send(qp[0], buf, Q_LEN3, 0) != Q_LEN3) {
		kill_children();
		wl_die("send rec3: %s", strerror(errno));
	}
	/* (1) and (5): data towards C1 */
	if (!wl_write_pattern(sp[0], SP_P2C, 11) || !wl_write_pattern(sh[1], SH_B2A, 51)) {
		kill_children();
		wl_die("write: %s", strerror(errno));
	}
	/* (3) accept C1's and C2's connections, told apart by SO_PEERCRED */
	deadline = wl_now() + SETUP_TIME;
	for (int i = 0; i < 2; i++) {
		int fd = accept_in_time();
		pid_t who = fd >= 0 ? peer_pid(fd) : -1;
		if (who == c1 && a1 < 0)
			a1 = fd;
		else if (who == c2 && a2 < 0)
			a2 = fd;
		else {
			kill_children();
			wl_die("accept %d: %s, peer pid %d", fd, strerror(errno), who);
		}
	}
	if (!wl_write_pattern(a1, A1_OUT, 32) || !wl_write_pattern(a2, A2_OUT, 34)) {
		kill_children();
		wl_die("write a1/a2: %s", strerror(errno));
	}
	if (!wait_flag(&ctl->c1_setup, deadline) || !wait_flag(&ctl->c2_setup, deadline)) {
		kill_children();
		wl_die("the children did not set up in time (%u %u)", ctl->c1_setup, ctl->c2_setup);
	}
	wl_ready();
	wl_wait_go();
	deadline = wl_now() + CHECK_TIME;

	/* (3), (6): the listener and the accepted connections */
	check_name("p_listener_name", lsn, false, &ssrv, lsrv);
	n = wl_sockopt(lsn, SO_ACCEPTCONN);
	wl_check("p_listener_listening", n == 1, "SO_ACCEPTCONN %d", n);
	check_is_socket_file("p_listener_file", "srv.sock");
	n = wl_revents(lsn, POLLIN);
	wl_check("p_listener_no_pending", n == 0, "revents %#x", n);
	check_name("p_a1_name", a1, false, &ssrv, lsrv);
	check_name("p_a1_peer", a1, true, NULL, 0);
	check_name("p_a2_name", a2, false, &ssrv, lsrv);
	check_name("p_a2_peer", a2, true, NULL, 0);
	check_queued("p_a1", a1, A1_IN, 31);
	check_queued("p_a2", a2, A2_IN, 33);
	/* (1) */
	check_queued("p_sp", sp[0], SP_C2P, 12);
	/* (5) */
	check_queued("p_shared_b", sh[1], SH_A2B, 52);
	/* (2) P's ends */
	n = wl_sockopt(qp[0], SO_TYPE);
	wl_check("p_q_type", n == SOCK_SEQPACKET, "SO_TYPE %d", n);
	n = wl_revents(qp[0], POLLIN);
	wl_check("p_q_empty", n == 0, "revents %#x", n);
	n = fstat(pp[1], &st);
	wl_check("p_pipe_w", n == 0 && S_ISFIFO(st.st_mode), "fstat %d mode %o", n,
		 n == 0 ? st.st_mode : 0);
	wl_check_fl("p_pipe_w_flags", pp[1], O_ACCMODE | O_NONBLOCK, O_WRONLY);

	/* (1), (3): round trips once C1 has checked its queues */
	if (check_flag("p_wait_c1_checked", &ctl->c1_checked)) {
		round_trip("p_sp_rt", sp[0], SP_RT, 13);
		round_trip("p_a1_rt", a1, A1_RT, 35);
	}
	/* (3), (2): once C2 has checked its queues, a round trip, more pipe data */
	if (check_flag("p_wait_c2_checked", &ctl->c2_checked)) {
		n = fstat(pp[1], &st);
		wl_check("p_pipe_passed_to_c2", n == 0 && st.st_ino == ctl->pipe_ino,
			 "P's pipe is inode %lu, the fd C2 got %lu",
			 n == 0 ? (unsigned long)st.st_ino : 0, (unsigned long)ctl->pipe_ino);
		round_trip("p_a2_rt", a2, A2_RT, 36);
		wl_check("p_pipe_write_after", wl_write_pattern(pp[1], PIPE_AFTER, 26), "write: %s",
			 strerror(errno));
	}
	/* (5): one description: C1 set O_NONBLOCK on A, P sees it, and clears it */
	if (check_flag("p_wait_c1_nonblock", &ctl->c1_nonblock)) {
		n = fstat(sh[0], &st);
		wl_check("p_shared_same_inode", n == 0 && st.st_ino == ctl->a_ino,
			 "inode %lu in P, %lu in C1", n == 0 ? (unsigned long)st.st_ino : 0,
			 (unsigned long)ctl->a_ino);
		wl_check_fl("p_shared_nonblock_from_c1", sh[0], O_NONBLOCK, O_NONBLOCK);
		n = fcntl(sh[0], F_GETFL);
		fcntl(sh[0], F_SETFL, n & ~O_NONBLOCK);
		set_flag(&ctl->p_cleared);
		wl_check("p_shared_write_b", wl_write_pattern(sh[1], SH_AFTER, 53), "write: %s",
			 strerror(errno));
	}
	/* (3): the listener takes a new connection from C1 */
	a3 = accept_in_time();
	if (wl_check("p_listener_accepts", a3 >= 0, "no new connection in time (%s)",
		     strerror(errno))) {
		pid_t who = peer_pid(a3);
		wl_check("p_again_from_c1", who == c1, "peer pid %d, C1 is %d", who, c1);
		char msg[8] = {0};
		size_t got = read_until(a3, msg, 5);
		n = send(a3, "welcome", 7, MSG_NOSIGNAL);
		wl_check("p_again_talk", got == 5 && !memcmp(msg, "again", 5) && n == 7,
			 "got %zu '%.*s', sent %d", got, (int)got, msg, n);
		close(a3);
	}

	reap("p_child1", c1);
	reap("p_child2", c2);
	wl_done();
}
