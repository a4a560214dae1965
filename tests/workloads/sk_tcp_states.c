/* sk_tcp_states.c: TCP connections in every state a connection can be
 * frozen in, IPv4 (127.0.0.1), IPv6 (::1) and v4-mapped on IPv6 sockets
 * (::ffff:127.0.0.1), in a network namespace of the
 * test's own (netns=1), three times: both ends of each connection in the
 * tree; the "b" ends (and the listener) in a process outside the tree (a
 * grandchild that was let go to the harness, the subreaper, before the
 * dump); the "a" ends outside. The process outside runs the same checks on
 * the ends it holds; the reads order the two. Segments are held
 * back by an nftables table of the workload's own (drop sets of
 * "sport . dport", and a set where only FINs are dropped) to keep the
 * states that are passed through in a blink:
 *   fw1: FIN_WAIT1 (data + FIN sent, not acknowledged) / ESTABLISHED
 *   fw2: FIN_WAIT2 (data + FIN acknowledged)            / CLOSE_WAIT (data + FIN unread)
 *   lack: FIN_WAIT2                                     / LAST_ACK (its FIN held back)
 *   cling: FIN_WAIT1                                    / CLOSING
 *   syn: SYN_SENT (its SYN held back), to a listener of the tree
 *   rst: two connections reset by their peer (SO_LINGER 0), with data
 *        unread, one with its ECONNRESET pending, one whose error was read.
 * Each state is checked with inet_diag (`ss -Htan`, or TCP_INFO for CLOSE,
 * which ss does not list) before the dump and after; then the workload lets
 * the segments through and checks that each connection ends as TCP says:
 * the data arrives once and in order, EOF where a FIN was, data goes both
 * ways where the state allows it, the SYN_SENT one connects and carries
 * data, the reset ones read as before (data, the error, EOF; same poll
 * events, same address). No RST is sent in the namespace meanwhile
 * (OutRsts of /proc/net/snmp does not move). */
#include "wl.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#define WAIT_S 20.0 /* for a held-back segment to be sent again and taken */

struct pair {
	int a, b;   /* a connected to b (b accepted) */
	int pa, pb; /* their ports */
};

struct fam {
	int family;
	const char *tag;
	char outside; /* 0, 'a' or 'b': which ends live outside the tree */
	int lsn, plsn;
	struct pair fw1, fw2, lack, cling;
	int syn, psyn;
	int rst1, rst2;
	struct sockaddr_storage rst1_name, rst2_name;
	int rst1_ev, rst2_ev;
};

static void sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void sh(const char *fmt, ...)
{
	char cmd[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	if (system(cmd))
		wl_die("%s failed", cmd);
}

static void hold(const char *set, int sport, int dport, bool on)
{
	sh("nft %s element inet wl %s { %d . %d }", on ? "add" : "delete", set, sport, dport);
}

static int port_of(int fd)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);

	if (getsockname(fd, (struct sockaddr *)&ss, &len))
		wl_die("getsockname: %s", strerror(errno));
	return ntohs(ss.ss_family == AF_INET ? ((struct sockaddr_in *)&ss)->sin_port
					     : ((struct sockaddr_in6 *)&ss)->sin6_port);
}

/* An IPv6 socket on a v4-mapped address (::ffff:127.0.0.1): the packets
 * are IPv4. */
#define AF_MAPPED (AF_INET6 | 0x100)

static int sock_family(int family)
{
	return family == AF_MAPPED ? AF_INET6 : family;
}

static socklen_t loopback(int family, int port, struct sockaddr_storage *ss)
{
	memset(ss, 0, sizeof(*ss));
	ss->ss_family = sock_family(family);
	if (family == AF_MAPPED) {
		struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)ss;
		in6->sin6_addr.s6_addr[10] = in6->sin6_addr.s6_addr[11] = 0xff;
		in6->sin6_addr.s6_addr[12] = 127;
		in6->sin6_addr.s6_addr[15] = 1;
		in6->sin6_port = htons(port);
		return sizeof(*in6);
	}
	if (family == AF_INET) {
		((struct sockaddr_in *)ss)->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		((struct sockaddr_in *)ss)->sin_port = htons(port);
		return sizeof(struct sockaddr_in);
	}
	((struct sockaddr_in6 *)ss)->sin6_addr = in6addr_loopback;
	((struct sockaddr_in6 *)ss)->sin6_port = htons(port);
	return sizeof(struct sockaddr_in6);
}

