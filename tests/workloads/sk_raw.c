/* sk_raw.c: workload with raw sockets, run in a network namespace of the
 * test's own (a raw socket sees every packet of its protocol there;
 * tests/run.py, sk_raw/netns/...): protocol 253 bound to 127.0.0.1, and
 * another connected to 127.0.0.1 with IP_TOS and IP_HDRINCL set; a raw
 * ICMP socket whose ICMP_FILTER lets only echo replies through; a raw
 * ICMPv6 socket whose ICMP6_FILTER does the same; an IPPROTO_RAW socket
 * (header included by the program). After restore: the same addresses,
 * options and filters, packets go both ways between the two of protocol
 * 253, and each ICMP socket's echo request gets back its reply only (its
 * own request, on loopback, is filtered out). */
#include "wl.h"

#include <arpa/inet.h>
#include <errno.h>
#include <linux/icmp.h>
#include <netinet/icmp6.h>
#include <netinet/in.h>
#include <netinet/ip.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define PROTO 253 /* for experiments (RFC 3692) */

static int raw(int family, int proto)
{
	int fd = socket(family, SOCK_RAW, proto);

	if (fd < 0)
		wl_die("raw socket %d: %s", proto, strerror(errno));
	return fd;
}

static struct sockaddr_in lo4(void)
{
	struct sockaddr_in a = {.sin_family = AF_INET};

	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	return a;
}

static void drain(int fd)
{
	char b[2048];

	while (recv(fd, b, sizeof(b), MSG_DONTWAIT) >= 0)
		;
}

/* What fd receives next: the IPv4 payload after its header (off 1) or all. */
static ssize_t next(int fd, unsigned char *buf, size_t len)
{
	struct pollfd p = {.fd = fd, .events = POLLIN};

	if (poll(&p, 1, 2000) != 1)
		return -1;
	return recv(fd, buf, len, MSG_DONTWAIT);
}

static void check_253(const char *what, int from, int to, bool connected)
{
	unsigned char got[256];
	struct sockaddr_in a = lo4();
	ssize_t n;
	int hl;

	drain(to);
	n = connected ? send(from, what, strlen(what), 0)
		      : sendto(from, what, strlen(what), 0, (struct sockaddr *)&a, sizeof(a));
	if (n != (ssize_t)strlen(what)) {
		wl_check(what, false, "send: %s", strerror(errno));
		return;
	}
	n = next(to, got, sizeof(got));
	hl = n > 0 ? (got[0] & 15) * 4 : 0;
	wl_check(what,
		 n == hl + (ssize_t)strlen(what) && got[9] == PROTO &&
		     !memcmp(got + hl, what, strlen(what)),
		 "got %zd bytes", n);
	drain(from);
}

static void check_echo4(int fd)
{
	unsigned char req[16] = {ICMP_ECHO, 0}, got[256];
	struct sockaddr_in a = lo4();
	unsigned sum = 0;
	ssize_t n;
	int hl;

	req[7] = 9;
	memcpy(req + 8, "cryoraw", 8);
	for (int i = 0; i < 16; i += 2)
		sum += req[i] << 8 | req[i + 1];
	sum = (sum & 0xffff) + (sum >> 16);
	sum = ~(sum + (sum >> 16)) & 0xffff;
	req[2] = sum >> 8;
	req[3] = sum & 0xff;
	drain(fd);
	if (sendto(fd, req, 16, 0, (struct sockaddr *)&a, sizeof(a)) != 16) {
		wl_check("icmp_filter_echo", false, "send: %s", strerror(errno));
		return;
	}
	n = next(fd, got, sizeof(got));
	hl = n > 0 ? (got[0] & 15) * 4 : 0;
	wl_check("icmp_filter_echo", n == hl + 16 && got[hl] == ICMP_ECHOREPLY && got[hl + 7] == 9,
		 "first packet: %zd bytes, type %d (the filter lets only replies in)", n,
		 n > hl ? got[hl] : -1);
}

