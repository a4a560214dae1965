/* sk_unix_backlog.c: unix listeners with connections waiting in their
 * backlog, not accepted yet, their clients in the tree:
 *   L: a stream listener on a path, with one connection accepted before
 *      (data queued both ways), then waiting: three clients of a child C
 *      (c1 sent 3000 bytes, c2 nothing and is O_NONBLOCK, c3 sent "third"
 *      with a pipe's read end in flight, the pipe holding "piped") and one
 *      of the root itself (c4 sent "root's");
 *   Q: a seqpacket listener on an abstract name with two clients of C
 *      waiting (q1 sent "m1" and "m2", q2 sent "solo");
 *   and last on L, c7, made by the root before the fork (so one
 *      description held by both processes), which sent "shared".
 * After go, the root accepts: the connections come in backlog order, each
 * with what its client sent (record boundaries kept), then nothing more
 * waits; each connection then reads the "ping-N" its client sends after go
 * and answers "reply-N", which the client checks, so every client still
 * talks to its own server end (c1's reply reported by an epoll of C that
 * watches c1 with data 0x77); c7's ping comes from C's fd and the reply
 * is read on the root's fd (still one description). C checks its clients'
 * peer names and c2's O_NONBLOCK, and reports by its exit status. */
#include "wl.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#define C1_LEN 3000

static struct sockaddr_un sl, sq;
static unsigned ll, lq;

static int client(int type, const struct sockaddr_un *sa, unsigned len, const char *data)
{
	int fd = socket(AF_UNIX, type, 0);
	struct timeval tv = {5, 0};

	if (fd < 0 || connect(fd, (const struct sockaddr *)sa, len) ||
	    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)))
		wl_die("connect: %s", strerror(errno));
	if (data && send(fd, data, strlen(data), 0) != (ssize_t)strlen(data))
		wl_die("send: %s", strerror(errno));
	return fd;
}

/* After go, in C: each client pings, then reads its own reply. */
static void talk(const char *name, int fd, int n, int ep)
{
	char want[16], buf[16] = {0};

	snprintf(want, sizeof(want), "ping-%d", n);
	if (send(fd, want, strlen(want), MSG_NOSIGNAL) != (ssize_t)strlen(want)) {
		wl_check(name, false, "send: %s", strerror(errno));
		return;
	}
	snprintf(want, sizeof(want), "reply-%d", n);
	struct pollfd pf = {fd, POLLIN, 0};
	struct epoll_event ev = {0};
	bool ready = ep >= 0 ? epoll_wait(ep, &ev, 1, 5000) == 1 : poll(&pf, 1, 5000) == 1;
	if (ep >= 0)
		wl_check("c1_epoll_reports", ready && ev.data.u64 == 0x77 && (ev.events & EPOLLIN),
			 "ready %d data %#llx events %#x", ready, (unsigned long long)ev.data.u64,
			 ev.events);
	ssize_t got = ready ? recv(fd, buf, sizeof(buf) - 1, MSG_DONTWAIT) : -1;
	wl_check(name, got == (ssize_t)strlen(want) && !strcmp(buf, want), "got %zd '%s'", got,
		 buf);
}

