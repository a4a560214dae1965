/*
 * sockets/dgram: the inet sockets without connections, IPv4 and IPv6 (and
 * v4-mapped addresses on a dual-stack socket), as three rows that share
 * one entry (inet_dgram_entry) and one code: UDP and UDP-Lite; ICMP "ping"
 * sockets (SOCK_DGRAM, IPPROTO_ICMP/ICMPV6: the port is the ICMP id); raw
 * sockets (SOCK_RAW: the port is the protocol), with IP_HDRINCL and their
 * ICMP filter (ICMP_FILTER, ICMP6_FILTER). Unbound, bound, connected.
 *
 * Dump (dgram_dump), on cryo's pidfd_getfd duplicate: getsockname and
 * getpeername give the addresses, getsockopt the options (inet.c's shared
 * int options and the multicast ones, the buffers with SO_BUF_LOCK, the
 * timeouts, the device, the owner, a classic BPF filter (SO_GET_FILTER,
 * with SO_LOCK_FILTER), a raw socket's header and ICMP filter). A
 * ping or raw socket connected to a peer of port 0 (as they always are)
 * answers getpeername with ENOTCONN: its peer is read from the process's
 * /proc/PID/net/{icmp,icmp6,raw,raw6} line of its inode instead.
 * A datagram waiting in the receive queue stops the dump with a line
 * naming the fd: it could be read without consuming it (MSG_PEEK with
 * SO_PEEK_OFF), but the kernel has no way to queue it again with its
 * sender's address, and a datagram given back from another address is not
 * the one the program would have read. The check peeks zero bytes
 * (MSG_DONTWAIT), which consumes nothing and moves no peek offset, so a
 * refused or --leave-running dump leaves the socket as it was.
 *
 * Restore, in the process that holds it (dgram_open): a socket of the same
 * family, type and protocol, the options in the order they were read, the
 * buffers (forced, then the program's locks), bind to the saved address
 * when it was bound, connect to the peer when it was connected, the flags
 * and the owner, then shutdown(2) as it was shut down.
 *
 * Shut down (SHUT_RD, SHUT_WR, both) is the socket's sk_shutdown, which no
 * getsockopt gives: for a bound UDP or UDP-Lite socket sock_diag does
 * (INET_DIAG_SHUTDOWN, one query filtered on its port, matched by inode);
 * for the others (unbound, ping, raw, or in a network namespace cryo's
 * sock_diag does not see) poll tells receiving (POLLRDHUP) and both
 * (POLLHUP), and sending alone cannot be seen (it is then not kept). A
 * socket shut for receiving answers recv at once, so its queue is told
 * empty by SO_MEMINFO instead. The restore shuts the new socket down the
 * same way after connecting; on a socket never connected shutdown(2)
 * answers ENOTCONN, having shut it down all the same.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <netinet/in.h>
#include <net/if.h>
#include <linux/icmp.h>
#include <linux/icmpv6.h>
#include <linux/inet_diag.h>
#include <linux/sock_diag.h>

#include "fdkind.h"
#include "infra/log.h"
#include "sockets/inet.h"
#include "sockets/sockopt.h"

#ifndef SO_BUF_LOCK
#define SO_BUF_LOCK 72
#endif

static const char *proto_name(const InetDgramEntry *u)
{
	if (u->type == SOCK_RAW)
		return u->family == AF_INET6 ? "raw IPv6" : "raw IPv4";
	if (u->protocol == IPPROTO_ICMP || u->protocol == IPPROTO_ICMPV6)
		return u->family == AF_INET6 ? "ICMPv6 ping" : "ICMP ping";
	if (u->protocol == IPPROTO_UDPLITE)
		return u->family == AF_INET6 ? "UDP-Litev6" : "UDP-Lite";
	return u->family == AF_INET6 ? "UDPv6" : "UDP";
}

/* "A:p" or "A:p -> B:q". */
static const char *endpoints(const InetDgramEntry *u, char *buf, size_t len)
{
	return inet_endpoints(u->family, &u->src_addr, u->src_port,
			      u->has_dst_addr ? &u->dst_addr : NULL, u->dst_port, buf, len);
}

/* ---- dump ---- */

/* The socket's family, type and protocol, if it is an inet one. */
static bool inet_triple(const struct fd_probe *p, int *type, int *proto)
{
	*type = p->sk_type;
	*proto = p->sk_proto;
	return p->sk_domain == AF_INET || p->sk_domain == AF_INET6;
}

