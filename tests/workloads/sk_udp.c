/* sk_udp.c: workload with UDP and UDP-Lite sockets on loopback, IPv4 and
 * IPv6: a bound IPv4 socket with options set (SO_BROADCAST, SO_PRIORITY,
 * SO_MARK, IP_TOS, IP_TTL, IP_MULTICAST_TTL, IP_MULTICAST_LOOP off,
 * SO_RCVBUF set by the program, SO_RCVTIMEO, SO_SNDTIMEO, SO_REUSEADDR,
 * O_NONBLOCK) and a socket connected to it, with a classic BPF filter
 * (SO_ATTACH_FILTER, locked with SO_LOCK_FILTER) that drops datagrams of
 * 12 bytes or less; an IPv6 pair (IPV6_V6ONLY,
 * IPV6_UNICAST_HOPS); a dual-stack IPv6 socket that an IPv4 socket is
 * connected to (its datagrams arrive from a v4-mapped address); a UDP-Lite
 * pair; an unbound socket. Traffic went both ways before the checkpoint
 * and was read. After restore: the same addresses and ports, the options
 * read back the same, and datagrams go both ways on every pair with their
 * contents and their senders' addresses. */
#include "wl.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/filter.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

struct sk {
	const char *name;
	int fd;
	struct sockaddr_storage self, peer;
	socklen_t self_len, peer_len;
};

static void loopback(int family, struct sockaddr_storage *ss, socklen_t *len)
{
	memset(ss, 0, sizeof(*ss));
	ss->ss_family = family;
	if (family == AF_INET) {
		((struct sockaddr_in *)ss)->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		*len = sizeof(struct sockaddr_in);
	} else {
		((struct sockaddr_in6 *)ss)->sin6_addr = in6addr_loopback;
		*len = sizeof(struct sockaddr_in6);
	}
}

static int getint(int fd, int level, int name)
{
	int v = -1;
	socklen_t len = sizeof(v);

	if (getsockopt(fd, level, name, &v, &len))
		return -12345;
	return v;
}

static void names(struct sk *s)
{
	s->self_len = s->peer_len = sizeof(s->self);
	memset(&s->self, 0, sizeof(s->self));
	memset(&s->peer, 0, sizeof(s->peer));
	if (getsockname(s->fd, (struct sockaddr *)&s->self, &s->self_len))
		wl_die("getsockname: %s", strerror(errno));
	if (getpeername(s->fd, (struct sockaddr *)&s->peer, &s->peer_len))
		s->peer_len = 0;
}

static int sock(int family, int proto)
{
	int fd = socket(family, SOCK_DGRAM, proto);

	if (fd < 0)
		wl_die("socket: %s", strerror(errno));
	return fd;
}

static void bind_lo(int fd, int family)
{
	struct sockaddr_storage ss;
	socklen_t len;

	loopback(family, &ss, &len);
	if (bind(fd, (struct sockaddr *)&ss, len))
		wl_die("bind: %s", strerror(errno));
}

static void connect_to(int fd, int to)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);

	getsockname(to, (struct sockaddr *)&ss, &len);
	if (connect(fd, (struct sockaddr *)&ss, len))
		wl_die("connect: %s", strerror(errno));
}

/* A datagram from a to b (a connected, or sent to b's name); b reads it
 * and checks its contents and that its sender is a's name (as b sees it:
 * want, or a's own name). */
