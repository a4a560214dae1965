/*
 * sockets/sockopt: what the socket kinds share: tables of int options
 * read and set again (every kind: one message, sk_int_opt), the buffers,
 * a classic BPF filter, and a sock_diag dump walked answer by answer.
 */
#ifndef CRYO_SOCKOPT_H
#define CRYO_SOCKOPT_H

#include <stddef.h>
#include <stdint.h>
#include <linux/netlink.h>

#include "sk-opt.pb-c.h"

/* An int option a program may set, read and set again as it was. */
struct sk_int_opt_def {
	int level, name;
	int family;	  /* 0: every socket; AF_INET, AF_INET6: that family's only */
	const char *what; /* for messages ("NETLINK_PKTINFO"); NULL: the numbers */
};
/* A row of such a table: the option's name is what messages say. */
#define SK_OPT(level, name, family)                                                                \
	{                                                                                          \
		level, name, family, #name                                                         \
	}

/* Appends to *opts (SkIntOpt records, *nr of them: *opts grows) every
 * option of defs (n of them) that applies to family, as read on fd. */
int sk_read_int_opts(int fd, int family, const struct sk_int_opt_def *defs, size_t n,
		     SkIntOpt ***opts, size_t *nr);
/* Sets the saved options again, in their order. */
int sk_set_int_opts(int fd, SkIntOpt *const *opts, size_t nr);
int sk_get_int(int fd, int level, int name, int *v);
int sk_set_int(int fd, int level, int name, int v);

/* SO_SNDBUF, SO_RCVBUF as read, and SO_BUF_LOCK: which of them the program
 * set; set again with the _FORCE options, then the lock as it was. */
int sk_read_bufs(int fd, uint32_t *sndbuf, uint32_t *rcvbuf, uint32_t *lock);
int sk_set_bufs(int fd, uint32_t sndbuf, uint32_t rcvbuf, uint32_t lock);

/* The classic BPF filter attached (SO_GET_FILTER): malloc'ed instructions
 * into *prog, their size in bytes into *len (0, NULL: none), and whether
 * SO_LOCK_FILTER locks it. */
int sk_read_filter(int fd, uint8_t **prog, size_t *len, int *locked);
int sk_attach_filter(int fd, const uint8_t *prog, size_t len, int locked);

/* Sends a sock_diag dump request (req, len bytes: a *_diag_req) and calls
 * each() on every answer until NLMSG_DONE; each returns 0 to go on, 1 to
 * stop there, -1 on an error it recorded. Returns -1 or 0. */
int sk_diag_walk(const void *req, size_t len, int (*each)(const struct nlmsghdr *h, void *arg),
		 void *arg);
/* The attribute of type in answer h (after its hdr_len bytes of message),
 * its payload length into *plen; NULL if it is not there. */
const void *sk_diag_attr(const struct nlmsghdr *h, size_t hdr_len, int type, size_t *plen);

#endif