static int tcp_state(int fd)
{
	struct tcp_info ti;
	socklen_t len = sizeof(ti);

	return getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &len) ? -1 : ti.tcpi_state;
}

static int port_in(const char *addr)
{
	const char *colon = strrchr(addr, ':');

	return colon && colon[1] != '*' ? atoi(colon + 1) : 0;
}

/* The state inet_diag gives the socket of local port p and peer port q
 * (0: a listener), "" if none. */
static void diag_state(int p, int q, char *out, size_t len)
{
	char line[512], st[32], local[128], peer[128];
	FILE *f = popen("ss -Htan", "r");

	out[0] = 0;
	if (!f)
		wl_die("ss: %s", strerror(errno));
	while (fgets(line, sizeof(line), f)) {
		if (sscanf(line, "%31s %*s %*s %127s %127s", st, local, peer) == 3 &&
		    port_in(local) == p && port_in(peer) == q)
			snprintf(out, len, "%s", st);
	}
	pclose(f);
}

static void check_diag(const char *tag, const char *name, int port, int peer, const char *want)
{
	char got[32], n[64];

	diag_state(port, peer, got, sizeof(got));
	snprintf(n, sizeof(n), "%s_%s_diag", tag, name);
	wl_check(n, !strcmp(got, want), "port %d: inet_diag says %s, want %s", port, got, want);
}

static void wait_state(int fd, int want, const char *what)
{
	double end = wl_now() + WAIT_S;

	while (fd >= 0 && tcp_state(fd) != want)
		if (wl_now() > end)
			wl_die("%s: state %d, waited for %d", what, tcp_state(fd), want);
		else
			usleep(2000);
}

static void make_pair(int family, int lsn, int plsn, struct pair *p)
{
	struct sockaddr_storage ss;
	socklen_t len = loopback(family, plsn, &ss);

	p->a = socket(sock_family(family), SOCK_STREAM, 0);
	if (p->a < 0 || connect(p->a, (struct sockaddr *)&ss, len))
		wl_die("connect: %s", strerror(errno));
	p->b = accept(lsn, NULL, NULL);
	if (p->b < 0)
		wl_die("accept: %s", strerror(errno));
	p->pa = port_of(p->a);
	p->pb = port_of(p->b);
}

static void send_text(int fd, const char *s)
{
	if (fd >= 0 && wl_write_full(fd, s, strlen(s)) != (ssize_t)strlen(s))
		wl_die("write: %s", strerror(errno));
}

/* ---- setting the states up ---- */

static void set_up_fins(struct fam *f)
{
	/* fw1: a's data and FIN held back */
	make_pair(f->family, f->lsn, f->plsn, &f->fw1);
	hold("d", f->fw1.pa, f->fw1.pb, true);
	send_text(f->fw1.a, "fw1 data from a");
	shutdown(f->fw1.a, SHUT_WR);
	wait_state(f->fw1.a, TCP_FIN_WAIT1, "fw1.a");
	/* fw2: a's data and FIN acknowledged, unread by b; b's data unread by a */
	make_pair(f->family, f->lsn, f->plsn, &f->fw2);
	send_text(f->fw2.b, "fw2 data from b");
	send_text(f->fw2.a, "fw2 data from a");
	shutdown(f->fw2.a, SHUT_WR);
	wait_state(f->fw2.a, TCP_FIN_WAIT2, "fw2.a");
	wait_state(f->fw2.b, TCP_CLOSE_WAIT, "fw2.b");
	/* lack: a's FIN acknowledged and read; b's FIN held back */
	make_pair(f->family, f->lsn, f->plsn, &f->lack);
	shutdown(f->lack.a, SHUT_WR);
	wait_state(f->lack.b, TCP_CLOSE_WAIT, "lack.b");
	/* b's ACK of that FIN may be delayed and ride on b's FIN, which is
	 * held back: a would stay in FIN_WAIT1 */
	wait_state(f->lack.a, TCP_FIN_WAIT2, "lack.a");
	hold("f", f->lack.pb, f->lack.pa, true);
	shutdown(f->lack.b, SHUT_WR);
	wait_state(f->lack.b, TCP_LAST_ACK, "lack.b");
	/* cling: both FINs sent at once; a's reaches b, nothing of b reaches a */
	make_pair(f->family, f->lsn, f->plsn, &f->cling);
	hold("d", f->cling.pa, f->cling.pb, true);
	hold("d", f->cling.pb, f->cling.pa, true);
	shutdown(f->cling.a, SHUT_WR);
	shutdown(f->cling.b, SHUT_WR);
	hold("d", f->cling.pa, f->cling.pb, false);
	wait_state(f->cling.b, TCP_CLOSING, "cling.b");
}

