/* sk_unix_inflight_nested.c: what SCM_RIGHTS carries beyond files and
 * plain sockets. Over a transport pair T the root sends, in three
 * messages:
 *   1. an epoll instance E1 it keeps open too, watching an eventfd (value
 *      5) with data 0x1111;
 *   2. an epoll instance E2 it closes after sending (it exists only in
 *      flight), watching a pipe's read end (with "poll me" in the pipe)
 *      with data 0x2222;
 *   3. a seqpacket socket N1 it closes after sending, which itself holds
 *      a record with a pipe's read end in flight ("nested" in that pipe,
 *      the end closed in the process): a socket holding fds in flight,
 *      itself in flight.
 * After go it takes the three off T: E1 must be its own E1 (one
 * description: the same inode as the fd it kept) and report the eventfd
 * with 0x1111; E2 must report the pipe with 0x2222; N1 must give the record
 * and the pipe end, the pipe reading "nested", and N1 still be connected to
 * N0 (a reply comes back). */
#include "wl.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

/* Receives one message and the fd it carries (-1 if none). */
static int recv_fd(int sk, char *buf, size_t len, int *fd)
{
	char cbuf[CMSG_SPACE(sizeof(int))] = {0};
	struct iovec iov = {buf, len};
	struct msghdr mh = {
	    .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf, .msg_controllen = sizeof(cbuf)};
	int n = recvmsg(sk, &mh, MSG_DONTWAIT);
	struct cmsghdr *c = CMSG_FIRSTHDR(&mh);

	*fd = -1;
	if (n >= 0 && c && c->cmsg_type == SCM_RIGHTS)
		memcpy(fd, CMSG_DATA(c), sizeof(int));
	return n;
}

static int epoll_on(int target, uint64_t data)
{
	struct epoll_event ev = {.events = EPOLLIN, .data.u64 = data};
	int ep = epoll_create1(0);

	if (ep < 0 || epoll_ctl(ep, EPOLL_CTL_ADD, target, &ev))
		wl_die("epoll: %s", strerror(errno));
	return ep;
}

static void check_epoll(const char *name, int ep, uint64_t data)
{
	struct epoll_event ev = {0};
	int n = ep >= 0 ? epoll_wait(ep, &ev, 1, 1000) : -1;

	wl_check(name, n == 1 && ev.data.u64 == data && (ev.events & EPOLLIN),
		 "epoll_wait %d data %#llx events %#x", n, (unsigned long long)ev.data.u64,
		 ev.events);
}

static bool same_file(int a, int b)
{
	struct stat sa, sb;

	return !fstat(a, &sa) && !fstat(b, &sb) && sa.st_ino == sb.st_ino && sa.st_dev == sb.st_dev;
}

int main(void)
{
	int t[2], n[2], p1[2], p2[2], ev, e1, e2, got, k;
	char buf[32] = {0};

	wl_init();
	if (socketpair(AF_UNIX, SOCK_STREAM, 0, t) || socketpair(AF_UNIX, SOCK_SEQPACKET, 0, n) ||
	    pipe(p1) || pipe(p2) || write(p1[1], "poll me", 7) != 7 ||
	    write(p2[1], "nested", 6) != 6)
		wl_die("setup: %s", strerror(errno));
	ev = eventfd(5, 0);
	e1 = epoll_on(ev, 0x1111);
	e2 = epoll_on(p1[0], 0x2222);
	wl_send_fd(t[0], "1", 1, e1);
	wl_send_fd(t[0], "2", 1, e2);
	close(e2);
	wl_send_fd(n[0], "a record", 8, p2[0]);
	close(p2[0]);
	wl_send_fd(t[0], "3", 1, n[1]);
	close(n[1]);

	wl_ready();
	wl_wait_go();

	recv_fd(t[1], buf, 1, &got);
	wl_check("e1_same_description", got >= 0 && same_file(got, e1), "fd %d", got);
	check_epoll("e1_reports", got, 0x1111);
	check_epoll("e1_kept_reports", e1, 0x1111);
	close(got);
	recv_fd(t[1], buf, 1, &got);
	check_epoll("e2_in_flight_reports", got, 0x2222);
	close(got);
	recv_fd(t[1], buf, 1, &got);
	int n1 = got;
	wl_check("n1_received", n1 >= 0 && wl_sockopt(n1, SO_TYPE) == SOCK_SEQPACKET, "fd %d", n1);
	memset(buf, 0, sizeof(buf));
	k = n1 >= 0 ? recv_fd(n1, buf, sizeof(buf), &got) : -1;
	wl_check("n1_record", k == 8 && !memcmp(buf, "a record", 8), "got %d '%s'", k, buf);
	memset(buf, 0, sizeof(buf));
	k = got >= 0 ? read(got, buf, sizeof(buf)) : -1;
	wl_check("n1_nested_pipe", k == 6 && !memcmp(buf, "nested", 6), "fd %d read %d", got, k);
	k = n1 >= 0 ? send(n1, "reply", 5, 0) : -1;
	memset(buf, 0, sizeof(buf));
	int r = recv(n[0], buf, sizeof(buf), MSG_DONTWAIT);
	wl_check("n1_connected", k == 5 && r == 5 && !memcmp(buf, "reply", 5), "sent %d got %d", k,
		 r);
	wl_done();
}
