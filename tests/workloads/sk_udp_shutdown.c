/* sk_udp_shutdown.c: workload with UDP sockets shut down (issue 8, point 2):
 * on loopback, a connected IPv4 pair of which one end is shut for
 * receiving (SHUT_RD) and the other for sending (SHUT_WR); a connected
 * IPv6 socket shut both ways (SHUT_RDWR); a bound, unconnected socket shut
 * for receiving (shutdown answers ENOTCONN and shuts it all the same); an
 * unbound socket shut both ways; and a connected IPv4 pair not shut at
 * all, for comparison. After restore each keeps exactly its state, as the
 * kernel shows it: a socket shut for receiving polls POLLRDHUP and a
 * blocking recv answers 0 at once (the others wait out their 100 ms
 * SO_RCVTIMEO: EAGAIN), one shut for sending fails sendto with EPIPE, one
 * shut both ways polls POLLHUP; the others still carry datagrams both
 * ways. */
#include "wl.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

enum { RD = 1, WR = 2 };

struct sk {
	const char *name;
	int fd;
	int shut; /* RD | WR */
};

static int bound(int family)
{
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	struct sockaddr_in6 a6 = {.sin6_family = AF_INET6, .sin6_addr = IN6ADDR_LOOPBACK_INIT};
	int fd = socket(family, SOCK_DGRAM, 0);

	if (fd < 0 || (family == AF_INET ? bind(fd, (struct sockaddr *)&a, sizeof(a))
					 : bind(fd, (struct sockaddr *)&a6, sizeof(a6))))
		wl_die("socket/bind: %s", strerror(errno));
	return fd;
}

static void connect_to(int fd, int to)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);

	if (getsockname(to, (struct sockaddr *)&ss, &len) ||
	    connect(fd, (struct sockaddr *)&ss, len))
		wl_die("connect: %s", strerror(errno));
}

static void shut(struct sk *s)
{
	static const int how[] = {0, SHUT_RD, SHUT_WR, SHUT_RDWR};

	if (s->shut && shutdown(s->fd, how[s->shut]) && errno != ENOTCONN)
		wl_die("shutdown %s: %s", s->name, strerror(errno));
}

/* A datagram to the discard port of loopback, of the socket's family. */
static ssize_t send_somewhere(int fd)
{
	struct sockaddr_in a = {
	    .sin_family = AF_INET, .sin_port = htons(9), .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	struct sockaddr_in6 a6 = {
	    .sin6_family = AF_INET6, .sin6_port = htons(9), .sin6_addr = IN6ADDR_LOOPBACK_INIT};
	int dom = wl_sockopt(fd, SO_DOMAIN);

	return dom == AF_INET6 ? sendto(fd, "x", 1, MSG_DONTWAIT | MSG_NOSIGNAL,
					(struct sockaddr *)&a6, sizeof(a6))
			       : sendto(fd, "x", 1, MSG_DONTWAIT | MSG_NOSIGNAL,
					(struct sockaddr *)&a, sizeof(a));
}

/* What the kernel shows of the socket's shutdown state, checked. */
static void check_shut(const struct sk *s)
{
	char b[8];
	struct timeval tv = {.tv_usec = 100000};
	int ev = wl_revents(s->fd, POLLIN | POLLRDHUP);
	ssize_t r;
	int rerr;

	setsockopt(s->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	r = recv(s->fd, b, sizeof(b), 0);
	rerr = errno;

	if (s->shut & RD)
		wl_check(s->name, r == 0 && (ev & POLLRDHUP),
			 "shut for receiving: recv %zd (%s), revents 0x%x", r, strerror(rerr), ev);
	else
		wl_check(s->name, r < 0 && rerr == EAGAIN && !(ev & POLLRDHUP),
			 "not shut for receiving: recv %zd (%s), revents 0x%x", r, strerror(rerr),
			 ev);
	wl_check(s->name, !!(ev & POLLHUP) == (s->shut == (RD | WR)), "POLLHUP %s, shut %d",
		 ev & POLLHUP ? "set" : "clear", s->shut);
	if (s->shut & WR) {
		r = send_somewhere(s->fd);
		wl_check(s->name, r < 0 && errno == EPIPE, "shut for sending: sendto %zd (%s)", r,
			 strerror(errno));
	}
}

static void check_traffic(const char *name, int a, int b)
{
	char buf[16] = "";
	ssize_t n;

	wl_check(name, send(a, "ping", 4, 0) == 4, "send: %s", strerror(errno));
	n = wl_revents(b, POLLIN) & POLLIN ? recv(b, buf, sizeof(buf), 0) : -1;
	if (n < 0) {
		struct pollfd p = {.fd = b, .events = POLLIN};
		poll(&p, 1, 2000);
		n = recv(b, buf, sizeof(buf), MSG_DONTWAIT);
	}
	wl_check(name, n == 4 && !memcmp(buf, "ping", 4), "received %zd bytes '%.*s'", n,
		 n > 0 ? (int)n : 0, buf);
}

int main(void)
{
	wl_init();
	int rd = bound(AF_INET), wr = bound(AF_INET);
	int v6 = bound(AF_INET6), v6peer = bound(AF_INET6);
	int lone = bound(AF_INET), unbound = socket(AF_INET, SOCK_DGRAM, 0);
	int pa = bound(AF_INET), pb = bound(AF_INET);

	if (unbound < 0)
		wl_die("socket: %s", strerror(errno));
	connect_to(rd, wr);
	connect_to(wr, rd);
	connect_to(v6, v6peer);
	connect_to(pa, pb);
	connect_to(pb, pa);
	struct sk socks[] = {
	    {"v4 connected, SHUT_RD", rd, RD},		 {"v4 connected, SHUT_WR", wr, WR},
	    {"v6 connected, SHUT_RDWR", v6, RD | WR},	 {"v4 bound, SHUT_RD", lone, RD},
	    {"v4 unbound, SHUT_RDWR", unbound, RD | WR}, {"v4 connected, not shut", pa, 0},
	};
	size_t n = sizeof(socks) / sizeof(socks[0]);
	for (size_t i = 0; i < n; i++)
		shut(&socks[i]);
	for (size_t i = 0; i < n; i++)
		check_shut(&socks[i]);
	check_traffic("not shut, a -> b", pa, pb);
	wl_ready();
	wl_wait_go();
	for (size_t i = 0; i < n; i++)
		check_shut(&socks[i]);
	/* the shut-for-sending end still receives, the other still sends */
	check_traffic("SHUT_RD end sends to the SHUT_WR end", rd, wr);
	check_traffic("not shut, a -> b", pa, pb);
	check_traffic("not shut, b -> a", pb, pa);
	wl_done();
}