static void child_main(int sync, int c7)
{
	int c[4], q[3], p[2], ep;
	struct epoll_event watch = {.events = EPOLLIN, .data.u64 = 0x77};

	c[1] = client(SOCK_STREAM, &sl, ll, NULL);
	if (!wl_write_pattern(c[1], C1_LEN, 11))
		wl_die("write: %s", strerror(errno));
	ep = epoll_create1(0);
	if (ep < 0 || epoll_ctl(ep, EPOLL_CTL_ADD, c[1], &watch))
		wl_die("epoll: %s", strerror(errno));
	c[2] = client(SOCK_STREAM, &sl, ll, NULL);
	fcntl(c[2], F_SETFL, O_NONBLOCK);
	c[3] = client(SOCK_STREAM, &sl, ll, NULL);
	if (pipe(p) || write(p[1], "piped", 5) != 5)
		wl_die("pipe: %s", strerror(errno));
	wl_send_fd(c[3], "third", 5, p[0]);
	close(p[0]);
	close(p[1]);
	q[1] = client(SOCK_SEQPACKET, &sq, lq, "m1");
	if (send(q[1], "m2", 2, 0) != 2)
		wl_die("send: %s", strerror(errno));
	q[2] = client(SOCK_SEQPACKET, &sq, lq, "solo");
	if (write(sync, "x", 1) != 1)
		wl_die("sync: %s", strerror(errno));
	close(sync);
	wl_wait_go();
	wl_check_unix_name("c1_peer", c[1], true, &sl, ll);
	wl_check_unix_name("q2_peer", q[2], true, &sq, lq);
	wl_check_fl("c2_nonblock", c[2], O_NONBLOCK, O_NONBLOCK);
	fcntl(c[2], F_SETFL, 0);
	talk("c1_talks", c[1], 1, ep);
	talk("c2_talks", c[2], 2, -1);
	talk("c3_talks", c[3], 3, -1);
	talk("q1_talks", q[1], 5, -1);
	talk("q2_talks", q[2], 6, -1);
	wl_check("c7_ping_sent", send(c7, "ping-7", 6, MSG_NOSIGNAL) == 6, "%s", strerror(errno));
	_exit(wl_failures() ? 1 : 0);
}

/* Accepts the next waiting connection of l and checks it holds want
 * (NULL: nothing), then answers its client's ping. */
