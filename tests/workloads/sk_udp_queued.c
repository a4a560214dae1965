/* sk_udp_queued.c: workload for the refused dump of a UDP socket with a
 * datagram waiting in its receive queue (tests/test_files.py,
 * files/udp-queued): the dump must stop, naming the fd, and leave the
 * datagram where it was. After go: the datagram is read once, with its
 * contents and its sender's address, and the queue is then empty. */
#include "wl.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

int main(void)
{
	struct sockaddr_in a = {.sin_family = AF_INET}, b, from;
	socklen_t len = sizeof(b), flen = sizeof(from);
	int rx = socket(AF_INET, SOCK_DGRAM, 0), tx = socket(AF_INET, SOCK_DGRAM, 0);
	char got[32];
	ssize_t n;

	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (rx < 0 || tx < 0 || bind(rx, (struct sockaddr *)&a, sizeof(a)) ||
	    getsockname(rx, (struct sockaddr *)&a, &len) ||
	    sendto(tx, "queued", 6, 0, (struct sockaddr *)&a, sizeof(a)) != 6)
		wl_die("setup: %s", strerror(errno));
	len = sizeof(b);
	getsockname(tx, (struct sockaddr *)&b, &len);
	wl_ready();
	wl_wait_go();
	n = recvfrom(rx, got, sizeof(got), MSG_DONTWAIT, (struct sockaddr *)&from, &flen);
	wl_check("queued_datagram",
		 n == 6 && !memcmp(got, "queued", 6) && flen == sizeof(b) &&
		     from.sin_port == b.sin_port && from.sin_addr.s_addr == a.sin_addr.s_addr,
		 "got %zd bytes: %s", n, n < 0 ? strerror(errno) : "from another sender");
	wl_check("queue_empty_after", recv(rx, got, sizeof(got), MSG_DONTWAIT) < 0,
		 "more datagrams");
	wl_done();
}
