/* sk_tcp.c: workload with TCP sockets on loopback, IPv4 and IPv6, both ends
 * of each connection in the tree: a listener (SO_REUSEADDR, backlog 7), a
 * client connected to it and the accepted end, with data queued unread both
 * ways; options on them (TCP_NODELAY, SO_KEEPALIVE with TCP_KEEPIDLE,
 * KEEPINTVL, KEEPCNT, TCP_USER_TIMEOUT, SO_PRIORITY, SO_MARK, IP_TOS, IP_TTL,
 * SO_LINGER, SO_SNDBUF set by the program, O_NONBLOCK, IPV6_V6ONLY; on each
 * client SO_RCVTIMEO, SO_SNDTIMEO and a classic BPF filter that passes
 * everything, locked with SO_LOCK_FILTER); a bound
 * socket that never listened and an unbound one. After restore: the same
 * addresses and ports, state ESTABLISHED, the queued data arrives once and
 * in order, more data goes both ways, the options read back the same, and
 * the listener accepts a new connection. */
#include "wl.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <linux/filter.h>

#define N_CS 30000 /* client -> server, unread */
#define N_SC 50000 /* server -> client, unread */

struct conn {
	int family;
	int lsn, cli, srv;
	struct sockaddr_storage lsn_addr, cli_addr, srv_addr;
};

static socklen_t addr_len(int family)
{
	return family == AF_INET ? sizeof(struct sockaddr_in) : sizeof(struct sockaddr_in6);
}

static void loopback(int family, struct sockaddr_storage *ss)
{
	memset(ss, 0, sizeof(*ss));
	ss->ss_family = family;
	if (family == AF_INET)
		((struct sockaddr_in *)ss)->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	else
		((struct sockaddr_in6 *)ss)->sin6_addr = in6addr_loopback;
}

static void name_of(int fd, struct sockaddr_storage *ss)
{
	socklen_t len = sizeof(*ss);

	memset(ss, 0, sizeof(*ss));
	if (getsockname(fd, (struct sockaddr *)ss, &len))
		wl_die("getsockname: %s", strerror(errno));
}

static void setint(int fd, int level, int name, int v)
{
	if (setsockopt(fd, level, name, &v, sizeof(v)))
		wl_die("setsockopt %d/%d: %s", level, name, strerror(errno));
}

static int getint(int fd, int level, int name)
{
	int v = -1;
	socklen_t len = sizeof(v);

	if (getsockopt(fd, level, name, &v, &len))
		return -errno;
	return v;
}

static void set_options(int fd, int family)
{
	struct linger lg = {1, 9};

	setint(fd, IPPROTO_TCP, TCP_NODELAY, 1);
	setint(fd, SOL_SOCKET, SO_KEEPALIVE, 1);
	setint(fd, IPPROTO_TCP, TCP_KEEPIDLE, 77);
	setint(fd, IPPROTO_TCP, TCP_KEEPINTVL, 13);
	setint(fd, IPPROTO_TCP, TCP_KEEPCNT, 4);
	setint(fd, IPPROTO_TCP, TCP_USER_TIMEOUT, 12345);
	/* IP_TOS sets the priority too: SO_PRIORITY after it */
	if (family == AF_INET) {
		setint(fd, IPPROTO_IP, IP_TOS, 0x10);
		setint(fd, IPPROTO_IP, IP_TTL, 33);
	} else {
		setint(fd, IPPROTO_IPV6, IPV6_TCLASS, 0x20);
	}
	setint(fd, SOL_SOCKET, SO_PRIORITY, 5);
	setint(fd, SOL_SOCKET, SO_MARK, 0x4242);
	if (setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg)))
		wl_die("SO_LINGER: %s", strerror(errno));
}