static bool send_one(const char *what, int a, int b, const struct sockaddr_storage *want,
		     socklen_t want_len)
{
	char msg[64], got[64];
	struct sockaddr_storage to, from, self;
	socklen_t tlen = sizeof(to), flen = sizeof(from), slen = sizeof(self);
	struct pollfd p = {.fd = b, .events = POLLIN};
	ssize_t n;

	snprintf(msg, sizeof(msg), "datagram %s", what);
	getsockname(b, (struct sockaddr *)&to, &tlen);
	/* a connected socket sends to its peer (the dual-stack one's name is
	 * IPv6, which an IPv4 socket cannot name) */
	if (!getpeername(a, (struct sockaddr *)&from, &flen))
		tlen = 0;
	flen = sizeof(from);
	if (sendto(a, msg, strlen(msg), 0, tlen ? (struct sockaddr *)&to : NULL, tlen) !=
	    (ssize_t)strlen(msg))
		return wl_check(what, false, "sendto: %s", strerror(errno));
	if (poll(&p, 1, 2000) != 1)
		return wl_check(what, false, "nothing arrived");
	n = recvfrom(b, got, sizeof(got), MSG_DONTWAIT, (struct sockaddr *)&from, &flen);
	if (!want) {
		getsockname(a, (struct sockaddr *)&self, &slen);
		want = &self;
		want_len = slen;
	}
	return wl_check(what,
			n == (ssize_t)strlen(msg) && !memcmp(got, msg, n) && flen == want_len &&
			    !memcmp(&from, want, flen),
			"got %zd bytes, sender of %u bytes", n, flen);
}

static bool same_names(struct sk *s)
{
	struct sk now = *s;

	names(&now);
	return now.self_len == s->self_len && !memcmp(&now.self, &s->self, s->self_len) &&
	       now.peer_len == s->peer_len && !memcmp(&now.peer, &s->peer, s->peer_len);
}

/* "S.UUUUUU" of a timeout, for messages. */
static long timeo_us(int fd, int name)
{
	struct timeval tv;
	socklen_t len = sizeof(tv);

	if (getsockopt(fd, SOL_SOCKET, name, &tv, &len))
		return -1;
	return tv.tv_sec * 1000000L + tv.tv_usec;
}

static struct sock_filter short_drop[] = {
    BPF_STMT(BPF_LD | BPF_W | BPF_LEN, 0),
    BPF_JUMP(BPF_JMP | BPF_JGT | BPF_K, 12, 0, 1),
    BPF_STMT(BPF_RET | BPF_K, 0xffff),
    BPF_STMT(BPF_RET | BPF_K, 0),
};

static void set_filter(int fd)
{
	struct sock_fprog prog = {sizeof(short_drop) / sizeof(short_drop[0]), short_drop};

	if (setsockopt(fd, SOL_SOCKET, SO_ATTACH_FILTER, &prog, sizeof(prog)))
		wl_die("SO_ATTACH_FILTER: %s", strerror(errno));
	wl_setopt(fd, SOL_SOCKET, SO_LOCK_FILTER, 1);
}

/* The filter reads back the same, is locked, and drops a short datagram
 * from the server while a long one passes. */
static void check_filter(int cli, int srv)
{
	struct sock_filter got[16];
	socklen_t n = 16;
	char b[64];
	struct pollfd p = {.fd = cli, .events = POLLIN};

	wl_check("filter_read_back",
		 !getsockopt(cli, SOL_SOCKET, SO_GET_FILTER, got, &n) && n == 4 &&
		     !memcmp(got, short_drop, sizeof(short_drop)),
		 "%u instructions", n);
	wl_check_opt("filter_locked", cli, SOL_SOCKET, SO_LOCK_FILTER, 1);
	struct sockaddr_storage to;
	socklen_t tl = sizeof(to);
	getsockname(cli, (struct sockaddr *)&to, &tl);
	sendto(srv, "abc", 3, 0, (struct sockaddr *)&to, tl);
	sendto(srv, "long enough to pass", 19, 0, (struct sockaddr *)&to, tl);
	wl_check("filter_drops_short",
		 poll(&p, 1, 2000) == 1 && recv(cli, b, sizeof(b), MSG_DONTWAIT) == 19,
		 "the short one came");
}