static bool is_ping(int type, int proto)
{
	return type == SOCK_DGRAM && (proto == IPPROTO_ICMP || proto == IPPROTO_ICMPV6);
}

static bool udp_recognise(const struct fd_probe *p)
{
	int type, proto;

	return inet_triple(p, &type, &proto) && type == SOCK_DGRAM &&
	       (proto == IPPROTO_UDP || proto == IPPROTO_UDPLITE);
}

static bool icmp_recognise(const struct fd_probe *p)
{
	int type, proto;

	return inet_triple(p, &type, &proto) && is_ping(type, proto);
}

static bool raw_recognise(const struct fd_probe *p)
{
	int type, proto;

	return inet_triple(p, &type, &proto) && type == SOCK_RAW;
}

/* The peer of a connected ping or raw socket from its line of
 * /proc/PID/net/TABLE ("sl local rem st ... uid timeout inode"); 0 if not
 * connected. */
static int proc_peer(pid_t pid, InetDgramEntry *u)
{
	const char *table = u->type == SOCK_RAW ? (u->family == AF_INET6 ? "raw6" : "raw")
						: (u->family == AF_INET6 ? "icmp6" : "icmp");
	char path[64], line[512], rem[40];
	unsigned st, port, w[4];
	unsigned long ino;
	FILE *f;
	int ret = 0;

	snprintf(path, sizeof(path), "/proc/%d/net/%s", pid, table);
	f = fopen(path, "r");
	if (!f)
		return err_errno("%s", path);
	while (fgets(line, sizeof(line), f)) {
		if (sscanf(line,
			   " %*u: %*39[0-9A-Fa-f]:%*x %39[0-9A-Fa-f]:%x %x %*s %*s %*s %*u "
			   "%*u %lu",
			   rem, &port, &st, &ino) != 4 ||
		    ino != u->ino || st != 1 /* TCP_ESTABLISHED: connected */)
			continue;
		size_t nw = u->family == AF_INET6 ? 4 : 1;
		for (size_t i = 0; i < nw; i++)
			sscanf(rem + 8 * i, "%8x", &w[i]);
		u->dst_addr.len = 4 * nw;
		u->dst_addr.data = malloc(u->dst_addr.len);
		if (!u->dst_addr.data) {
			ret = err_set("out of memory");
			break;
		}
		memcpy(u->dst_addr.data, w, u->dst_addr.len);
		u->has_dst_addr = u->has_dst_port = true;
		u->dst_port = port;
		break;
	}
	fclose(f);
	return ret;
}

static int read_addrs(pid_t pid, int fd, InetDgramEntry *u)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);

	if (getsockname(fd, (struct sockaddr *)&ss, &len))
		return err_errno("getsockname");
	if (inet_copy_addr(&ss, &u->src_addr, &u->src_port))
		return -1;
	len = sizeof(ss);
	if (getpeername(fd, (struct sockaddr *)&ss, &len))
		return errno != ENOTCONN ? err_errno("getpeername")
		       : u->type == SOCK_RAW || is_ping(u->type, u->protocol) ? proc_peer(pid, u)
									      : 0;
	u->has_dst_addr = u->has_dst_port = true;
	return inet_copy_addr(&ss, &u->dst_addr, &u->dst_port);
}

/* Buffers, reuse, timeouts, device, owner. */
static int read_other_opts(int fd, InetDgramEntry *u)
{
	int v, lock;
	char dev[IFNAMSIZ + 1] = "";
	socklen_t dlen = sizeof(dev) - 1;

	if (sk_get_int(fd, SOL_SOCKET, SO_REUSEADDR, &v) ||
	    sk_get_int(fd, SOL_SOCKET, SO_SNDBUF, (int *)&u->sndbuf) ||
	    sk_get_int(fd, SOL_SOCKET, SO_RCVBUF, (int *)&u->rcvbuf) ||
	    sk_get_int(fd, SOL_SOCKET, SO_BUF_LOCK, &lock) ||
	    inet_get_timeo(fd, SO_RCVTIMEO, &u->rcvtimeo_us) ||
	    inet_get_timeo(fd, SO_SNDTIMEO, &u->sndtimeo_us) ||
	    getsockopt(fd, SOL_SOCKET, SO_BINDTODEVICE, dev, &dlen))
		return err_errno("getsockopt");
	u->reuseaddr = v;
	u->buf_lock = lock;
	if (dev[0] && !(u->bind_dev = strdup(dev)))
		return err_set("out of memory");
	v = fcntl(fd, F_GETOWN);
	if (v) {
		u->has_owner = true;
		u->owner = v;
	}
	return 0;
}

