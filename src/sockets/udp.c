/*
 * sockets/udp: UDP and UDP-Lite sockets, IPv4 and IPv6 (and v4-mapped
 * addresses on a dual-stack socket): unbound, bound, connected.
 *
 * Dump (udp_dump), on cryo's pidfd_getfd duplicate: getsockname and
 * getpeername give the addresses, getsockopt the options (inet.c's shared
 * int options and the multicast ones, the buffers with SO_BUF_LOCK, the
 * timeouts, the device, the owner). A datagram waiting in the receive
 * queue stops the dump with a line naming the fd: it could be read without
 * consuming it (MSG_PEEK with SO_PEEK_OFF), but the kernel has no way to
 * queue it again with its sender's address, and a datagram given back from
 * another address is not the one the program would have read. The check
 * peeks zero bytes (MSG_DONTWAIT), which consumes nothing and moves no peek
 * offset, so a refused or --leave-running dump leaves the socket as it was.
 *
 * Restore, in the process that holds it (udp_open): a socket of the same
 * family and protocol, the options in the order they were read, the
 * buffers (forced, then the program's locks), bind to the saved address
 * when it was bound, connect to the peer when it was connected, the flags
 * and the owner. The kernel does not say whether a UDP socket was shut
 * down (getsockopt has no such option): that state is not kept.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <netinet/in.h>
#include <net/if.h>

#include "fdkind.h"
#include "infra/log.h"
#include "sockets/inet.h"

#ifndef SO_BUF_LOCK
#define SO_BUF_LOCK 72
#endif

static const char *proto_name(const InetDgramEntry *u)
{
	if (u->protocol == IPPROTO_UDPLITE)
		return u->family == AF_INET6 ? "UDP-Litev6" : "UDP-Lite";
	return u->family == AF_INET6 ? "UDPv6" : "UDP";
}

/* "A:p" or "A:p -> B:q". */
static const char *endpoints(const InetDgramEntry *u, char *buf, size_t len)
{
	char s[64], d[64];

	inet_endpoint(u->family, &u->src_addr, u->src_port, s, sizeof(s));
	if (!u->has_dst_addr)
		snprintf(buf, len, "%s", s);
	else
		snprintf(buf, len, "%s -> %s", s,
			 inet_endpoint(u->family, &u->dst_addr, u->dst_port, d, sizeof(d)));
	return buf;
}

/* ---- dump ---- */

static bool udp_recognise(const struct fd_probe *p)
{
	int dom, type, proto;

	return S_ISSOCK(p->st->st_mode) &&
	       !inet_get_int(p->local_fd, SOL_SOCKET, SO_DOMAIN, &dom) &&
	       (dom == AF_INET || dom == AF_INET6) &&
	       !inet_get_int(p->local_fd, SOL_SOCKET, SO_TYPE, &type) && type == SOCK_DGRAM &&
	       !inet_get_int(p->local_fd, SOL_SOCKET, SO_PROTOCOL, &proto) &&
	       (proto == IPPROTO_UDP || proto == IPPROTO_UDPLITE);
}

static int read_addrs(int fd, InetDgramEntry *u)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);

	if (getsockname(fd, (struct sockaddr *)&ss, &len))
		return err_errno("getsockname");
	if (inet_copy_addr(&ss, &u->src_addr, &u->src_port))
		return -1;
	len = sizeof(ss);
	if (getpeername(fd, (struct sockaddr *)&ss, &len))
		return errno == ENOTCONN ? 0 : err_errno("getpeername");
	u->has_dst_addr = u->has_dst_port = true;
	return inet_copy_addr(&ss, &u->dst_addr, &u->dst_port);
}

static int get_timeo(int fd, int name, uint64_t *us)
{
	struct timeval tv;
	socklen_t len = sizeof(tv);

	if (getsockopt(fd, SOL_SOCKET, name, &tv, &len))
		return -1;
	*us = (uint64_t)tv.tv_sec * 1000000 + tv.tv_usec;
	return 0;
}