static void set_v4_options(int fd)
{
	struct timeval rt = {1, 500000}, st = {2, 248000};

	wl_setopt(fd, SOL_SOCKET, SO_REUSEADDR, 1);
	wl_setopt(fd, SOL_SOCKET, SO_BROADCAST, 1);
	wl_setopt(fd, IPPROTO_IP, IP_TOS, 0x10);
	wl_setopt(fd, SOL_SOCKET, SO_PRIORITY, 5);
	wl_setopt(fd, SOL_SOCKET, SO_MARK, 7);
	wl_setopt(fd, IPPROTO_IP, IP_TTL, 33);
	wl_setopt(fd, IPPROTO_IP, IP_MULTICAST_TTL, 4);
	wl_setopt(fd, IPPROTO_IP, IP_MULTICAST_LOOP, 0);
	wl_setopt(fd, SOL_SOCKET, SO_RCVBUF, 65536);
	if (setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &rt, sizeof(rt)) ||
	    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &st, sizeof(st)))
		wl_die("timeouts: %s", strerror(errno));
	fcntl(fd, F_SETFL, O_NONBLOCK);
}

static void check_v4_options(int fd, int rcvbuf)
{
	wl_check_opt("v4_broadcast", fd, SOL_SOCKET, SO_BROADCAST, 1);
	wl_check_opt("v4_reuseaddr", fd, SOL_SOCKET, SO_REUSEADDR, 1);
	wl_check_opt("v4_tos", fd, IPPROTO_IP, IP_TOS, 0x10);
	wl_check_opt("v4_priority", fd, SOL_SOCKET, SO_PRIORITY, 5);
	wl_check_opt("v4_mark", fd, SOL_SOCKET, SO_MARK, 7);
	wl_check_opt("v4_ttl", fd, IPPROTO_IP, IP_TTL, 33);
	wl_check_opt("v4_mcast_ttl", fd, IPPROTO_IP, IP_MULTICAST_TTL, 4);
	wl_check_opt("v4_mcast_loop", fd, IPPROTO_IP, IP_MULTICAST_LOOP, 0);
	wl_check_opt("v4_rcvbuf", fd, SOL_SOCKET, SO_RCVBUF, rcvbuf);
	wl_check("v4_rcvtimeo", timeo_us(fd, SO_RCVTIMEO) == 1500000, "%ld us",
		 timeo_us(fd, SO_RCVTIMEO));
	wl_check("v4_sndtimeo", timeo_us(fd, SO_SNDTIMEO) == 2248000, "%ld us",
		 timeo_us(fd, SO_SNDTIMEO));
	wl_check("v4_nonblock", fcntl(fd, F_GETFL) & O_NONBLOCK, "blocking");
}