static void check_options(const char *name, int fd, int family)
{
	struct linger lg = {0, 0};
	socklen_t len = sizeof(lg);
	char n[128];

	snprintf(n, sizeof(n), "%s_opts", name);
	getsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, &len);
	wl_check(n,
		 getint(fd, IPPROTO_TCP, TCP_NODELAY) == 1 &&
		     getint(fd, SOL_SOCKET, SO_KEEPALIVE) == 1 &&
		     getint(fd, IPPROTO_TCP, TCP_KEEPIDLE) == 77 &&
		     getint(fd, IPPROTO_TCP, TCP_KEEPINTVL) == 13 &&
		     getint(fd, IPPROTO_TCP, TCP_KEEPCNT) == 4 &&
		     getint(fd, IPPROTO_TCP, TCP_USER_TIMEOUT) == 12345 &&
		     getint(fd, SOL_SOCKET, SO_PRIORITY) == 5 &&
		     getint(fd, SOL_SOCKET, SO_MARK) == 0x4242 && lg.l_onoff && lg.l_linger == 9,
		 "nodelay %d keepalive %d idle %d intvl %d cnt %d user_timeout %d prio %d mark "
		 "%#x linger %d/%d",
		 getint(fd, IPPROTO_TCP, TCP_NODELAY), getint(fd, SOL_SOCKET, SO_KEEPALIVE),
		 getint(fd, IPPROTO_TCP, TCP_KEEPIDLE), getint(fd, IPPROTO_TCP, TCP_KEEPINTVL),
		 getint(fd, IPPROTO_TCP, TCP_KEEPCNT), getint(fd, IPPROTO_TCP, TCP_USER_TIMEOUT),
		 getint(fd, SOL_SOCKET, SO_PRIORITY), getint(fd, SOL_SOCKET, SO_MARK), lg.l_onoff,
		 lg.l_linger);
	snprintf(n, sizeof(n), "%s_ip_opts", name);
	if (family == AF_INET)
		wl_check(n,
			 getint(fd, IPPROTO_IP, IP_TOS) == 0x10 &&
			     getint(fd, IPPROTO_IP, IP_TTL) == 33,
			 "tos %#x ttl %d", getint(fd, IPPROTO_IP, IP_TOS),
			 getint(fd, IPPROTO_IP, IP_TTL));
	else
		wl_check(n, getint(fd, IPPROTO_IPV6, IPV6_TCLASS) == 0x20, "tclass %#x",
			 getint(fd, IPPROTO_IPV6, IPV6_TCLASS));
}

static struct sock_filter pass_all[] = {
    {BPF_LD | BPF_W | BPF_LEN, 0, 0, 0},
    {BPF_RET | BPF_K, 0, 0, 0xffffffff},
};

static void set_client_opts(int fd)
{
	struct timeval rt = {1, 500000}, st = {2, 248000};
	struct sock_fprog prog = {2, pass_all};

	if (setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &rt, sizeof(rt)) ||
	    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &st, sizeof(st)) ||
	    setsockopt(fd, SOL_SOCKET, SO_ATTACH_FILTER, &prog, sizeof(prog)))
		wl_die("client options: %s", strerror(errno));
	setint(fd, SOL_SOCKET, SO_LOCK_FILTER, 1);
}

static long timeo_us(int fd, int name)
{
	struct timeval tv;
	socklen_t len = sizeof(tv);

	return getsockopt(fd, SOL_SOCKET, name, &tv, &len) ? -1 : tv.tv_sec * 1000000L + tv.tv_usec;
}