/* Buffers, reuse, timeouts, device, owner. */
static int read_other_opts(int fd, InetDgramEntry *u)
{
	int v, lock;
	char dev[IFNAMSIZ + 1] = "";
	socklen_t dlen = sizeof(dev) - 1;

	if (inet_get_int(fd, SOL_SOCKET, SO_REUSEADDR, &v) ||
	    inet_get_int(fd, SOL_SOCKET, SO_SNDBUF, (int *)&u->sndbuf) ||
	    inet_get_int(fd, SOL_SOCKET, SO_RCVBUF, (int *)&u->rcvbuf) ||
	    inet_get_int(fd, SOL_SOCKET, SO_BUF_LOCK, &lock) ||
	    get_timeo(fd, SO_RCVTIMEO, &u->rcvtimeo_us) ||
	    get_timeo(fd, SO_SNDTIMEO, &u->sndtimeo_us) ||
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

/* A datagram waiting to be read: peeking zero bytes consumes nothing. */
static int check_queue(int fd, const char *what)
{
	char b;

	if (recv(fd, &b, 0, MSG_PEEK | MSG_DONTWAIT) >= 0)
		return err_set("%s has datagrams waiting to be read: the kernel cannot queue "
			       "them again with their senders' addresses",
			       what);
	if (errno != EAGAIN && errno != EWOULDBLOCK)
		return err_errno("%s: recv(MSG_PEEK)", what);
	return 0;
}

static int udp_dump(struct dump_ctx *ctx, struct dump_file *f, const struct fd_probe *p)
{
	InetDgramEntry *u = calloc(1, sizeof(*u));
	char what[256], ep[160];
	int dom, proto;

	(void)ctx;
	if (!u)
		return err_set("out of memory");
	inet_dgram_entry__init(u);
	f->entry.udp_sk = u;
	u->ino = p->st->st_ino;
	snprintf(what, sizeof(what), "fd %d of pid %d: UDP socket:[%lu]", p->fd, p->pid,
		 (unsigned long)u->ino);
	if (inet_get_int(p->local_fd, SOL_SOCKET, SO_DOMAIN, &dom) ||
	    inet_get_int(p->local_fd, SOL_SOCKET, SO_PROTOCOL, &proto))
		return err_errno("%s", what);
	u->family = dom;
	u->protocol = proto;
	if (read_addrs(p->local_fd, u) ||
	    inet_read_int_opts(p->local_fd, u->family, inet_int_opts, inet_nr_int_opts, &u->opts,
			       &u->n_opts) ||
	    inet_read_int_opts(p->local_fd, u->family, inet_dgram_int_opts, inet_nr_dgram_int_opts,
			       &u->opts, &u->n_opts) ||
	    read_other_opts(p->local_fd, u))
		return err_wrap("%s", what);
	snprintf(what, sizeof(what), "fd %d of pid %d: %s socket %s", p->fd, p->pid, proto_name(u),
		 endpoints(u, ep, sizeof(ep)));
	return check_queue(p->local_fd, what);
}

static void udp_free_entry(FileEntry *fe)
{
	/* every part was allocated as protobuf-c's unpacking would */
	if (fe->udp_sk)
		protobuf_c_message_free_unpacked(&fe->udp_sk->base, NULL);
	fe->udp_sk = NULL;
}

/* ---- restore ---- */

static bool addr_ok(uint32_t family, const ProtobufCBinaryData *a)
{
	return a->len == (family == AF_INET ? 4u : 16u);
}

static int udp_validate(const struct restore_tree *tree, const FileEntry *fe,
			const struct fd_use *use)
{
	const InetDgramEntry *u = fe->udp_sk;

	(void)tree;
	(void)use;
	if (!u || (u->family != AF_INET && u->family != AF_INET6) ||
	    (u->protocol != IPPROTO_UDP && u->protocol != IPPROTO_UDPLITE) ||
	    !addr_ok(u->family, &u->src_addr) || u->src_port > 65535 ||
	    (u->has_dst_addr && (!addr_ok(u->family, &u->dst_addr) || u->dst_port > 65535)))
		return err_set("file %u: malformed UDP socket", fe->id);
	return 0;
}

static int set_timeo(int fd, int name, uint64_t us)
{
	struct timeval tv = {.tv_sec = us / 1000000, .tv_usec = us % 1000000};

	return setsockopt(fd, SOL_SOCKET, name, &tv, sizeof(tv));
}

/* The buffers as they were, then the program's locks on them. */
static int set_other_opts(int fd, const InetDgramEntry *u)
{
	if (inet_set_int(fd, SOL_SOCKET, SO_REUSEADDR, u->reuseaddr) ||
	    inet_set_int(fd, SOL_SOCKET, SO_SNDBUFFORCE, u->sndbuf / 2) ||
	    inet_set_int(fd, SOL_SOCKET, SO_RCVBUFFORCE, u->rcvbuf / 2) ||
	    inet_set_int(fd, SOL_SOCKET, SO_BUF_LOCK, u->buf_lock))
		return err_errno("cannot set the buffers");
	if (set_timeo(fd, SO_RCVTIMEO, u->rcvtimeo_us) ||
	    set_timeo(fd, SO_SNDTIMEO, u->sndtimeo_us))
		return err_errno("cannot set the timeouts");
	if (u->bind_dev &&
	    setsockopt(fd, SOL_SOCKET, SO_BINDTODEVICE, u->bind_dev, strlen(u->bind_dev)))
		return err_errno("SO_BINDTODEVICE %s", u->bind_dev);
	return 0;
}

static int bind_and_connect(int fd, const InetDgramEntry *u)
{
	struct sockaddr_storage ss;
	socklen_t len;

	if (u->src_port) {
		len = inet_make_addr(u->family, &u->src_addr, u->src_port, &ss);
		if (bind(fd, (struct sockaddr *)&ss, len))
			return err_errno("cannot bind");
	}
	if (u->has_dst_addr) {
		len = inet_make_addr(u->family, &u->dst_addr, u->dst_port, &ss);
		if (connect(fd, (struct sockaddr *)&ss, len))
			return err_errno("cannot connect");
	}
	return 0;
}

static int udp_open(struct restore_ctx *ctx, const FileEntry *fe, int *fd)
{
	const InetDgramEntry *u = fe->udp_sk;
	char ep[160];

	(void)ctx;
	*fd = socket(u->family, SOCK_DGRAM | SOCK_CLOEXEC, u->protocol);
	if (*fd < 0)
		return err_errno("%s socket %s: socket", proto_name(u),
				 endpoints(u, ep, sizeof(ep)));
	if (inet_set_int_opts(*fd, u->opts, u->n_opts) || set_other_opts(*fd, u) ||
	    bind_and_connect(*fd, u))
		return err_wrap("%s socket %s", proto_name(u), endpoints(u, ep, sizeof(ep)));
	if (fcntl(*fd, F_SETFL, fe->flags & (O_NONBLOCK | O_ASYNC)) ||
	    (u->has_owner && fcntl(*fd, F_SETOWN, u->owner)))
		return err_errno("%s socket %s: flags and owner", proto_name(u),
				 endpoints(u, ep, sizeof(ep)));
	return 0;
}

/* ---- show ---- */

static void udp_describe(const FileEntry *fe, char *buf, size_t len)
{
	const InetDgramEntry *u = fe->udp_sk;
	char ep[160];

	if (!u) {
		snprintf(buf, len, "UDP socket");
		return;
	}
	snprintf(buf, len, "%s %s%s", proto_name(u), endpoints(u, ep, sizeof(ep)),
		 u->src_port ? "" : " (unbound)");
}

const struct fd_kind udp_kind = {
    .name = "UDP socket",
    .kind = FILE_KIND__UDP_SOCKET,
    .recognise = udp_recognise,
    .dump = udp_dump,
    .free_entry = udp_free_entry,
    .validate = udp_validate,
    .open = udp_open,
    .describe = udp_describe,
};
