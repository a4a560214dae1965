/*
 * sockets/sockopt: the socket options and the sock_diag walk that the
 * kinds of socket without a connection share (sockopt.h). Options are
 * read on cryo's duplicate of the socket at dump and set again by the
 * process that makes it at restore; nothing here knows a kind.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <linux/filter.h>
#include <linux/sock_diag.h>

#include "infra/log.h"
#include "sockets/sockopt.h"

#ifndef SO_BUF_LOCK
#define SO_BUF_LOCK 72
#endif

#define MAX_FILTER 4096 /* BPF_MAXINSNS */

int sk_get_int(int fd, int level, int name, int *v)
{
	socklen_t len = sizeof(*v);

	return getsockopt(fd, level, name, v, &len);
}

int sk_set_int(int fd, int level, int name, int v)
{
	return setsockopt(fd, level, name, &v, sizeof(v));
}

int sk_read_int_opts(int fd, int family, const struct sk_int_opt_def *defs, size_t n,
		     SkIntOpt ***opts, size_t *nr)
{
	SkIntOpt **grown = realloc(*opts, (*nr + n + 1) * sizeof(**opts));

	if (!grown)
		return err_set("out of memory");
	*opts = grown;
	for (size_t i = 0; i < n; i++) {
		SkIntOpt *o;
		int v;

		if (defs[i].family && defs[i].family != family)
			continue;
		if (sk_get_int(fd, defs[i].level, defs[i].name, &v))
			return defs[i].what
				   ? err_errno("getsockopt %s", defs[i].what)
				   : err_errno("getsockopt(%d, %d)", defs[i].level, defs[i].name);
		o = malloc(sizeof(*o));
		if (!o)
			return err_set("out of memory");
		sk_int_opt__init(o);
		o->level = defs[i].level;
		o->name = defs[i].name;
		o->value = v;
		(*opts)[(*nr)++] = o;
	}
	return 0;
}

/* Only what differs from the new socket's own: some options cannot be set
 * on every socket, even to their default (PACKET_VNET_HDR on SOCK_DGRAM,
 * IPV6_V6ONLY on a raw socket). */
int sk_set_int_opts(int fd, SkIntOpt *const *opts, size_t nr)
{
	for (size_t i = 0; i < nr; i++) {
		int now;
		if (!sk_get_int(fd, opts[i]->level, opts[i]->name, &now) && now == opts[i]->value)
			continue;
		if (sk_set_int(fd, opts[i]->level, opts[i]->name, opts[i]->value))
			return err_errno("setsockopt(%u, %u, %d)", opts[i]->level, opts[i]->name,
					 opts[i]->value);
	}
	return 0;
}

int sk_read_bufs(int fd, uint32_t *sndbuf, uint32_t *rcvbuf, uint32_t *lock)
{
	if (sk_get_int(fd, SOL_SOCKET, SO_SNDBUF, (int *)sndbuf) ||
	    sk_get_int(fd, SOL_SOCKET, SO_RCVBUF, (int *)rcvbuf) ||
	    sk_get_int(fd, SOL_SOCKET, SO_BUF_LOCK, (int *)lock))
		return err_errno("cannot read the buffer sizes");
	return 0;
}

/* The kernel doubles what it is given: half of what it reported. */
int sk_set_bufs(int fd, uint32_t sndbuf, uint32_t rcvbuf, uint32_t lock)
{
	if (sk_set_int(fd, SOL_SOCKET, SO_SNDBUFFORCE, sndbuf / 2) ||
	    sk_set_int(fd, SOL_SOCKET, SO_RCVBUFFORCE, rcvbuf / 2) ||
	    sk_set_int(fd, SOL_SOCKET, SO_BUF_LOCK, lock))
		return err_errno("cannot set the buffers (%u, %u)", sndbuf, rcvbuf);
	return 0;
}

/* SO_GET_FILTER counts in instructions, not bytes: a length of 0 asks how
 * many there are. */
