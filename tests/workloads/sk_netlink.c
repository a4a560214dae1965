/* sk_netlink.c: workload with netlink sockets, run in a network namespace of
 * the test's own (netns=1): a NETLINK_ROUTE socket autobound (the kernel
 * chose its port id) to three groups through bind and one beyond the 32 that
 * bind can name, with every SOL_NETLINK flag, SO_PASSCRED, a locked receive
 * buffer and O_NONBLOCK; a NETLINK_GENERIC datagram socket bound to a port id
 * of its own; two NETLINK_USERSOCK sockets, one connect()ed to the other; a
 * NETLINK_ROUTE socket never bound. After restore it checks every port id,
 * peer, group list and option as read before, then that the route socket
 * answers an RTM_GETLINK dump and still receives the RTM_NEWADDR and
 * RTM_NEWLINK multicasts (with their NETLINK_PKTINFO group), that generic
 * netlink answers, and that the user sockets talk to each other. */
#include "wl.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <linux/genetlink.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <net/if.h>

#ifndef SOL_NETLINK
#define SOL_NETLINK 270
#endif

static const int nl_flags[] = {NETLINK_PKTINFO,		NETLINK_BROADCAST_ERROR, NETLINK_NO_ENOBUFS,
			       NETLINK_LISTEN_ALL_NSID, NETLINK_CAP_ACK,	 NETLINK_EXT_ACK,
			       NETLINK_GET_STRICT_CHK};
#define NR_FLAGS (int)(sizeof(nl_flags) / sizeof(nl_flags[0]))

/* What a socket shows of itself, read before the checkpoint and after. */
struct snap {
	uint32_t portid, dst_pid, dst_groups;
	uint32_t groups[4];
	socklen_t glen;
	int flags[NR_FLAGS];
	int rcvbuf, sndbuf, passcred, fl;
};

static int opt(int fd, int level, int name)
{
	int v = -1;
	socklen_t len = sizeof(v);

	if (getsockopt(fd, level, name, &v, &len))
		return -errno;
	return v;
}

static void take(int fd, struct snap *s)
{
	struct sockaddr_nl sa;
	socklen_t len = sizeof(sa);

	memset(s, 0, sizeof(*s));
	if (getsockname(fd, (struct sockaddr *)&sa, &len) == 0)
		s->portid = sa.nl_pid;
	len = sizeof(sa);
	if (getpeername(fd, (struct sockaddr *)&sa, &len) == 0) {
		s->dst_pid = sa.nl_pid;
		s->dst_groups = sa.nl_groups;
	}
	s->glen = sizeof(s->groups);
	if (getsockopt(fd, SOL_NETLINK, NETLINK_LIST_MEMBERSHIPS, s->groups, &s->glen))
		s->glen = 0;
	for (int i = 0; i < NR_FLAGS; i++)
		s->flags[i] = opt(fd, SOL_NETLINK, nl_flags[i]);
	s->rcvbuf = opt(fd, SOL_SOCKET, SO_RCVBUF);
	s->sndbuf = opt(fd, SOL_SOCKET, SO_SNDBUF);
	s->passcred = opt(fd, SOL_SOCKET, SO_PASSCRED);
	s->fl = fcntl(fd, F_GETFL) & O_NONBLOCK;
}