/* ---- dump: shut down ---- */

struct shut_query {
	uint64_t ino;
	bool found;
	uint8_t how;
};

static int shut_one(const struct nlmsghdr *h, void *arg)
{
	const struct inet_diag_msg *m = NLMSG_DATA(h);
	struct shut_query *q = arg;
	const uint8_t *a;
	size_t len;

	if (h->nlmsg_len < NLMSG_LENGTH(sizeof(*m)) || m->idiag_inode != q->ino)
		return 0;
	a = sk_diag_attr(h, sizeof(*m), INET_DIAG_SHUTDOWN, &len);
	q->found = true;
	q->how = a && len >= 1 ? *a & 3 : 0;
	return 1;
}

/* sk_shutdown: sock_diag for a bound UDP socket, else what poll shows. */
static int read_shutdown(int fd, InetDgramEntry *u)
{
	struct shut_query q = {.ino = u->ino};
	struct pollfd p = {.fd = fd, .events = POLLRDHUP};

	if (u->type == SOCK_DGRAM && u->src_port &&
	    (u->protocol == IPPROTO_UDP || u->protocol == IPPROTO_UDPLITE)) {
		struct inet_diag_req_v2 r = {.sdiag_family = u->family,
					     .sdiag_protocol = u->protocol,
					     .idiag_states = ~0u,
					     .id.idiag_sport = htons(u->src_port)};
		if (sk_diag_walk(&r, sizeof(r), shut_one, &q))
			return err_wrap("sock_diag");
	}
	if (!q.found) {
		if (poll(&p, 1, 0) < 0)
			return err_errno("poll");
		q.how = p.revents & POLLHUP ? 3 : p.revents & POLLRDHUP ? 1 : 0;
	}
	u->has_shutdown = q.how != 0;
	u->shutdown = q.how;
	return 0;
}

/* A datagram waiting to be read: peeking zero bytes consumes nothing (on
 * a socket shut for receiving it answers at once: SO_MEMINFO tells). */
static int check_queue(int fd, const InetDgramEntry *u, const char *what)
{
	uint32_t mem[SK_MEMINFO_VARS] = {0};
	socklen_t len = sizeof(mem);
	bool queued;
	char b;

	if (u->shutdown & 1) {
		if (getsockopt(fd, SOL_SOCKET, SO_MEMINFO, mem, &len))
			return err_errno("%s: SO_MEMINFO", what);
		queued = mem[SK_MEMINFO_RMEM_ALLOC] != 0;
	} else if (recv(fd, &b, 0, MSG_PEEK | MSG_DONTWAIT) >= 0) {
		queued = true;
	} else if (errno != EAGAIN && errno != EWOULDBLOCK) {
		return err_errno("%s: recv(MSG_PEEK)", what);
	} else {
		queued = false;
	}
	if (queued)
		return err_set("%s has datagrams waiting to be read: the kernel cannot queue "
			       "them again with their senders' addresses",
			       what);
	return 0;
}

/* Which filter a raw ICMP socket has: level, name, size (0: none). */
static socklen_t filter_of(const InetDgramEntry *u, int *level, int *name)
{
	if (u->type != SOCK_RAW)
		return 0;
	if (u->family == AF_INET && u->protocol == IPPROTO_ICMP) {
		*level = SOL_RAW;
		*name = ICMP_FILTER;
		return sizeof(struct icmp_filter);
	}
	if (u->family == AF_INET6 && u->protocol == IPPROTO_ICMPV6) {
		*level = IPPROTO_ICMPV6;
		*name = ICMPV6_FILTER;
		return sizeof(struct icmp6_filter);
	}
	return 0;
}

static const struct sk_int_opt_def raw_int_opts[] = {
    SK_OPT(IPPROTO_IP, IP_HDRINCL, AF_INET),
    SK_OPT(IPPROTO_IPV6, IPV6_HDRINCL, AF_INET6),
};

/* A raw socket's header option and ICMP filter. */
static int read_raw_opts(int fd, InetDgramEntry *u)
{
	int level = 0, name = 0;
	socklen_t len = filter_of(u, &level, &name);

	if (u->type != SOCK_RAW)
		return 0;
	if (sk_read_int_opts(fd, u->family, raw_int_opts,
			     sizeof(raw_int_opts) / sizeof(raw_int_opts[0]), &u->opts, &u->n_opts))
		return -1;
	if (!len)
		return 0;
	u->icmp_filter.data = malloc(len);
	if (!u->icmp_filter.data)
		return err_set("out of memory");
	u->has_icmp_filter = true;
	u->icmp_filter.len = len;
	if (getsockopt(fd, level, name, u->icmp_filter.data, &len) || len != u->icmp_filter.len)
		return err_errno("the ICMP filter");
	return 0;
}

