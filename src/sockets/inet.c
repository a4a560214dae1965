/*
 * sockets/inet: addresses and int options shared by the inet socket kinds
 * (inet.h). The table holds the options of the socket and IP levels; each
 * kind reads it, then its own protocol's table, into the same repeated
 * message (sk_int_opt: level, name, value; sockopt.c reads and sets
 * them); and the options of other shapes every socket has: timeouts, a
 * classic BPF filter.
 */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <errno.h>
#include <netinet/in.h>
#include <sys/time.h>
#include <unistd.h>
#include <linux/filter.h>

#include "context.h"
#include "infra/log.h"
#include "sockets/inet.h"
#include "sockets/sockopt.h"

/* In the order they are set again: IP_TOS sets the priority too, so it
 * comes before SO_PRIORITY. */
const struct sk_int_opt_def inet_int_opts[] = {
    SK_OPT(IPPROTO_IP, IP_TOS, AF_INET),
    SK_OPT(SOL_SOCKET, SO_REUSEPORT, 0),
    SK_OPT(SOL_SOCKET, SO_KEEPALIVE, 0),
    SK_OPT(SOL_SOCKET, SO_PRIORITY, 0),
    SK_OPT(SOL_SOCKET, SO_MARK, 0),
    SK_OPT(SOL_SOCKET, SO_RCVLOWAT, 0),
    SK_OPT(SOL_SOCKET, SO_OOBINLINE, 0),
    SK_OPT(SOL_SOCKET, SO_BROADCAST, 0),
    SK_OPT(IPPROTO_IP, IP_TTL, AF_INET),
    SK_OPT(IPPROTO_IP, IP_FREEBIND, AF_INET),
    SK_OPT(IPPROTO_IPV6, IPV6_V6ONLY, AF_INET6),
    SK_OPT(IPPROTO_IPV6, IPV6_TCLASS, AF_INET6),
    SK_OPT(IPPROTO_IPV6, IPV6_UNICAST_HOPS, AF_INET6),
    SK_OPT(IPPROTO_IPV6, IPV6_FREEBIND, AF_INET6),
};
const size_t inet_nr_int_opts = sizeof(inet_int_opts) / sizeof(inet_int_opts[0]);

/* Multicast: the kernel refuses them on stream sockets. */
const struct sk_int_opt_def inet_dgram_int_opts[] = {
    SK_OPT(IPPROTO_IP, IP_MULTICAST_TTL, AF_INET),
    SK_OPT(IPPROTO_IP, IP_MULTICAST_LOOP, AF_INET),
    SK_OPT(IPPROTO_IP, IP_MULTICAST_ALL, AF_INET),
    SK_OPT(IPPROTO_IPV6, IPV6_MULTICAST_HOPS, AF_INET6),
    SK_OPT(IPPROTO_IPV6, IPV6_MULTICAST_LOOP, AF_INET6),
    SK_OPT(IPPROTO_IPV6, IPV6_MULTICAST_ALL, AF_INET6),
};
const size_t inet_nr_dgram_int_opts = sizeof(inet_dgram_int_opts) / sizeof(inet_dgram_int_opts[0]);

const char *inet_endpoint(uint32_t family, const ProtobufCBinaryData *a, uint32_t port, char *buf,
			  size_t len)
{
	char ip[INET6_ADDRSTRLEN] = "?";

	if (a->len == (family == AF_INET ? 4u : 16u))
		inet_ntop(family, a->data, ip, sizeof(ip));
	snprintf(buf, len, family == AF_INET ? "%s:%u" : "[%s]:%u", ip, port);
	return buf;
}

const char *inet_endpoints(uint32_t family, const ProtobufCBinaryData *src, uint32_t sport,
			   const ProtobufCBinaryData *dst, uint32_t dport, char *buf, size_t len)
{
	char s[64], d[64];

	inet_endpoint(family, src, sport, s, sizeof(s));
	if (!dst)
		snprintf(buf, len, "%s", s);
	else
		snprintf(buf, len, "%s -> %s", s, inet_endpoint(family, dst, dport, d, sizeof(d)));
	return buf;
}

socklen_t inet_make_addr(uint32_t family, const ProtobufCBinaryData *a, uint32_t port,
			 struct sockaddr_storage *ss)
{
	memset(ss, 0, sizeof(*ss));
	if (family == AF_INET) {
		struct sockaddr_in *in = (struct sockaddr_in *)ss;
		in->sin_family = AF_INET;
		in->sin_port = htons(port);
		memcpy(&in->sin_addr, a->data, 4);
		return sizeof(*in);
	}
	struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)ss;
	in6->sin6_family = AF_INET6;
	in6->sin6_port = htons(port);
	memcpy(&in6->sin6_addr, a->data, 16);
	return sizeof(*in6);
}