static void check_client_opts(const char *name, int fd)
{
	struct sock_filter got[8];
	socklen_t n = 8;
	char what[96];

	snprintf(what, sizeof(what), "%s_cli_rcvtimeo", name);
	wl_check(what, timeo_us(fd, SO_RCVTIMEO) == 1500000, "%ld us", timeo_us(fd, SO_RCVTIMEO));
	snprintf(what, sizeof(what), "%s_cli_sndtimeo", name);
	wl_check(what, timeo_us(fd, SO_SNDTIMEO) == 2248000, "%ld us", timeo_us(fd, SO_SNDTIMEO));
	snprintf(what, sizeof(what), "%s_cli_filter", name);
	wl_check(what,
		 !getsockopt(fd, SOL_SOCKET, SO_GET_FILTER, got, &n) && n == 2 &&
		     !memcmp(got, pass_all, sizeof(pass_all)),
		 "SO_GET_FILTER: %u instructions (%s)", n, strerror(errno));
	snprintf(what, sizeof(what), "%s_cli_filter_locked", name);
	wl_check(what, getint(fd, SOL_SOCKET, SO_LOCK_FILTER) == 1, "SO_LOCK_FILTER %d",
		 getint(fd, SOL_SOCKET, SO_LOCK_FILTER));
}

static void setup(struct conn *c, int family)
{
	struct sockaddr_storage ss;

	c->family = family;
	loopback(family, &ss);
	c->lsn = socket(family, SOCK_STREAM, 0);
	c->cli = socket(family, SOCK_STREAM, 0);
	if (c->lsn < 0 || c->cli < 0)
		wl_die("socket: %s", strerror(errno));
	setint(c->lsn, SOL_SOCKET, SO_REUSEADDR, 1);
	if (family == AF_INET6)
		setint(c->lsn, IPPROTO_IPV6, IPV6_V6ONLY, 1);
	if (bind(c->lsn, (struct sockaddr *)&ss, addr_len(family)) || listen(c->lsn, 7))
		wl_die("bind/listen: %s", strerror(errno));
	name_of(c->lsn, &c->lsn_addr);
	setint(c->cli, SOL_SOCKET, SO_SNDBUF, 96 * 1024);
	set_client_opts(c->cli);
	if (connect(c->cli, (struct sockaddr *)&c->lsn_addr, addr_len(family)))
		wl_die("connect: %s", strerror(errno));
	c->srv = accept(c->lsn, NULL, NULL);
	if (c->srv < 0)
		wl_die("accept: %s", strerror(errno));
	name_of(c->cli, &c->cli_addr);
	name_of(c->srv, &c->srv_addr);
	set_options(c->srv, family);
	fcntl(c->cli, F_SETFL, O_NONBLOCK);
	if (!wl_write_pattern(c->cli, N_CS, 1 + family) ||
	    !wl_write_pattern(c->srv, N_SC, 2 + family))
		wl_die("write: %s", strerror(errno));
}

static void check_name(const char *name, int fd, const struct sockaddr_storage *want, int family)
{
	struct sockaddr_storage ss;

	name_of(fd, &ss);
	wl_check(name, !memcmp(&ss, want, addr_len(family)), "address differs after restore");
}

static void check_established(const char *name, int fd)
{
	struct tcp_info ti;
	socklen_t len = sizeof(ti);

	memset(&ti, 0, sizeof(ti));
	getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &len);
	wl_check(name, ti.tcpi_state == 1, "state %d, want ESTABLISHED (1)", ti.tcpi_state);
}

/* Both ways once more, after the queued data. */
static void check_traffic(const char *name, const struct conn *c)
{
	char buf[16] = {0}, n[96];
	struct pollfd p = {c->srv, POLLIN, 0};
	ssize_t w1 = send(c->cli, "hello", 5, 0), r1 = -1, w2, r2 = -1;

	if (poll(&p, 1, 5000) == 1)
		r1 = recv(c->srv, buf, sizeof(buf), 0);
	snprintf(n, sizeof(n), "%s_more_cs", name);
	wl_check(n, w1 == 5 && r1 == 5 && !memcmp(buf, "hello", 5), "sent %zd, got %zd", w1, r1);
	w2 = send(c->srv, "world!", 6, 0);
	p.fd = c->cli;
	if (poll(&p, 1, 5000) == 1)
		r2 = recv(c->cli, buf, sizeof(buf), 0);
	snprintf(n, sizeof(n), "%s_more_sc", name);
	wl_check(n, w2 == 6 && r2 == 6 && !memcmp(buf, "world!", 6), "sent %zd, got %zd", w2, r2);
}

