/* sk_icmp.c: workload with ICMP "ping" sockets (SOCK_DGRAM, IPPROTO_ICMP
 * and IPPROTO_ICMPV6), run in a network namespace of the test's own whose
 * net.ipv4.ping_group_range lets it (tests/run.py, sk_icmp/netns/...): an
 * IPv4 one bound to 127.0.0.1 with ICMP id 4242 and IP_TTL, one connected
 * to 127.0.0.1, an IPv6 one bound to ::1 with id 4343, an unbound one.
 * Echoes went both ways before the checkpoint. After restore: the same
 * addresses and ids, the options, and an echo request from each gets its
 * reply, with its id and payload. */
#include "wl.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/icmp6.h>
#include <netinet/in.h>
#include <netinet/ip_icmp.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

struct sk {
	const char *name;
	int fd, family;
	struct sockaddr_storage self;
	socklen_t self_len;
	bool connected;
};

static void names(struct sk *s)
{
	s->self_len = sizeof(s->self);
	memset(&s->self, 0, sizeof(s->self));
	if (getsockname(s->fd, (struct sockaddr *)&s->self, &s->self_len))
		wl_die("getsockname: %s", strerror(errno));
}

static void lo(int family, uint16_t port, struct sockaddr_storage *ss, socklen_t *len)
{
	memset(ss, 0, sizeof(*ss));
	ss->ss_family = family;
	if (family == AF_INET) {
		struct sockaddr_in *in = (struct sockaddr_in *)ss;
		in->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		in->sin_port = htons(port);
		*len = sizeof(*in);
	} else {
		struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)ss;
		in6->sin6_addr = in6addr_loopback;
		in6->sin6_port = htons(port);
		*len = sizeof(*in6);
	}
}

static int ping_socket(int family, int id, bool connect_it)
{
	int fd = socket(family, SOCK_DGRAM, family == AF_INET ? IPPROTO_ICMP : IPPROTO_ICMPV6);
	struct sockaddr_storage ss;
	socklen_t len;

	if (fd < 0)
		wl_die("ping socket: %s (ping_group_range?)", strerror(errno));
	if (id >= 0) {
		lo(family, id, &ss, &len);
		if (bind(fd, (struct sockaddr *)&ss, len))
			wl_die("bind: %s", strerror(errno));
	}
	if (connect_it) {
		lo(family, 0, &ss, &len);
		if (connect(fd, (struct sockaddr *)&ss, len))
			wl_die("connect: %s", strerror(errno));
	}
	return fd;
}

/* An echo request to the loopback address, its reply read back: payload
 * and (the kernel's) id the socket's port. */
static bool echo(struct sk *s, int seq)
{
	unsigned char pkt[64] = {0}, got[128];
	struct sockaddr_storage to;
	socklen_t len;
	struct pollfd p = {.fd = s->fd, .events = POLLIN};
	ssize_t n;
	char what[64];

	snprintf(what, sizeof(what), "%s_echo_%d", s->name, seq);
	pkt[0] = s->family == AF_INET ? ICMP_ECHO : ICMP6_ECHO_REQUEST;
	pkt[7] = seq;
	memcpy(pkt + 8, "cryo ping", 9);
	lo(s->family, 0, &to, &len);
	n = s->connected ? send(s->fd, pkt, 17, 0)
			 : sendto(s->fd, pkt, 17, 0, (struct sockaddr *)&to, len);
	if (n != 17)
		return wl_check(what, false, "send: %s", strerror(errno));
	if (poll(&p, 1, 2000) != 1)
		return wl_check(what, false, "no reply");
	n = recv(s->fd, got, sizeof(got), MSG_DONTWAIT);
	names(s);
	uint16_t id = ntohs(s->family == AF_INET ? ((struct sockaddr_in *)&s->self)->sin_port
						 : ((struct sockaddr_in6 *)&s->self)->sin6_port);
	return wl_check(
	    what,
	    n == 17 && got[0] == (s->family == AF_INET ? ICMP_ECHOREPLY : ICMP6_ECHO_REPLY) &&
		got[7] == seq && !memcmp(got + 8, "cryo ping", 9) && (got[4] << 8 | got[5]) == id,
	    "reply of %zd bytes, type %d, id %d (socket's %d)", n, n > 0 ? got[0] : -1,
	    n > 5 ? got[4] << 8 | got[5] : -1, id);
}

int main(void)
{
	struct sk s[4] = {
	    {"v4_bound", ping_socket(AF_INET, 4242, false), AF_INET, {0}, 0, false},
	    {"v4_connected", ping_socket(AF_INET, -1, true), AF_INET, {0}, 0, true},
	    {"v6_bound", ping_socket(AF_INET6, 4343, false), AF_INET6, {0}, 0, false},
	    {"unbound", ping_socket(AF_INET, -1, false), AF_INET, {0}, 0, false},
	};
	struct sockaddr_storage before[4];
	socklen_t before_len[4];
	int ttl = 21, v;
	socklen_t vl = sizeof(v);

	if (setsockopt(s[0].fd, IPPROTO_IP, IP_TTL, &ttl, sizeof(ttl)))
		wl_die("IP_TTL: %s", strerror(errno));
	for (int i = 0; i < 3; i++)
		echo(&s[i], 1);
	for (int i = 0; i < 4; i++) {
		names(&s[i]);
		before[i] = s[i].self;
		before_len[i] = s[i].self_len;
	}
	wl_ready();
	wl_wait_go();
	for (int i = 0; i < 4; i++) {
		char n[64];
		names(&s[i]);
		snprintf(n, sizeof(n), "%s_name", s[i].name);
		wl_check(n,
			 s[i].self_len == before_len[i] &&
			     !memcmp(&s[i].self, &before[i], before_len[i]),
			 "address or id differs");
	}
	wl_check("v4_ttl", !getsockopt(s[0].fd, IPPROTO_IP, IP_TTL, &v, &vl) && v == 21, "%d", v);
	wl_check("v4_connected_peer",
		 getsockopt(s[1].fd, SOL_SOCKET, SO_PROTOCOL, &v, &vl) == 0 && v == IPPROTO_ICMP,
		 "protocol %d", v);
	for (int i = 0; i < 4; i++)
		echo(&s[i], 2);
	wl_done();
}