int main(void)
{
	static const char *const what[9] = {"v4_server",   "v4_client",	  "v6_server",
					    "v6_client",   "dual",	  "dual_client",
					    "lite_server", "lite_client", "unbound"};
	struct sk s[9];
	struct sockaddr_in6 mapped;
	int rcvbuf;

	memset(s, 0, sizeof(s));
	for (int i = 0; i < 9; i++)
		s[i].name = what[i];
	s[0].fd = sock(AF_INET, IPPROTO_UDP);
	set_v4_options(s[0].fd);
	bind_lo(s[0].fd, AF_INET);
	s[1].fd = sock(AF_INET, IPPROTO_UDP);
	connect_to(s[1].fd, s[0].fd);
	set_filter(s[1].fd);
	s[2].fd = sock(AF_INET6, IPPROTO_UDP);
	wl_setopt(s[2].fd, IPPROTO_IPV6, IPV6_V6ONLY, 1);
	wl_setopt(s[2].fd, IPPROTO_IPV6, IPV6_UNICAST_HOPS, 44);
	bind_lo(s[2].fd, AF_INET6);
	s[3].fd = sock(AF_INET6, IPPROTO_UDP);
	connect_to(s[3].fd, s[2].fd);
	s[4].fd = sock(AF_INET6, IPPROTO_UDP);
	wl_setopt(s[4].fd, IPPROTO_IPV6, IPV6_V6ONLY, 0);
	{
		struct sockaddr_in6 any = {.sin6_family = AF_INET6};
		struct sockaddr_in to = {.sin_family = AF_INET};
		socklen_t len = sizeof(any);
		if (bind(s[4].fd, (struct sockaddr *)&any, sizeof(any)))
			wl_die("bind [::]: %s", strerror(errno));
		getsockname(s[4].fd, (struct sockaddr *)&any, &len);
		to.sin_port = any.sin6_port;
		to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		s[5].fd = sock(AF_INET, IPPROTO_UDP);
		if (connect(s[5].fd, (struct sockaddr *)&to, sizeof(to)))
			wl_die("connect: %s", strerror(errno));
	}
	s[6].fd = sock(AF_INET, IPPROTO_UDPLITE);
	bind_lo(s[6].fd, AF_INET);
	s[7].fd = sock(AF_INET, IPPROTO_UDPLITE);
	connect_to(s[7].fd, s[6].fd);
	s[8].fd = sock(AF_INET, IPPROTO_UDP);
	for (int i = 0; i < 9; i++)
		names(&s[i]);
	/* the v4-mapped name s[4] sees s[5]'s datagrams from */
	memset(&mapped, 0, sizeof(mapped));
	mapped.sin6_family = AF_INET6;
	mapped.sin6_port = ((struct sockaddr_in *)&s[5].self)->sin_port;
	inet_pton(AF_INET6, "::ffff:127.0.0.1", &mapped.sin6_addr);
	rcvbuf = getint(s[0].fd, SOL_SOCKET, SO_RCVBUF);

	/* traffic before, all read */
	send_one("before_v4", s[1].fd, s[0].fd, NULL, 0);
	send_one("before_dual", s[5].fd, s[4].fd, (struct sockaddr_storage *)&mapped,
		 sizeof(mapped));

	wl_ready();
	wl_wait_go();

	for (int i = 0; i < 9; i++) {
		char n[64];
		snprintf(n, sizeof(n), "%s_names", s[i].name);
		wl_check(n, same_names(&s[i]), "addresses differ");
	}
	wl_check("unbound_still_unbound",
		 ((struct sockaddr_in *)&s[8].self)->sin_port == 0 && s[8].peer_len == 0, "bound");
	check_v4_options(s[0].fd, rcvbuf);
	wl_check_opt("v6_only", s[2].fd, IPPROTO_IPV6, IPV6_V6ONLY, 1);
	wl_check_opt("v6_hops", s[2].fd, IPPROTO_IPV6, IPV6_UNICAST_HOPS, 44);
	wl_check_opt("dual_not_v6only", s[4].fd, IPPROTO_IPV6, IPV6_V6ONLY, 0);
	wl_check("lite_protocol",
		 getint(s[6].fd, SOL_SOCKET, SO_PROTOCOL) == IPPROTO_UDPLITE &&
		     getint(s[7].fd, SOL_SOCKET, SO_PROTOCOL) == IPPROTO_UDPLITE,
		 "not UDP-Lite");

	check_filter(s[1].fd, s[0].fd);
	send_one("v4_to_server", s[1].fd, s[0].fd, NULL, 0);
	send_one("v4_to_client", s[0].fd, s[1].fd, NULL, 0);
	send_one("v6_to_server", s[3].fd, s[2].fd, NULL, 0);
	send_one("v6_to_client", s[2].fd, s[3].fd, NULL, 0);
	send_one("dual_mapped", s[5].fd, s[4].fd, (struct sockaddr_storage *)&mapped,
		 sizeof(mapped));
	{
		/* from the dual-stack socket back to the IPv4 one, by its mapped name */
		char b[8];
		struct pollfd p = {.fd = s[5].fd, .events = POLLIN};
		wl_check("dual_to_v4",
			 sendto(s[4].fd, "back", 4, 0, (struct sockaddr *)&mapped,
				sizeof(mapped)) == 4 &&
			     poll(&p, 1, 2000) == 1 && recv(s[5].fd, b, sizeof(b), 0) == 4 &&
			     !memcmp(b, "back", 4),
			 "nothing came back");
	}
	send_one("lite_to_server", s[7].fd, s[6].fd, NULL, 0);
	send_one("lite_to_client", s[6].fd, s[7].fd, NULL, 0);
	wl_done();
}