int inet_copy_addr(const struct sockaddr_storage *ss, ProtobufCBinaryData *a, uint32_t *port)
{
	const void *src;

	if (ss->ss_family == AF_INET) {
		const struct sockaddr_in *in = (const void *)ss;
		a->len = 4;
		src = &in->sin_addr;
		*port = ntohs(in->sin_port);
	} else {
		const struct sockaddr_in6 *in6 = (const void *)ss;
		a->len = 16;
		src = &in6->sin6_addr;
		*port = ntohs(in6->sin6_port);
	}
	a->data = malloc(a->len);
	if (!a->data)
		return err_set("out of memory");
	memcpy(a->data, src, a->len);
	return 0;
}

/* The entry of ctx->inet_defaults for this kind and option (level -1:
 * the kind's mark, once its template was read), or NULL. */
static const struct inet_default *find_default(const struct restore_ctx *ctx,
					       const struct inet_default *key)
{
	for (size_t i = 0; i < ctx->nr_inet_defaults; i++) {
		const struct inet_default *d = &ctx->inet_defaults[i];
		if (d->family == key->family && d->type == key->type && d->proto == key->proto &&
		    d->level == key->level && d->name == key->name)
			return d;
	}
	return NULL;
}

static void add_default(struct restore_ctx *ctx, const struct inet_default *d)
{
	size_t max = sizeof(ctx->inet_defaults) / sizeof(ctx->inet_defaults[0]);

	if (ctx->nr_inet_defaults < max)
		ctx->inet_defaults[ctx->nr_inet_defaults++] = *d;
}

/* Once per kind: a template socket's values of the options in opts. A
 * template that cannot be made leaves only the mark: each socket is then
 * read itself. */
static void learn_defaults(struct restore_ctx *ctx, struct inet_default key, SkIntOpt *const *opts,
			   size_t n)
{
	int t;

	key.level = key.name = -1;
	if (find_default(ctx, &key))
		return;
	add_default(ctx, &key);
	t = socket(key.family, key.type | SOCK_CLOEXEC, key.proto);
	if (t < 0)
		return;
	for (size_t i = 0; i < n; i++) {
		key.level = opts[i]->level;
		key.name = opts[i]->name;
		if (!sk_get_int(t, key.level, key.name, &key.value))
			add_default(ctx, &key);
	}
	close(t);
}

int inet_set_int_opts(struct restore_ctx *ctx, int fd, int family, int type, int proto,
		      SkIntOpt *const *opts, size_t n)
{
	struct inet_default key = {.family = family, .type = type, .proto = proto};

	if (ctx)
		learn_defaults(ctx, key, opts, n);
	for (size_t i = 0; i < n; i++) {
		const SkIntOpt *o = opts[i];
		const struct inet_default *d;
		/* one the new socket already has is not set: some cannot be set
		 * on some sockets at all (IPV6_V6ONLY on a raw socket) */
		key.level = o->level;
		key.name = o->name;
		if (ctx && (d = find_default(ctx, &key)) && d->value == o->value)
			continue;
		if (sk_set_int_opts(fd, &opts[i], 1)) /* reads it first: no default known */
			return -1;
	}
	return 0;
}

int inet_get_timeo(int fd, int name, uint64_t *us)
{
	struct timeval tv;
	socklen_t len = sizeof(tv);

	if (getsockopt(fd, SOL_SOCKET, name, &tv, &len))
		return -1;
	*us = (uint64_t)tv.tv_sec * 1000000 + tv.tv_usec;
	return 0;
}

int inet_set_timeo(int fd, int name, uint64_t us)
{
	struct timeval tv = {.tv_sec = us / 1000000, .tv_usec = us % 1000000};

	/* none is what a new socket has */
	return us ? setsockopt(fd, SOL_SOCKET, name, &tv, sizeof(tv)) : 0;
}

/* The filter as protobuf bytes: sockopt.c reads and attaches it. */
int inet_read_filter(int fd, ProtobufCBinaryData *out, bool *locked)
{
	size_t len;
	int lock;

	if (sk_read_filter(fd, &out->data, &len, &lock))
		return -1;
	out->len = len;
	*locked = lock;
	return 0;
}

int inet_set_filter(int fd, const ProtobufCBinaryData *f, bool locked)
{
	return sk_attach_filter(fd, f->data, f->len, locked);
}