static void check_echo6(int fd)
{
	unsigned char req[16] = {ICMP6_ECHO_REQUEST, 0}, got[256];
	struct sockaddr_in6 a = {.sin6_family = AF_INET6, .sin6_addr = IN6ADDR_LOOPBACK_INIT};
	ssize_t n;

	req[7] = 11;
	drain(fd);
	if (sendto(fd, req, 16, 0, (struct sockaddr *)&a, sizeof(a)) != 16) {
		wl_check("icmp6_filter_echo", false, "send: %s", strerror(errno));
		return;
	}
	n = next(fd, got, sizeof(got));
	wl_check("icmp6_filter_echo", n == 16 && got[0] == ICMP6_ECHO_REPLY && got[7] == 11,
		 "first packet: %zd bytes, type %d", n, n > 0 ? got[0] : -1);
}

int main(void)
{
	int bound = raw(AF_INET, PROTO), conn = raw(AF_INET, PROTO);
	int icmp = raw(AF_INET, IPPROTO_ICMP), icmp6 = raw(AF_INET6, IPPROTO_ICMPV6);
	int hdr = raw(AF_INET, IPPROTO_RAW);
	struct sockaddr_in a = lo4(), name;
	struct icmp_filter f = {~(1u << ICMP_ECHOREPLY)}, f2;
	struct icmp6_filter f6, g6;
	socklen_t len = sizeof(name), fl = sizeof(f2), fl6 = sizeof(g6);
	int one = 1, tos = 0x20;

	if (bind(bound, (struct sockaddr *)&a, sizeof(a)) ||
	    connect(conn, (struct sockaddr *)&a, sizeof(a)) ||
	    setsockopt(conn, IPPROTO_IP, IP_TOS, &tos, sizeof(tos)) ||
	    setsockopt(icmp, SOL_RAW, ICMP_FILTER, &f, sizeof(f)))
		wl_die("setup: %s", strerror(errno));
	(void)one;
	ICMP6_FILTER_SETBLOCKALL(&f6);
	ICMP6_FILTER_SETPASS(ICMP6_ECHO_REPLY, &f6);
	if (setsockopt(icmp6, IPPROTO_ICMPV6, ICMP6_FILTER, &f6, sizeof(f6)))
		wl_die("ICMP6_FILTER: %s", strerror(errno));
	check_253("before", conn, bound, true);
	drain(conn);
	drain(bound);
	drain(icmp);
	drain(icmp6);
	wl_ready();
	wl_wait_go();

	wl_check("bound_name",
		 !getsockname(bound, (struct sockaddr *)&name, &len) &&
		     name.sin_addr.s_addr == htonl(INADDR_LOOPBACK) &&
		     ntohs(name.sin_port) == PROTO,
		 "differs");
	len = sizeof(name);
	wl_check("connected_peer",
		 !getsockname(conn, (struct sockaddr *)&name, &len) &&
		     name.sin_addr.s_addr == htonl(INADDR_LOOPBACK),
		 "not bound by its connection");
	wl_check_opt("connected_tos", conn, IPPROTO_IP, IP_TOS, 0x20);
	wl_check_opt("raw_hdrincl", hdr, IPPROTO_IP, IP_HDRINCL, 1);
	wl_check_opt("bound_no_hdrincl", bound, IPPROTO_IP, IP_HDRINCL, 0);
	wl_check("icmp_filter",
		 !getsockopt(icmp, SOL_RAW, ICMP_FILTER, &f2, &fl) && f2.data == f.data, "0x%x",
		 f2.data);
	wl_check("icmp6_filter",
		 !getsockopt(icmp6, IPPROTO_ICMPV6, ICMP6_FILTER, &g6, &fl6) &&
		     !memcmp(&g6, &f6, sizeof(f6)),
		 "differs");
	check_253("connected_to_bound", conn, bound, true);
	check_253("bound_to_connected", bound, conn, false);
	check_echo4(icmp);
	check_echo6(icmp6);
	wl_done();
}
