/* sk_unix_peer_closed.c: unix sockets whose peer was closed (as a JVM
 * keeps one end of a socketpair, the other closed): a SOCK_STREAM end with
 * 3000 bytes its peer sent before closing, a SOCK_SEQPACKET end with two
 * messages queued, and a SOCK_STREAM end with nothing queued. After go:
 * the queued bytes and messages (with their boundaries) come first, then
 * end of file; a send fails with EPIPE; poll reports POLLIN|POLLHUP|POLLRDHUP;
 * the type and O_NONBLOCK flag are kept. Four more whose peer closed
 * with data unread, so that ECONNRESET is pending: a stream end (twice,
 * once with bytes queued to it) and a seqpacket end whose peer did not read
 * what they sent, and a client whose connection waited in a listener's
 * backlog when the listener was closed. Each shows POLLERR, gives its
 * queued bytes, then one read gives ECONNRESET, the next end of file. (A
 * seqpacket end with both an error and messages is refused: any recv,
 * MSG_PEEK too, takes the error first.) */
#include "wl.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#define STREAM_LEN 3000

static int pair_closed(int type, int nonblock)
{
	int sv[2];

	if (socketpair(AF_UNIX, type | nonblock, 0, sv))
		wl_die("socketpair: %s", strerror(errno));
	if (type == SOCK_STREAM && nonblock && !wl_write_pattern(sv[1], STREAM_LEN, 7))
		wl_die("write: %s", strerror(errno));
	if (type == SOCK_SEQPACKET &&
	    (send(sv[1], "first", 5, 0) != 5 || send(sv[1], "second!", 7, 0) != 7))
		wl_die("send: %s", strerror(errno));
	close(sv[1]);
	return sv[0];
}

/* A closed peer that had data unread (queued: a message sent to fd first). */
static int pair_reset(int type, const char *queued)
{
	int sv[2];

	if (socketpair(AF_UNIX, type, 0, sv) || send(sv[0], "unread", 6, 0) != 6 ||
	    (queued && send(sv[1], queued, strlen(queued), 0) != (ssize_t)strlen(queued)))
		wl_die("socketpair/send: %s", strerror(errno));
	close(sv[1]);
	return sv[0];
}

/* A client whose listener was closed before accepting it. */
static int backlog_dropped(void)
{
	struct sockaddr_un sa;
	unsigned len = wl_unix_addr(&sa, "sk_unix_peer_closed.backlog", true);
	int l = socket(AF_UNIX, SOCK_STREAM, 0), c = socket(AF_UNIX, SOCK_STREAM, 0);

	if (bind(l, (struct sockaddr *)&sa, len) || listen(l, 2) ||
	    connect(c, (struct sockaddr *)&sa, len) || send(c, "request", 7, 0) != 7)
		wl_die("listen/connect: %s", strerror(errno));
	close(l);
	return c;
}

static void check_reset(const char *name, int fd, const char *queued)
{
	char tag[64], buf[16] = {0};
	int r = wl_revents(fd, POLLIN);
	ssize_t n;

	snprintf(tag, sizeof(tag), "%s_pollerr", name);
	wl_check(tag, r & POLLERR, "revents %#x", r);
	if (queued) {
		snprintf(tag, sizeof(tag), "%s_queued", name);
		n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
		wl_check(tag, n == (ssize_t)strlen(queued) && !memcmp(buf, queued, n),
			 "got %zd (%s)", n, n < 0 ? strerror(errno) : buf);
	}
	snprintf(tag, sizeof(tag), "%s_econnreset", name);
	n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
	wl_check(tag, n < 0 && errno == ECONNRESET, "recv gave %zd (%s)", n,
		 n < 0 ? strerror(errno) : "data");
}

static void check_closed(const char *name, int fd, int type)
{
	char tag[64], c;
	int r, err;

	snprintf(tag, sizeof(tag), "%s_type", name);
	wl_check(tag, wl_sockopt(fd, SO_TYPE) == type, "SO_TYPE %d", wl_sockopt(fd, SO_TYPE));
	snprintf(tag, sizeof(tag), "%s_poll", name);
	r = wl_revents(fd, POLLIN | POLLOUT | POLLRDHUP);
	wl_check(tag, (r & (POLLIN | POLLHUP | POLLRDHUP)) == (POLLIN | POLLHUP | POLLRDHUP),
		 "revents %#x", r);
	snprintf(tag, sizeof(tag), "%s_send_epipe", name);
	r = send(fd, "x", 1, MSG_NOSIGNAL | MSG_DONTWAIT);
	err = errno;
	wl_check(tag, r < 0 && err == EPIPE, "send gave %d (%s)", r,
		 r < 0 ? strerror(err) : "sent");
	snprintf(tag, sizeof(tag), "%s_eof", name);
	r = recv(fd, &c, 1, MSG_DONTWAIT);
	wl_check(tag, r == 0, "recv gave %d (%s), expected end of file", r,
		 r < 0 ? strerror(errno) : "data");
}

int main(void)
{
	int st, sp, empty, rst, rstq, rsp, dropped;
	char buf[16];
	ssize_t n;

	wl_init();
	st = pair_closed(SOCK_STREAM, SOCK_NONBLOCK);
	sp = pair_closed(SOCK_SEQPACKET, 0);
	empty = pair_closed(SOCK_STREAM, 0);
	rst = pair_reset(SOCK_STREAM, NULL);
	rstq = pair_reset(SOCK_STREAM, "kept");
	rsp = pair_reset(SOCK_SEQPACKET, NULL);
	dropped = backlog_dropped();

	wl_ready();
	wl_wait_go();

	wl_check_fl("stream_flags", st, O_NONBLOCK | O_ACCMODE, O_NONBLOCK | O_RDWR);
	wl_check_fl("seqpacket_flags", sp, O_NONBLOCK | O_ACCMODE, O_RDWR);
	static unsigned char data[STREAM_LEN];
	n = wl_read_full(st, data, STREAM_LEN);
	wl_check("stream_len", n == STREAM_LEN, "read %zd of %d bytes", n, STREAM_LEN);
	wl_check_pattern("stream_data", data, STREAM_LEN, 7);
	n = recv(sp, buf, sizeof(buf), MSG_DONTWAIT);
	wl_check("seqpacket_first", n == 5 && !memcmp(buf, "first", 5), "got %zd bytes", n);
	n = recv(sp, buf, sizeof(buf), MSG_DONTWAIT);
	wl_check("seqpacket_second", n == 7 && !memcmp(buf, "second!", 7), "got %zd bytes", n);
	check_closed("stream", st, SOCK_STREAM);
	check_closed("seqpacket", sp, SOCK_SEQPACKET);
	check_closed("empty", empty, SOCK_STREAM);
	check_reset("reset_stream", rst, NULL);
	check_closed("reset_stream", rst, SOCK_STREAM);
	check_reset("reset_stream_queued", rstq, "kept");
	check_closed("reset_stream_queued", rstq, SOCK_STREAM);
	check_reset("reset_seqpacket", rsp, NULL);
	check_closed("reset_seqpacket", rsp, SOCK_SEQPACKET);
	check_reset("backlog_dropped", dropped, NULL);
	check_closed("backlog_dropped", dropped, SOCK_STREAM);
	wl_done();
}