static int read_filter(int fd, InetDgramEntry *u)
{
	bool locked;

	if (inet_read_filter(fd, &u->bpf_filter, &locked))
		return -1;
	u->filter_locked = locked;
	u->has_bpf_filter = u->bpf_filter.len > 0;
	return 0;
}

static int read_opts(int fd, InetDgramEntry *u)
{
	return sk_read_int_opts(fd, u->family, inet_int_opts, inet_nr_int_opts, &u->opts,
				&u->n_opts) ||
	       sk_read_int_opts(fd, u->family, inet_dgram_int_opts, inet_nr_dgram_int_opts,
				&u->opts, &u->n_opts) ||
	       read_other_opts(fd, u) || read_raw_opts(fd, u) || read_filter(fd, u);
}

static int dgram_dump(struct dump_ctx *ctx, struct dump_file *f, const struct fd_probe *p)
{
	InetDgramEntry *u = calloc(1, sizeof(*u));
	char what[256], ep[160];
	int dom, type, proto;

	(void)ctx;
	if (!u)
		return err_set("out of memory");
	inet_dgram_entry__init(u);
	f->entry.dgram_sk = u;
	u->ino = p->st->st_ino;
	snprintf(what, sizeof(what), "fd %d of pid %d: socket:[%lu]", p->fd, p->pid,
		 (unsigned long)u->ino);
	dom = p->sk_domain;
	type = p->sk_type;
	proto = p->sk_proto;
	u->family = dom;
	u->type = type;
	u->protocol = proto;
	if (read_addrs(p->pid, p->local_fd, u) || read_opts(p->local_fd, u) ||
	    read_shutdown(p->local_fd, u))
		return err_wrap("%s socket %s", proto_name(u), what);
	snprintf(what, sizeof(what), "fd %d of pid %d: %s socket %s", p->fd, p->pid, proto_name(u),
		 endpoints(u, ep, sizeof(ep)));
	return check_queue(p->local_fd, u, what);
}

static void dgram_free_entry(FileEntry *fe)
{
	/* every part was allocated as protobuf-c's unpacking would */
	if (fe->dgram_sk)
		protobuf_c_message_free_unpacked(&fe->dgram_sk->base, NULL);
	fe->dgram_sk = NULL;
}

/* ---- restore ---- */

static bool addr_ok(uint32_t family, const ProtobufCBinaryData *a)
{
	return a->len == (family == AF_INET ? 4u : 16u);
}

static int dgram_validate(const struct restore_tree *tree, const FileEntry *fe,
			  const struct fd_use *use)
{
	const InetDgramEntry *u = fe->dgram_sk;
	int level = 0, name = 0;

	(void)tree;
	(void)use;
	if (!u || (u->family != AF_INET && u->family != AF_INET6) ||
	    (u->type != SOCK_DGRAM && u->type != SOCK_RAW) || u->protocol > 255 ||
	    (u->has_icmp_filter && u->icmp_filter.len != filter_of(u, &level, &name)) ||
	    u->bpf_filter.len % 8 || u->bpf_filter.len > 8 * 4096 || u->shutdown > 3 ||
	    !addr_ok(u->family, &u->src_addr) || u->src_port > 65535 ||
	    (u->has_dst_addr && (!addr_ok(u->family, &u->dst_addr) || u->dst_port > 65535)))
		return err_set("file %u: malformed inet datagram or raw socket", fe->id);
	return 0;
}