int sk_read_filter(int fd, uint8_t **prog, size_t *len, int *locked)
{
	socklen_t n = 0;

	*prog = NULL;
	*len = 0;
	if (sk_get_int(fd, SOL_SOCKET, SO_LOCK_FILTER, locked))
		return err_errno("getsockopt SO_LOCK_FILTER");
	if (getsockopt(fd, SOL_SOCKET, SO_GET_FILTER, NULL, &n))
		return errno == EACCES ? err_set("its socket filter is an eBPF program "
						 "(SO_ATTACH_BPF): not supported yet")
				       : err_errno("getsockopt SO_GET_FILTER");
	if (!n)
		return 0;
	if (n > MAX_FILTER)
		return err_set("a socket filter of %u instructions", (unsigned)n);
	*prog = malloc(n * sizeof(struct sock_filter));
	if (!*prog)
		return err_set("out of memory");
	if (getsockopt(fd, SOL_SOCKET, SO_GET_FILTER, *prog, &n))
		return err_errno("getsockopt SO_GET_FILTER");
	*len = n * sizeof(struct sock_filter);
	return 0;
}

int sk_attach_filter(int fd, const uint8_t *prog, size_t len, int locked)
{
	struct sock_fprog fp = {
	    .len = len / sizeof(struct sock_filter),
	    .filter = (struct sock_filter *)prog,
	};

	if (len && setsockopt(fd, SOL_SOCKET, SO_ATTACH_FILTER, &fp, sizeof(fp)))
		return err_errno("cannot attach the socket filter (%u instructions)", fp.len);
	if (locked && sk_set_int(fd, SOL_SOCKET, SO_LOCK_FILTER, 1))
		return err_errno("SO_LOCK_FILTER");
	return 0;
}

/* ---- sock_diag ---- */

/* One batch of answers: 0 to read on, 1 done (NLMSG_DONE or each said
 * stop), -1 on an error. */
static int diag_batch(const char *buf, size_t n, int (*each)(const struct nlmsghdr *, void *),
		      void *arg)
{
	for (const struct nlmsghdr *h = (const void *)buf; NLMSG_OK(h, n); h = NLMSG_NEXT(h, n)) {
		if (h->nlmsg_type == NLMSG_DONE)
			return 1;
		if (h->nlmsg_type == NLMSG_ERROR) {
			const struct nlmsgerr *e = NLMSG_DATA(h);
			errno = h->nlmsg_len >= NLMSG_LENGTH(sizeof(*e)) ? -e->error : EPROTO;
			return err_errno("sock_diag");
		}
		int r = each(h, arg);
		if (r)
			return r;
	}
	return 0;
}

int sk_diag_walk(const void *req, size_t len, int (*each)(const struct nlmsghdr *h, void *arg),
		 void *arg)
{
	size_t qlen = NLMSG_LENGTH(len), blen = 1 << 16;
	struct nlmsghdr *q = calloc(1, qlen);
	char *buf = malloc(blen);
	int nl = socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, NETLINK_SOCK_DIAG);
	int r = 0;

	if (!q || !buf || nl < 0) {
		r = nl < 0 ? err_errno("cannot open a sock_diag socket") : err_set("out of memory");
		goto out;
	}
	q->nlmsg_len = qlen;
	q->nlmsg_type = SOCK_DIAG_BY_FAMILY;
	q->nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
	memcpy(NLMSG_DATA(q), req, len);
	if (send(nl, q, qlen, 0) != (ssize_t)qlen) {
		r = err_errno("sock_diag request");
		goto out;
	}
	while (!r) {
		ssize_t n = recv(nl, buf, blen, 0);
		if (n <= 0) {
			r = n ? err_errno("sock_diag answer") : err_set("sock_diag: no answer");
			break;
		}
		r = diag_batch(buf, n, each, arg);
	}
out:
	if (nl >= 0)
		close(nl);
	free(q);
	free(buf);
	return r < 0 ? -1 : 0;
}

const void *sk_diag_attr(const struct nlmsghdr *h, size_t hdr_len, int type, size_t *plen)
{
	const char *p = (const char *)NLMSG_DATA(h) + NLMSG_ALIGN(hdr_len);
	const char *end = (const char *)h + h->nlmsg_len;

	while (p + sizeof(struct nlattr) <= end) {
		const struct nlattr *a = (const void *)p;
		if (a->nla_len < sizeof(*a) || p + a->nla_len > end)
			break;
		if ((a->nla_type & NLA_TYPE_MASK) == type) {
			*plen = a->nla_len - NLA_HDRLEN;
			return p + NLA_HDRLEN;
		}
		p += NLA_ALIGN(a->nla_len);
	}
	return NULL;
}
