/* sk_unix_inflight.c: unix sockets in flight (SCM_RIGHTS). The root makes a
 * transport pair T and two payload pairs: P (seqpacket), whose end P1 it
 * sends over T and then closes, so that P1 exists only in the queue, with
 * a record queued to it; and D (stream), whose end D1 it sends over T but
 * keeps open too. A child holds T's other end. After `go` the child takes
 * both sockets off T: P1 must be a seqpacket socket holding the record,
 * connected to the root's P0 (a reply comes back on P0); D1 must be the
 * root's own D1 (one description: a flag the root sets on it shows in the
 * child's), still connected to D0. */
#include "wl.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define RECORD "a record for the socket in flight"

/* Receives one message and the fd it carries (-1 if none). */
static int recv_fd(int sk, char *buf, size_t len, int *fd)
{
	char cbuf[CMSG_SPACE(sizeof(int))] = {0};
	struct iovec iov = {buf, len};
	struct msghdr mh = {
	    .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf, .msg_controllen = sizeof(cbuf)};
	struct cmsghdr *c;
	int n;

	*fd = -1;
	if (wl_revents(sk, POLLIN) <= 0 && poll(&(struct pollfd){sk, POLLIN, 0}, 1, 5000) <= 0)
		return -1;
	n = recvmsg(sk, &mh, MSG_CMSG_CLOEXEC);
	c = CMSG_FIRSTHDR(&mh);
	if (n >= 0 && c && c->cmsg_type == SCM_RIGHTS)
		memcpy(fd, CMSG_DATA(c), sizeof(int));
	return n;
}

static int child(int t1)
{
	char buf[128] = {0};
	int p1, d1, none, n;

	wl_wait_go();
	n = recv_fd(t1, buf, sizeof(buf), &p1);
	wl_check("c_got_p1", n == 2 && !memcmp(buf, "p1", 2) && p1 >= 0, "got %d, fd %d", n, p1);
	n = recv_fd(t1, buf, sizeof(buf), &d1);
	wl_check("c_got_d1", n == 2 && !memcmp(buf, "d1", 2) && d1 >= 0, "got %d, fd %d", n, d1);
	if (p1 >= 0) {
		wl_check("c_p1_type", wl_sockopt(p1, SO_TYPE) == SOCK_SEQPACKET, "SO_TYPE %d",
			 wl_sockopt(p1, SO_TYPE));
		memset(buf, 0, sizeof(buf));
		n = recv(p1, buf, sizeof(buf), MSG_DONTWAIT);
		wl_check("c_p1_record", n == (int)strlen(RECORD) && !strcmp(buf, RECORD),
			 "got %d '%s'", n, buf);
		wl_check("c_p1_empty", wl_revents(p1, POLLIN) == 0, "more queued");
		wl_check("c_p1_reply", send(p1, "reply", 5, 0) == 5, "send: %s", strerror(errno));
	}
	if (d1 >= 0) {
		/* the root has set O_NONBLOCK on its D1 once it sends "k" */
		n = recv_fd(t1, buf, 1, &none);
		wl_check("c_d1_same", n == 1 && (fcntl(d1, F_GETFL) & O_NONBLOCK),
			 "got %d, flags %#x: not the root's description", n, fcntl(d1, F_GETFL));
		wl_check("c_d1_write", write(d1, "via d1", 6) == 6, "write: %s", strerror(errno));
	}
	return wl_failures() ? 1 : 0;
}

int main(void)
{
	int t[2], p[2], d[2], n;
	char buf[64] = {0};
	pid_t kid;

	wl_init();
	if (socketpair(AF_UNIX, SOCK_STREAM, 0, t) || socketpair(AF_UNIX, SOCK_SEQPACKET, 0, p) ||
	    socketpair(AF_UNIX, SOCK_STREAM, 0, d))
		wl_die("socketpair: %s", strerror(errno));
	if (send(p[0], RECORD, strlen(RECORD), 0) != (ssize_t)strlen(RECORD))
		wl_die("send: %s", strerror(errno));
	wl_send_fd(t[0], "p1", 2, p[1]);
	wl_send_fd(t[0], "d1", 2, d[1]);
	close(p[1]); /* P1 lives only in T's queue now */
	kid = fork();
	if (kid == 0) {
		close(t[0]);
		close(p[0]);
		close(d[0]);
		close(d[1]);
		_exit(child(t[1]));
	}
	close(t[1]);
	wl_ready();
	wl_wait_go();
	fcntl(d[1], F_SETFL, O_NONBLOCK);
	if (write(t[0], "k", 1) != 1)
		wl_die("write: %s", strerror(errno));
	n = poll(&(struct pollfd){p[0], POLLIN, 0}, 1, 5000) == 1 ? recv(p[0], buf, sizeof(buf), 0)
								  : -1;
	wl_check("p0_reply", n == 5 && !memcmp(buf, "reply", 5), "got %d", n);
	memset(buf, 0, sizeof(buf));
	n = poll(&(struct pollfd){d[0], POLLIN, 0}, 1, 5000) == 1 ? read(d[0], buf, sizeof(buf))
								  : -1;
	wl_check("d0_from_child", n == 6 && !memcmp(buf, "via d1", 6), "got %d", n);
	wl_check_child("child", kid);
	wl_done();
}