static int take(const char *name, int l, const char *want)
{
	char tag[64], buf[64] = {0};
	struct pollfd pf = {l, POLLIN, 0};
	int a = poll(&pf, 1, 3000) == 1 ? accept(l, NULL, NULL) : -1;
	ssize_t got;
	struct timeval tv = {5, 0};

	snprintf(tag, sizeof(tag), "%s_accepted", name);
	if (!wl_check(tag, a >= 0, "accept: %s", strerror(errno)))
		return -1;
	setsockopt(a, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	if (want) {
		got = recv(a, buf, strlen(want), MSG_DONTWAIT);
		snprintf(tag, sizeof(tag), "%s_data", name);
		wl_check(tag, got == (ssize_t)strlen(want) && !memcmp(buf, want, got),
			 "got %zd '%s', want '%s'", got, buf, want);
	}
	return a;
}

static void answer(int a, int n)
{
	char want[16], buf[16] = {0}, tag[64];
	ssize_t got = recv(a, buf, sizeof(buf) - 1, 0);

	snprintf(want, sizeof(want), "ping-%d", n);
	snprintf(tag, sizeof(tag), "conn%d_ping", n);
	wl_check(tag, got == (ssize_t)strlen(want) && !strcmp(buf, want), "got %zd '%s'", got, buf);
	snprintf(want, sizeof(want), "reply-%d", n);
	send(a, want, strlen(want), MSG_NOSIGNAL);
}

static void check_c1(int a)
{
	static unsigned char data[C1_LEN];
	ssize_t n = wl_read_full(a, data, C1_LEN);

	wl_check("c1_len", n == C1_LEN, "read %zd", n);
	wl_check_pattern("c1_data", data, C1_LEN, 11);
}

static void check_c3(int a)
{
	char buf[16] = {0}, cbuf[CMSG_SPACE(sizeof(int))] = {0}, piped[8] = {0};
	struct iovec iov = {buf, sizeof(buf)};
	struct msghdr mh = {
	    .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf, .msg_controllen = sizeof(cbuf)};
	ssize_t n = recvmsg(a, &mh, MSG_DONTWAIT);
	struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
	int fd = -1;

	if (c && c->cmsg_type == SCM_RIGHTS)
		memcpy(&fd, CMSG_DATA(c), sizeof(int));
	wl_check("c3_data", n == 5 && !memcmp(buf, "third", 5), "got %zd '%s'", n, buf);
	ssize_t p = fd >= 0 ? read(fd, piped, sizeof(piped)) : -1;
	wl_check("c3_fd_in_flight", p == 5 && !memcmp(piped, "piped", 5), "fd %d read %zd", fd, p);
	close(fd);
}

static void check_empty(const char *name, int l)
{
	int r = wl_revents(l, POLLIN);

	wl_check(name, !(r & POLLIN), "revents %#x: more connections wait", r);
}

int main(void)
{
	char path[4096], buf[8];
	int l, q, a0, c0, c4, c7, sync[2], a[8];
	pid_t kid;

	wl_init();
	ll = wl_unix_addr(&sl, wl_path("backlog.sock", path, sizeof(path)), false);
	lq = wl_unix_addr(&sq, "sk_unix_backlog.seqpacket", true);
	l = socket(AF_UNIX, SOCK_STREAM, 0);
	q = socket(AF_UNIX, SOCK_SEQPACKET, 0);
	if (bind(l, (struct sockaddr *)&sl, ll) || listen(l, 8) ||
	    bind(q, (struct sockaddr *)&sq, lq) || listen(q, 4))
		wl_die("listen: %s", strerror(errno));
	c0 = client(SOCK_STREAM, &sl, ll, "before");
	a0 = accept(l, NULL, NULL);
	if (a0 < 0 || send(a0, "back", 4, 0) != 4)
		wl_die("accept: %s", strerror(errno));
	if (pipe(sync))
		wl_die("pipe: %s", strerror(errno));
	c7 = socket(AF_UNIX, SOCK_STREAM, 0);
	kid = fork();
	if (kid == 0) {
		close(sync[0]);
		child_main(sync[1], c7);
	}
	close(sync[1]);
	if (read(sync[0], buf, 1) != 1)
		wl_die("the child did not connect");
	close(sync[0]);
	c4 = client(SOCK_STREAM, &sl, ll, "root's");
	if (connect(c7, (struct sockaddr *)&sl, ll) || send(c7, "shared", 6, 0) != 6)
		wl_die("c7: %s", strerror(errno));

	wl_ready();
	wl_wait_go();

	char got[8] = {0};
	wl_check("accepted_before",
		 recv(a0, got, sizeof(got), MSG_DONTWAIT) == 6 && !memcmp(got, "before", 6),
		 "got '%s'", got);
	memset(got, 0, sizeof(got));
	wl_check("client_before",
		 recv(c0, got, sizeof(got), MSG_DONTWAIT) == 4 && !memcmp(got, "back", 4),
		 "got '%s'", got);
	a[1] = take("c1", l, NULL);
	if (a[1] >= 0)
		check_c1(a[1]);
	a[2] = take("c2", l, NULL);
	a[3] = take("c3", l, NULL);
	if (a[3] >= 0)
		check_c3(a[3]);
	a[4] = take("c4", l, "root's");
	a[7] = take("c7", l, "shared");
	check_empty("stream_backlog_empty", l);
	a[5] = take("q1", q, "m1");
	if (a[5] >= 0) {
		memset(got, 0, sizeof(got));
		ssize_t n = recv(a[5], got, sizeof(got), MSG_DONTWAIT);
		wl_check("q1_second_record", n == 2 && !memcmp(got, "m2", 2), "got %zd", n);
	}
	a[6] = take("q2", q, "solo");
	check_empty("seqpacket_backlog_empty", q);
	send(c4, "ping-4", 6, MSG_NOSIGNAL);
	for (int i = 1; i <= 7; i++)
		if (a[i] >= 0)
			answer(a[i], i);
	memset(got, 0, sizeof(got));
	wl_check("c4_talks",
		 recv(c4, got, sizeof(got), MSG_DONTWAIT) == 7 && !memcmp(got, "reply-4", 7),
		 "got '%s'", got);
	memset(got, 0, sizeof(got));
	struct timeval tv = {5, 0};
	setsockopt(c7, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	wl_check("c7_shared_reply",
		 recv(c7, got, sizeof(got), 0) == 7 && !memcmp(got, "reply-7", 7), "got '%s'", got);
	wl_check_child("child", kid);
	wl_done();
}
