/*
 * sockets/inet: what every AF_INET/AF_INET6 socket kind shares (TCP, UDP):
 * addresses as the images keep them (4 or 16 bytes and a port), and the
 * int socket and IP options a program may set, read on cryo's duplicate at
 * dump and set again in the same order at restore.
 */
#ifndef CRYO_SOCKETS_INET_H
#define CRYO_SOCKETS_INET_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#include "sk-tcp.pb-c.h"

#include "sockets/sockopt.h"

/* The options of the socket and IP levels every inet socket has (read and
 * set with sockopt.h's sk_read_int_opts, sk_set_int_opts). */
extern const struct sk_int_opt_def inet_int_opts[];
extern const size_t inet_nr_int_opts;
/* Those of datagram and raw sockets only (multicast). */
extern const struct sk_int_opt_def inet_dgram_int_opts[];
extern const size_t inet_nr_dgram_int_opts;

/* "127.0.0.1:80" or "[::1]:80" into buf. */
const char *inet_endpoint(uint32_t family, const ProtobufCBinaryData *a, uint32_t port, char *buf,
			  size_t len);
/* "A:p" or, with a peer (dst not NULL), "A:p -> B:q" into buf. */
const char *inet_endpoints(uint32_t family, const ProtobufCBinaryData *src, uint32_t sport,
			   const ProtobufCBinaryData *dst, uint32_t dport, char *buf, size_t len);
/* A sockaddr of a saved address; its length. */
socklen_t inet_make_addr(uint32_t family, const ProtobufCBinaryData *a, uint32_t port,
			 struct sockaddr_storage *ss);
/* The address and port of a sockaddr, into a (allocated). */
int inet_copy_addr(const struct sockaddr_storage *ss, ProtobufCBinaryData *a, uint32_t *port);

/* Sets the saved options again, in their order, on a new socket of the
 * family, type and protocol given: one it already has is not set. What a
 * new socket has is read once per process and kind on a template socket
 * (ctx->inet_defaults), not on each socket (ctx NULL: on fd). */
struct restore_ctx;
int inet_set_int_opts(struct restore_ctx *ctx, int fd, int family, int type, int proto,
		      SkIntOpt *const *opts, size_t n);

/* SO_RCVTIMEO or SO_SNDTIMEO in microseconds (0: none; on a new socket,
 * which has none, setting 0 does nothing). */
int inet_get_timeo(int fd, int name, uint64_t *us);
int inet_set_timeo(int fd, int name, uint64_t us);

/* A classic BPF filter (SO_ATTACH_FILTER) as SO_GET_FILTER gives it: its
 * instructions (struct sock_filter, 8 bytes each) into out, none: len 0;
 * *locked: SO_LOCK_FILTER. A filter that is an eBPF program is refused. */
int inet_read_filter(int fd, ProtobufCBinaryData *out, bool *locked);
/* Attaches it again, then locks it if it was. */
int inet_set_filter(int fd, const ProtobufCBinaryData *f, bool locked);

#endif