/* The buffers as they were, then the program's locks on them. */
static int set_other_opts(int fd, const InetDgramEntry *u)
{
	int level = 0, name = 0;

	if (sk_set_int(fd, SOL_SOCKET, SO_REUSEADDR, u->reuseaddr) ||
	    sk_set_int(fd, SOL_SOCKET, SO_SNDBUFFORCE, u->sndbuf / 2) ||
	    sk_set_int(fd, SOL_SOCKET, SO_RCVBUFFORCE, u->rcvbuf / 2) ||
	    sk_set_int(fd, SOL_SOCKET, SO_BUF_LOCK, u->buf_lock))
		return err_errno("cannot set the buffers");
	if (inet_set_timeo(fd, SO_RCVTIMEO, u->rcvtimeo_us) ||
	    inet_set_timeo(fd, SO_SNDTIMEO, u->sndtimeo_us))
		return err_errno("cannot set the timeouts");
	if (u->bind_dev &&
	    setsockopt(fd, SOL_SOCKET, SO_BINDTODEVICE, u->bind_dev, strlen(u->bind_dev)))
		return err_errno("SO_BINDTODEVICE %s", u->bind_dev);
	if (u->has_icmp_filter && filter_of(u, &level, &name) &&
	    setsockopt(fd, level, name, u->icmp_filter.data, u->icmp_filter.len))
		return err_errno("the ICMP filter");
	return inet_set_filter(fd, &u->bpf_filter, u->filter_locked);
}

static int bind_and_connect(int fd, const InetDgramEntry *u)
{
	struct sockaddr_storage ss;
	socklen_t len;

	/* a raw socket's port is its protocol: it is bound when its address is */
	if (u->type == SOCK_RAW ? memcmp(u->src_addr.data, &in6addr_any, u->src_addr.len) != 0
				: u->src_port != 0) {
		len = inet_make_addr(u->family, &u->src_addr, u->src_port, &ss);
		if (bind(fd, (struct sockaddr *)&ss, len))
			return err_errno("cannot bind");
	}
	if (u->has_dst_addr) {
		len = inet_make_addr(u->family, &u->dst_addr, u->dst_port, &ss);
		if (connect(fd, (struct sockaddr *)&ss, len))
			return err_errno("cannot connect");
	}
	/* SHUT_RD 0, SHUT_WR 1, SHUT_RDWR 2: sk_shutdown's bits less one */
	if (u->shutdown && shutdown(fd, (int)u->shutdown - 1) && errno != ENOTCONN)
		return err_errno("cannot shut it down (%u)", u->shutdown);
	return 0;
}

static int dgram_open(struct restore_ctx *ctx, const FileEntry *fe, int *fd)
{
	const InetDgramEntry *u = fe->dgram_sk;
	char ep[160];

	*fd = socket(u->family, u->type | SOCK_CLOEXEC, u->protocol);
	if (*fd < 0)
		return err_errno("%s socket %s: socket", proto_name(u),
				 endpoints(u, ep, sizeof(ep)));
	if (inet_set_int_opts(ctx, *fd, u->family, u->type, u->protocol, u->opts, u->n_opts) ||
	    set_other_opts(*fd, u) || bind_and_connect(*fd, u))
		return err_wrap("%s socket %s", proto_name(u), endpoints(u, ep, sizeof(ep)));
	if (fcntl(*fd, F_SETFL, fe->flags & (O_NONBLOCK | O_ASYNC)) ||
	    (u->has_owner && fcntl(*fd, F_SETOWN, u->owner)))
		return err_errno("%s socket %s: flags and owner", proto_name(u),
				 endpoints(u, ep, sizeof(ep)));
	return 0;
}

/* ---- show ---- */

static void dgram_describe(const FileEntry *fe, char *buf, size_t len)
{
	const InetDgramEntry *u = fe->dgram_sk;
	char ep[160];

	if (!u) {
		snprintf(buf, len, "inet datagram socket");
		return;
	}
	snprintf(buf, len, "%s %s%s%s", proto_name(u), endpoints(u, ep, sizeof(ep)),
		 u->src_port ? "" : " (unbound)",
		 u->shutdown == 3   ? " (shut down)"
		 : u->shutdown == 2 ? " (shut for sending)"
		 : u->shutdown == 1 ? " (shut for receiving)"
				    : "");
}

#define DGRAM_ROW                                                                                  \
	.dump = dgram_dump, .free_entry = dgram_free_entry, .validate = dgram_validate,            \
	.open = dgram_open, .describe = dgram_describe

const struct fd_kind udp_kind = {
    .name = "UDP socket",
    .kind = FILE_KIND__UDP_SOCKET,
    .recognise = udp_recognise,
    DGRAM_ROW,
};

const struct fd_kind icmp_kind = {
    .name = "ICMP ping socket",
    .kind = FILE_KIND__ICMP_SOCKET,
    .recognise = icmp_recognise,
    DGRAM_ROW,
};

const struct fd_kind raw_kind = {
    .name = "raw socket",
    .kind = FILE_KIND__RAW_SOCKET,
    .recognise = raw_recognise,
    DGRAM_ROW,
};