static void check_listener(const char *name, const struct conn *c)
{
	int k = socket(c->family, SOCK_STREAM, 0), a = -1;
	char n[96];
	int back = -1;

	snprintf(n, sizeof(n), "%s_listen_opts", name);
	back = getint(c->lsn, SOL_SOCKET, SO_REUSEADDR);
	wl_check(n,
		 back == 1 && getint(c->lsn, SOL_SOCKET, SO_ACCEPTCONN) == 1 &&
		     (c->family == AF_INET || getint(c->lsn, IPPROTO_IPV6, IPV6_V6ONLY) == 1),
		 "reuseaddr %d acceptconn %d", back, getint(c->lsn, SOL_SOCKET, SO_ACCEPTCONN));
	if (!connect(k, (const struct sockaddr *)&c->lsn_addr, addr_len(c->family)))
		a = accept(c->lsn, NULL, NULL);
	snprintf(n, sizeof(n), "%s_accepts", name);
	wl_check(n, a >= 0, "a new connection to the listener: %s", strerror(errno));
	close(k);
	if (a >= 0)
		close(a);
}

static void check_conn(const char *name, const struct conn *c)
{
	char n[96];

	snprintf(n, sizeof(n), "%s_lsn_addr", name);
	check_name(n, c->lsn, &c->lsn_addr, c->family);
	snprintf(n, sizeof(n), "%s_cli_addr", name);
	check_name(n, c->cli, &c->cli_addr, c->family);
	snprintf(n, sizeof(n), "%s_srv_addr", name);
	check_name(n, c->srv, &c->srv_addr, c->family);
	check_client_opts(name, c->cli);
	snprintf(n, sizeof(n), "%s_cli_state", name);
	check_established(n, c->cli);
	snprintf(n, sizeof(n), "%s_srv_state", name);
	check_established(n, c->srv);
	snprintf(n, sizeof(n), "%s_srv", name);
	check_options(n, c->srv, c->family);
	snprintf(n, sizeof(n), "%s_cli_sndbuf", name);
	wl_check(n, getint(c->cli, SOL_SOCKET, SO_SNDBUF) == 2 * 96 * 1024, "SO_SNDBUF %d",
		 getint(c->cli, SOL_SOCKET, SO_SNDBUF));
	snprintf(n, sizeof(n), "%s_cli_nonblock", name);
	wl_check_fl(n, c->cli, O_NONBLOCK, O_NONBLOCK);
	fcntl(c->cli, F_SETFL, 0);
	snprintf(n, sizeof(n), "%s_sc", name);
	wl_check_queued(n, c->cli, N_SC, 2 + c->family);
	snprintf(n, sizeof(n), "%s_cs", name);
	wl_check_queued(n, c->srv, N_CS, 1 + c->family);
	check_traffic(name, c);
	check_listener(name, c);
}

int main(void)
{
	struct conn c4, c6;
	struct sockaddr_storage ss, bound_addr;
	int bound = socket(AF_INET, SOCK_STREAM, 0), unbound = socket(AF_INET6, SOCK_STREAM, 0);

	setup(&c4, AF_INET);
	setup(&c6, AF_INET6);
	loopback(AF_INET, &ss);
	if (bind(bound, (struct sockaddr *)&ss, sizeof(struct sockaddr_in)))
		wl_die("bind: %s", strerror(errno));
	name_of(bound, &bound_addr);
	wl_ready();
	wl_wait_go();
	check_conn("v4", &c4);
	check_conn("v6", &c6);
	check_name("bound_addr", bound, &bound_addr, AF_INET);
	wl_check("unbound",
		 getint(unbound, SOL_SOCKET, SO_DOMAIN) == AF_INET6 &&
		     getint(unbound, SOL_SOCKET, SO_ACCEPTCONN) == 0,
		 "domain %d", getint(unbound, SOL_SOCKET, SO_DOMAIN));
	wl_done();
}