static void check_snap(const char *name, int fd, const struct snap *was)
{
	struct snap now;
	char n[64];

	take(fd, &now);
#define SAME(field)                                                                                \
	(snprintf(n, sizeof(n), "%s_" #field, name),                                               \
	 wl_check(n, now.field == was->field, "%ld, was %ld", (long)now.field, (long)was->field))
#define SAME_I(field, i)                                                                           \
	(snprintf(n, sizeof(n), "%s_" #field "%d", name, i),                                       \
	 wl_check(n, now.field[i] == was->field[i], "%ld, was %ld", (long)now.field[i],            \
		  (long)was->field[i]))
	SAME(portid);
	SAME(dst_pid);
	SAME(dst_groups);
	SAME(glen);
	for (int i = 0; i < 4; i++)
		SAME_I(groups, i);
	for (int i = 0; i < NR_FLAGS; i++)
		SAME_I(flags, i);
	SAME(rcvbuf);
	SAME(sndbuf);
	SAME(passcred);
	SAME(fl);
#undef SAME
#undef SAME_I
}

static int nl_socket(int type, int proto, uint32_t port, uint32_t groups)
{
	struct sockaddr_nl sa = {.nl_family = AF_NETLINK, .nl_pid = port, .nl_groups = groups};
	int fd = socket(AF_NETLINK, type, proto);

	if (fd < 0 || ((port || groups) && bind(fd, (struct sockaddr *)&sa, sizeof(sa))))
		wl_die("netlink socket %d/%d port %u: %s", type, proto, port, strerror(errno));
	return fd;
}

static void set(int fd, int level, int name, int v)
{
	if (setsockopt(fd, level, name, &v, sizeof(v)))
		wl_die("setsockopt %d/%d: %s", level, name, strerror(errno));
}

/* ---- talking to the kernel ---- */

/* Waits up to 5 s for fd to be readable. */
static bool readable(int fd)
{
	struct pollfd p = {.fd = fd, .events = POLLIN};

	return poll(&p, 1, 5000) == 1;
}

static void send_req(int fd, struct nlmsghdr *h)
{
	struct sockaddr_nl k = {.nl_family = AF_NETLINK};

	if (sendto(fd, h, h->nlmsg_len, 0, (struct sockaddr *)&k, sizeof(k)) !=
	    (ssize_t)h->nlmsg_len)
		wl_die("netlink send: %s", strerror(errno));
}

/* An RTM_GETLINK dump on fd: whether lo is in it, every part came for port,
 * and it ended with NLMSG_DONE. */
static void check_getlink(int fd, uint32_t port)
{
	struct {
		struct nlmsghdr h;
		struct ifinfomsg i;
	} q = {.h = {.nlmsg_len = sizeof(q),
		     .nlmsg_type = RTM_GETLINK,
		     .nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP,
		     .nlmsg_seq = 77}};
	static char buf[65536] __attribute__((aligned(8)));
	bool lo = false, done = false, mine = true;
	int links = 0;

	send_req(fd, &q.h);
	while (!done && readable(fd)) {
		ssize_t n = recv(fd, buf, sizeof(buf), 0);
		if (n <= 0)
			break;
		for (struct nlmsghdr *h = (void *)buf; NLMSG_OK(h, (size_t)n);
		     h = NLMSG_NEXT(h, n)) {
			mine &= h->nlmsg_pid == port && h->nlmsg_seq == 77;
			if (h->nlmsg_type == NLMSG_DONE) {
				done = true;
				break;
			}
			if (h->nlmsg_type != RTM_NEWLINK)
				continue;
			links++;
			lo |= ((struct ifinfomsg *)NLMSG_DATA(h))->ifi_index ==
			      (int)if_nametoindex("lo");
		}
	}
	wl_check("route_getlink_dump", done && lo && mine,
		 "done %d, %d links, lo %d, every part for port %u %d", done, links, lo, port,
		 mine);
}

static void add_attr(struct nlmsghdr *h, int type, const void *data, int len)
{
	struct rtattr *a = (void *)((char *)h + NLMSG_ALIGN(h->nlmsg_len));

	a->rta_type = type;
	a->rta_len = RTA_LENGTH(len);
	memcpy(RTA_DATA(a), data, len);
	h->nlmsg_len = NLMSG_ALIGN(h->nlmsg_len) + RTA_ALIGN(a->rta_len);
}

/* Through a socket of its own: an address on lo, then lo's MTU. */
static void make_events(void)
{
	int ctl = nl_socket(SOCK_RAW, NETLINK_ROUTE, 0, 0);
	struct {
		struct nlmsghdr h;
		union {
			struct ifaddrmsg a;
			struct ifinfomsg i;
		};
		char attrs[64];
	} q;
	struct in_addr ip = {htonl(0x7f000009)};
	unsigned mtu = 60000;

	memset(&q, 0, sizeof(q));
	q.h = (struct nlmsghdr){.nlmsg_len = NLMSG_LENGTH(sizeof(q.a)),
				.nlmsg_type = RTM_NEWADDR,
				.nlmsg_flags = NLM_F_REQUEST | NLM_F_CREATE | NLM_F_EXCL};
	q.a = (struct ifaddrmsg){
	    .ifa_family = AF_INET, .ifa_prefixlen = 32, .ifa_index = if_nametoindex("lo")};
	add_attr(&q.h, IFA_LOCAL, &ip, 4);
	add_attr(&q.h, IFA_ADDRESS, &ip, 4);
	send_req(ctl, &q.h);
	memset(&q, 0, sizeof(q));
	q.h = (struct nlmsghdr){.nlmsg_len = NLMSG_LENGTH(sizeof(q.i)),
				.nlmsg_type = RTM_NEWLINK,
				.nlmsg_flags = NLM_F_REQUEST};
	q.i = (struct ifinfomsg){.ifi_family = AF_UNSPEC, .ifi_index = if_nametoindex("lo")};
	add_attr(&q.h, IFLA_MTU, &mtu, 4);
	send_req(ctl, &q.h);
	close(ctl);
}

/* The multicasts on fd: an RTM_NEWADDR of group RTNLGRP_IPV4_IFADDR and an
 * RTM_NEWLINK of group RTNLGRP_LINK, as NETLINK_PKTINFO tells. */
static void check_events(int fd)
{
	static char buf[65536] __attribute__((aligned(8)));
	char cbuf[256];
	bool addr = false, link = false;

	while ((!addr || !link) && readable(fd)) {
		struct iovec iov = {buf, sizeof(buf)};
		struct msghdr m = {.msg_iov = &iov,
				   .msg_iovlen = 1,
				   .msg_control = cbuf,
				   .msg_controllen = sizeof(cbuf)};
		ssize_t n = recvmsg(fd, &m, 0);
		uint32_t group = 0;
		if (n <= 0)
			break;
		for (struct cmsghdr *c = CMSG_FIRSTHDR(&m); c; c = CMSG_NXTHDR(&m, c))
			if (c->cmsg_level == SOL_NETLINK && c->cmsg_type == NETLINK_PKTINFO)
				group = ((struct nl_pktinfo *)CMSG_DATA(c))->group;
		for (struct nlmsghdr *h = (void *)buf; NLMSG_OK(h, (size_t)n);
		     h = NLMSG_NEXT(h, n)) {
			addr |= h->nlmsg_type == RTM_NEWADDR && group == RTNLGRP_IPV4_IFADDR;
			link |= h->nlmsg_type == RTM_NEWLINK && group == RTNLGRP_LINK;
		}
	}
	wl_check("route_multicast_newaddr", addr, "no RTM_NEWADDR of group %d",
		 RTNLGRP_IPV4_IFADDR);
	wl_check("route_multicast_newlink", link, "no RTM_NEWLINK of group %d", RTNLGRP_LINK);
}

/* CTRL_CMD_GETFAMILY "nlctrl": generic netlink answers fd, at its port. */
static void check_generic(int fd, uint32_t port)
{
	struct {
		struct nlmsghdr h;
		struct genlmsghdr g;
		char attrs[64];
	} q = {.h = {.nlmsg_len = NLMSG_LENGTH(GENL_HDRLEN),
		     .nlmsg_type = GENL_ID_CTRL,
		     .nlmsg_flags = NLM_F_REQUEST,
		     .nlmsg_seq = 5},
	       .g = {.cmd = CTRL_CMD_GETFAMILY, .version = 1}};
	static char buf[16384] __attribute__((aligned(8)));
	struct nlmsghdr *h = (void *)buf;
	ssize_t n = -1;

	add_attr(&q.h, CTRL_ATTR_FAMILY_NAME, "nlctrl", 7);
	send_req(fd, &q.h);
	if (readable(fd))
		n = recv(fd, buf, sizeof(buf), 0);
	wl_check("generic_answers",
		 n >= (ssize_t)NLMSG_HDRLEN && h->nlmsg_type == GENL_ID_CTRL &&
		     h->nlmsg_pid == port && h->nlmsg_seq == 5,
		 "recv %zd, type %d, port %u (want %u)", n, n > 0 ? h->nlmsg_type : -1,
		 n > 0 ? h->nlmsg_pid : 0, port);
}

/* b, connected to a, sends without an address; a answers b's port. */
static void check_user(int a, int b, uint32_t pa, uint32_t pb)
{
	struct sockaddr_nl from = {0}, to = {.nl_family = AF_NETLINK, .nl_pid = pb};
	socklen_t len = sizeof(from);
	struct nlmsghdr h = {.nlmsg_len = sizeof(h), .nlmsg_type = 0x1234}, got = {0};
	ssize_t n1 = -1, n2 = -1;

	if (send(b, &h, sizeof(h), 0) == sizeof(h) && readable(a))
		n1 = recvfrom(a, &got, sizeof(got), 0, (struct sockaddr *)&from, &len);
	wl_check(
	    "user_connected_send", n1 == sizeof(h) && got.nlmsg_type == 0x1234 && from.nl_pid == pb,
	    "recv %zd, type 0x%x, from port %u (want %u)", n1, got.nlmsg_type, from.nl_pid, pb);
	h.nlmsg_type = 0x4321;
	if (sendto(a, &h, sizeof(h), 0, (struct sockaddr *)&to, sizeof(to)) == sizeof(h) &&
	    readable(b))
		n2 = recv(b, &got, sizeof(got), 0);
	wl_check("user_answer", n2 == sizeof(h) && got.nlmsg_type == 0x4321, "recv %zd, type 0x%x",
		 n2, got.nlmsg_type);
	(void)pa;
}

int main(void)
{
	uint32_t gport = 0x40000000u | getpid(), uport = 0x50000000u | getpid();
	struct snap s_rt, s_ge, s_ua, s_ub, s_un;
	int rt, ge, ua, ub, un;

	wl_init();
	/* autobound by bind(nl_pid 0): the kernel gives the process's pid */
	rt = nl_socket(SOCK_RAW, NETLINK_ROUTE, 0,
		       1u << (RTNLGRP_LINK - 1) | 1u << (RTNLGRP_IPV4_IFADDR - 1) |
			   1u << (RTNLGRP_IPV6_IFADDR - 1));
	set(rt, SOL_NETLINK, NETLINK_ADD_MEMBERSHIP, RTNLGRP_BRVLAN);
	for (int i = 0; i < NR_FLAGS; i++)
		set(rt, SOL_NETLINK, nl_flags[i], 1);
	set(rt, SOL_SOCKET, SO_RCVBUF, 300000);
	set(rt, SOL_SOCKET, SO_PASSCRED, 1);
	fcntl(rt, F_SETFL, O_NONBLOCK);
	ge = nl_socket(SOCK_DGRAM, NETLINK_GENERIC, gport, 0);
	set(ge, SOL_NETLINK, NETLINK_EXT_ACK, 1);
	ua = nl_socket(SOCK_RAW, NETLINK_USERSOCK, uport, 0);
	ub = nl_socket(SOCK_RAW, NETLINK_USERSOCK, uport + 1, 0);
	{
		struct sockaddr_nl to = {.nl_family = AF_NETLINK, .nl_pid = uport};
		if (connect(ub, (struct sockaddr *)&to, sizeof(to)))
			wl_die("connect: %s", strerror(errno));
	}
	un = nl_socket(SOCK_RAW, NETLINK_ROUTE, 0, 0);
	take(rt, &s_rt);
	take(ge, &s_ge);
	take(ua, &s_ua);
	take(ub, &s_ub);
	take(un, &s_un);
	if (s_rt.portid != (uint32_t)getpid() || s_ge.portid != gport || s_ub.dst_pid != uport ||
	    s_rt.glen != 8 || s_rt.groups[1] != 1u << (RTNLGRP_BRVLAN - 33) || s_un.portid)
		wl_die("setup: port %u, groups %u bytes %x %x, peer %u", s_rt.portid, s_rt.glen,
		       s_rt.groups[0], s_rt.groups[1], s_ub.dst_pid);
	wl_ready();
	wl_wait_go();
	check_snap("route", rt, &s_rt);
	check_snap("generic", ge, &s_ge);
	check_snap("user_a", ua, &s_ua);
	check_snap("user_b", ub, &s_ub);
	check_snap("unbound", un, &s_un);
	wl_check("route_options_on",
		 s_rt.flags[0] == 1 && s_rt.flags[NR_FLAGS - 1] == 1 && s_rt.passcred == 1 &&
		     s_rt.fl,
		 "pktinfo %d strict %d passcred %d", s_rt.flags[0], s_rt.flags[NR_FLAGS - 1],
		 s_rt.passcred);
	check_getlink(rt, s_rt.portid);
	make_events();
	check_events(rt);
	check_generic(ge, gport);
	check_user(ua, ub, uport, uport + 1);
	wl_done();
}