static void set_up_syn(struct fam *f)
{
	struct sockaddr_storage ss;
	socklen_t len = loopback(f->family, 0, &ss);

	f->syn = socket(sock_family(f->family), SOCK_STREAM | SOCK_NONBLOCK, 0);
	if (f->syn < 0 || bind(f->syn, (struct sockaddr *)&ss, len))
		wl_die("bind: %s", strerror(errno));
	f->psyn = port_of(f->syn);
	hold("d", f->psyn, f->plsn, true);
	len = loopback(f->family, f->plsn, &ss);
	if (!connect(f->syn, (struct sockaddr *)&ss, len) || errno != EINPROGRESS)
		wl_die("connect gave no EINPROGRESS: %s", strerror(errno));
	wait_state(f->syn, TCP_SYN_SENT, "syn");
}

/* a connection reset by its peer with data left unread */
static int reset_one(struct fam *f, struct sockaddr_storage *name)
{
	struct pair p;
	struct linger lg = {1, 0};
	socklen_t len = sizeof(*name);

	make_pair(f->family, f->lsn, f->plsn, &p);
	send_text(p.b, "unread before the reset");
	setsockopt(p.b, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
	while (wl_fionread(p.a) < 23)
		usleep(1000);
	close(p.b);
	wait_state(p.a, TCP_CLOSE, "reset");
	getsockname(p.a, (struct sockaddr *)name, &len);
	return p.a;
}

static void set_up_resets(struct fam *f)
{
	int e;

	f->rst1 = reset_one(f, &f->rst1_name);
	f->rst2 = reset_one(f, &f->rst2_name);
	e = wl_sockopt(f->rst2, SO_ERROR);
	if (e != ECONNRESET)
		wl_die("SO_ERROR after a reset: %d", e);
	f->rst1_ev = wl_revents(f->rst1, POLLIN | POLLOUT | POLLRDHUP);
	f->rst2_ev = wl_revents(f->rst2, POLLIN | POLLOUT | POLLRDHUP);
}

static void set_up(struct fam *f)
{
	struct sockaddr_storage ss;
	socklen_t len = loopback(f->family, 0, &ss);
	int one = 1;

	f->lsn = socket(sock_family(f->family), SOCK_STREAM, 0);
	if (f->family == AF_INET6)
		setsockopt(f->lsn, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
	if (f->lsn < 0 || bind(f->lsn, (struct sockaddr *)&ss, len) || listen(f->lsn, 16))
		wl_die("listen: %s", strerror(errno));
	f->plsn = port_of(f->lsn);
	set_up_fins(f);
	set_up_syn(f);
	set_up_resets(f);
}

static void check_states(struct fam *f)
{
	const char *t = f->tag;

	check_diag(t, "fw1_a", f->fw1.pa, f->fw1.pb, "FIN-WAIT-1");
	check_diag(t, "fw1_b", f->fw1.pb, f->fw1.pa, "ESTAB");
	check_diag(t, "fw2_a", f->fw2.pa, f->fw2.pb, "FIN-WAIT-2");
	check_diag(t, "fw2_b", f->fw2.pb, f->fw2.pa, "CLOSE-WAIT");
	check_diag(t, "lack_a", f->lack.pa, f->lack.pb, "FIN-WAIT-2");
	check_diag(t, "lack_b", f->lack.pb, f->lack.pa, "LAST-ACK");
	check_diag(t, "cling_a", f->cling.pa, f->cling.pb, "FIN-WAIT-1");
	check_diag(t, "cling_b", f->cling.pb, f->cling.pa, "CLOSING");
	check_diag(t, "syn", f->psyn, f->plsn, "SYN-SENT");
	check_diag(t, "lsn", f->plsn, 0, "LISTEN");
}

/* ---- after: the segments let through ---- */

static void timeouts(int fd);

static void check_read(const char *tag, const char *name, int fd, const char *want, bool eof)
{
	char buf[256] = "", n[64];
	size_t len = strlen(want);
	ssize_t got, end;

	if (fd < 0)
		return;
	got = len ? wl_read_full(fd, buf, len) : 0;
	end = eof ? read(fd, buf + len, 1) : 0;

	snprintf(n, sizeof(n), "%s_%s", tag, name);
	wl_check(n, got == (ssize_t)len && !memcmp(buf, want, len) && end == 0,
		 "read %zd bytes \"%.*s\" (want \"%s\"), then %zd", got, (int)(got > 0 ? got : 0),
		 buf, want, end);
}

static void unhold(struct fam *f)
{
	hold("d", f->fw1.pa, f->fw1.pb, false);
	hold("f", f->lack.pb, f->lack.pa, false);
	hold("d", f->cling.pb, f->cling.pa, false);
	hold("d", f->psyn, f->plsn, false);
}

static void check_fins(struct fam *f)
{
	const char *t = f->tag;

	/* fw1: the held-back data and FIN come, b answers, b closes */
	check_read(t, "fw1_b_reads", f->fw1.b, "fw1 data from a", true);
	send_text(f->fw1.b, "fw1 answer");
	check_read(t, "fw1_a_reads", f->fw1.a, "fw1 answer", false);
	if (f->fw1.b >= 0)
		shutdown(f->fw1.b, SHUT_WR);
	check_read(t, "fw1_a_eof", f->fw1.a, "", true);
	/* fw2: b had a's data and FIN unread; a had b's data unread */
	check_read(t, "fw2_b_reads", f->fw2.b, "fw2 data from a", true);
	check_read(t, "fw2_a_reads", f->fw2.a, "fw2 data from b", false);
	send_text(f->fw2.b, "fw2 more");
	check_read(t, "fw2_a_more", f->fw2.a, "fw2 more", false);
	if (f->fw2.b >= 0)
		shutdown(f->fw2.b, SHUT_WR);
	check_read(t, "fw2_a_eof", f->fw2.a, "", true);
	/* lack: b's FIN comes; both end closed */
	check_read(t, "lack_b_eof", f->lack.b, "", true);
	check_read(t, "lack_a_eof", f->lack.a, "", true);
	wait_state(f->lack.b, TCP_CLOSE, "lack.b");
	/* cling: b's FIN and ACK come to a; both end closed */
	check_read(t, "cling_a_eof", f->cling.a, "", true);
	check_read(t, "cling_b_eof", f->cling.b, "", true);
	wait_state(f->cling.b, TCP_CLOSE, "cling.b");
	wait_state(f->cling.a, TCP_CLOSE, "cling.a");
}

static void check_syn(struct fam *f)
{
	struct pollfd p = {.fd = f->syn, .events = POLLOUT};
	int srv = -1, n;
	char name[64];

	if (f->syn >= 0) {
		n = poll(&p, 1, (int)(WAIT_S * 1000));
		snprintf(name, sizeof(name), "%s_syn_connects", f->tag);
		wl_check(name,
			 n == 1 && wl_sockopt(f->syn, SO_ERROR) == 0 &&
			     tcp_state(f->syn) == TCP_ESTABLISHED,
			 "poll %d, SO_ERROR %d, state %d", n, wl_sockopt(f->syn, SO_ERROR),
			 tcp_state(f->syn));
		fcntl(f->syn, F_SETFL, 0);
	}
	if (f->lsn >= 0 && (srv = accept(f->lsn, NULL, NULL)) < 0)
		wl_die("accept after SYN_SENT: %s", strerror(errno));
	timeouts(srv);
	timeouts(f->syn);
	send_text(f->syn, "syn data");
	send_text(srv, "syn answer");
	check_read(f->tag, "syn_srv_reads", srv, "syn data", false);
	check_read(f->tag, "syn_cli_reads", f->syn, "syn answer", false);
	if (srv >= 0)
		close(srv);
}

static void check_reset(const char *tag, const char *name, int fd, int ev,
			const struct sockaddr_storage *was, bool pending)
{
	struct sockaddr_storage now;
	socklen_t len = sizeof(now);
	char buf[64] = "", n[64];
	int got_ev = wl_revents(fd, POLLIN | POLLOUT | POLLRDHUP), e1, e2;
	ssize_t r1, r2 = 0, r3;

	if (fd < 0)
		return;
	snprintf(n, sizeof(n), "%s_%s_state", tag, name);
	memset(&now, 0, sizeof(now));
	getsockname(fd, (struct sockaddr *)&now, &len);
	wl_check(n, tcp_state(fd) == TCP_CLOSE && got_ev == ev && !memcmp(&now, was, len),
		 "state %d, poll %#x (was %#x), same name %d", tcp_state(fd), got_ev, ev,
		 !memcmp(&now, was, len));
	r1 = read(fd, buf, sizeof(buf));
	if (pending) {
		r2 = read(fd, buf + 40, 1);
		e1 = errno;
	} else
		e1 = ECONNRESET;
	r3 = read(fd, buf + 40, 1);
	e2 = errno;
	snprintf(n, sizeof(n), "%s_%s_reads", tag, name);
	wl_check(n,
		 r1 == 23 && !memcmp(buf, "unread before the reset", 23) && r2 <= 0 &&
		     (!pending || e1 == ECONNRESET) && r3 == 0,
		 "read %zd, then %zd (%s), then %zd (%s)", r1, r2, strerror(e1), r3, strerror(e2));
}

static int out_rsts(void)
{
	char line[1024], names[1024] = "";
	FILE *f = fopen("/proc/net/snmp", "r");
	int idx = -1, v = -1;

	while (f && fgets(line, sizeof(line), f)) {
		if (strncmp(line, "Tcp:", 4))
			continue;
		if (!names[0]) {
			snprintf(names, sizeof(names), "%s", line);
			continue;
		}
		char *save1, *save2, *a = strtok_r(names, " \n", &save1);
		char *b = strtok_r(line, " \n", &save2);
		for (int i = 0; a && b;
		     i++, a = strtok_r(NULL, " \n", &save1), b = strtok_r(NULL, " \n", &save2))
			if (!strcmp(a, "OutRsts"))
				idx = i, v = atoi(b);
	}
	if (f)
		fclose(f);
	if (idx < 0)
		wl_die("no OutRsts in /proc/net/snmp");
	return v;
}

/* The ends the process keeps: the others are closed (their other fd, in
 * the other process, keeps them open). side: 'a' or 'b'; outside: whether
 * this is the process outside the tree. */
static void keep(int *fd, char side, const struct fam *f, bool outside)
{
	if ((f->outside == side) != outside) {
		close(*fd);
		*fd = -1;
	}
}

static void split(struct fam *f, bool outside)
{
	struct pair *ps[] = {&f->fw1, &f->fw2, &f->lack, &f->cling};

	for (size_t i = 0; i < sizeof(ps) / sizeof(ps[0]); i++) {
		keep(&ps[i]->a, 'a', f, outside);
		keep(&ps[i]->b, 'b', f, outside);
	}
	keep(&f->lsn, 'b', f, outside);
	keep(&f->syn, 'a', f, outside);
	keep(&f->rst1, 'a', f, outside);
	keep(&f->rst2, 'a', f, outside);
}

static void timeouts(int fd)
{
	struct timeval tv = {(int)WAIT_S, 0};

	if (fd >= 0)
		setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
}

static void set_timeouts(struct fam *f)
{
	struct pair *ps[] = {&f->fw1, &f->fw2, &f->lack, &f->cling};

	for (size_t i = 0; i < sizeof(ps) / sizeof(ps[0]); i++) {
		timeouts(ps[i]->a);
		timeouts(ps[i]->b);
	}
}

static void check_after(struct fam *f)
{
	set_timeouts(f);
	check_reset(f->tag, "rst_pending", f->rst1, f->rst1_ev, &f->rst1_name, true);
	check_reset(f->tag, "rst_read", f->rst2, f->rst2_ev, &f->rst2_name, false);
	check_fins(f);
	check_syn(f);
}

static void wait_file(const char *name)
{
	char p[4096];
	double end = wl_now() + 120;

	wl_path(name, p, sizeof(p));
	while (access(p, F_OK))
		if (wl_now() > end)
			wl_die("no %s file after 120 s", name);
		else
			usleep(5000);
}

static void make_file(const char *name, int value)
{
	char p[4096];
	FILE *f;

	wl_path(name, p, sizeof(p));
	f = fopen(p, "w");
	if (!f)
		wl_die("%s: %s", p, strerror(errno));
	fprintf(f, "%d\n", value);
	fclose(f);
}

/* The process outside the tree: a grandchild, let go to the harness. */
static pid_t outside_peer(struct fam *fams, int n)
{
	pid_t kid = fork();

	if (kid < 0)
		wl_die("fork: %s", strerror(errno));
	if (kid > 0) {
		waitpid(kid, NULL, 0);
		for (int i = 0; i < n; i++)
			split(&fams[i], false);
		return kid;
	}
	if (fork())
		_exit(0);
	/* its own session: the tree's pid stays free for the restore (a
	 * process group keeps its leader's pid in use) */
	setsid();
	alarm(150);
	for (int i = 0; i < n; i++)
		split(&fams[i], true);
	wait_file("checked");
	for (int i = 0; i < n; i++)
		check_after(&fams[i]);
	fflush(stdout);
	make_file("outside-done", wl_failures());
	_exit(0);
}

static int read_file_int(const char *name)
{
	char p[4096];
	int v = -1;
	FILE *f;

	wl_path(name, p, sizeof(p));
	f = fopen(p, "r");
	if (f && fscanf(f, "%d", &v) != 1)
		v = -1;
	if (f)
		fclose(f);
	return v;
}

#define NFAMS 8

int main(void)
{
	struct fam fams[NFAMS] = {
	    {.family = AF_INET, .tag = "v4"},
	    {.family = AF_INET6, .tag = "v6"},
	    {.family = AF_INET, .tag = "v4_b_outside", .outside = 'b'},
	    {.family = AF_INET6, .tag = "v6_b_outside", .outside = 'b'},
	    {.family = AF_INET, .tag = "v4_a_outside", .outside = 'a'},
	    {.family = AF_INET6, .tag = "v6_a_outside", .outside = 'a'},
	    {.family = AF_MAPPED, .tag = "v4mapped"},
	    {.family = AF_MAPPED, .tag = "v4mapped_b_outside", .outside = 'b'},
	};
	int rsts;

	wl_init();
	sh("nft add table inet wl");
	sh("nft add chain inet wl out '{ type filter hook output priority 0; }'");
	sh("nft add set inet wl d '{ type inet_service . inet_service; }'");
	sh("nft add set inet wl f '{ type inet_service . inet_service; }'");
	sh("nft add rule inet wl out tcp sport . tcp dport @d drop");
	sh("nft add rule inet wl out tcp flags \\& fin == fin tcp sport . tcp dport @f drop");
	for (int i = 0; i < NFAMS; i++)
		set_up(&fams[i]);
	for (int i = 0; i < NFAMS; i++)
		check_states(&fams[i]);
	fflush(stdout);
	outside_peer(fams, NFAMS);
	rsts = out_rsts();
	wl_ready();
	wl_wait_go();
	for (int i = 0; i < NFAMS; i++)
		check_states(&fams[i]);
	fflush(stdout);
	make_file("checked", 1);
	for (int i = 0; i < NFAMS; i++)
		unhold(&fams[i]);
	for (int i = 0; i < NFAMS; i++)
		check_after(&fams[i]);
	wait_file("outside-done");
	wl_check("outside_peer", read_file_int("outside-done") == 0,
		 "the process outside the tree counted %d failure(s)",
		 read_file_int("outside-done"));
	wl_check("no_rst", out_rsts() == rsts, "OutRsts went from %d to %d", rsts, out_rsts());
	wl_done();
}
