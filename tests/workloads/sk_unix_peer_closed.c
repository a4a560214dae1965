/* sk_unix_peer_closed.c: unix sockets whose peer was closed (as a JVM
 * keeps one end of a socketpair, the other closed): a SOCK_STREAM end with
 * 3000 bytes its peer sent before closing, a SOCK_SEQPACKET end with two
 * messages queued, and a SOCK_STREAM end with nothing queued. After go:
 * the queued bytes and messages (with their boundaries) come first, then
 * end of file; a send fails with EPIPE; poll reports POLLIN|POLLHUP|POLLRDHUP;
 * the type and O_NONBLOCK flag are kept. */
#include "wl.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
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
	int st, sp, empty;
	char buf[16];
	ssize_t n;

	wl_init();
	st = pair_closed(SOCK_STREAM, SOCK_NONBLOCK);
	sp = pair_closed(SOCK_SEQPACKET, 0);
	empty = pair_closed(SOCK_STREAM, 0);

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
	wl_done();
}
