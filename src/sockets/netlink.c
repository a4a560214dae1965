/*
 * sockets/netlink: netlink sockets (NETLINK_ROUTE, NETLINK_GENERIC and
 * every other protocol a program keeps open), SOCK_RAW and SOCK_DGRAM.
 *
 * Dump, per fd (netlink_dump), on cryo's pidfd_getfd duplicate: the port
 * id (getsockname: an autobound one, which the kernel chose, as much as
 * one the program asked for), every multicast group it is a member of
 * (NETLINK_LIST_MEMBERSHIPS, beyond the 32 that nl_groups shows), the
 * peer of a connect() (getpeername), the SOL_NETLINK flags and the
 * buffers. sock_diag (netlink_diag, NDIAG_SHOW_MEMINFO | _FLAGS) tells what
 * getsockopt cannot: whether messages are queued for the process and
 * whether a dump (NLM_F_DUMP) is still running in the kernel for it.
 * Neither can be restored: a message the kernel queued cannot be put back
 * as the kernel's (a program checks that nl_pid 0 sent it), a running
 * dump is the kernel's own state, and dropping either silently would leave
 * the program waiting for a reply forever or blind to a change it was
 * told about. Such a socket is refused by name: the program reads its
 * queue in a moment, and a dump taken then succeeds.
 *
 * Restore, in the process that holds it (netlink_open): the socket again,
 * its options and buffers, bound to the same port id (validate checks
 * first, through sock_diag, that no other socket of cryo's network
 * namespace holds it: the restore then fails before anything exists,
 * naming the socket), joined to each group, connected to its peer.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>
#include <linux/netlink.h>
#include <linux/netlink_diag.h>
#include <linux/sock_diag.h>

#include "fdkind.h"
#include "infra/log.h"
#include "sockets/sockopt.h"

#ifndef SOL_NETLINK
#define SOL_NETLINK 270
#endif

#define MAX_GROUP_WORDS 1024 /* 32768 groups: more than any protocol has */

static const struct sk_int_opt_def nl_opts[] = {
    SK_OPT(SOL_NETLINK, NETLINK_PKTINFO, 0),
    SK_OPT(SOL_NETLINK, NETLINK_BROADCAST_ERROR, 0),
    SK_OPT(SOL_NETLINK, NETLINK_NO_ENOBUFS, 0),
    SK_OPT(SOL_NETLINK, NETLINK_LISTEN_ALL_NSID, 0),
    SK_OPT(SOL_NETLINK, NETLINK_CAP_ACK, 0),
    SK_OPT(SOL_NETLINK, NETLINK_EXT_ACK, 0),
    SK_OPT(SOL_NETLINK, NETLINK_GET_STRICT_CHK, 0),
    SK_OPT(SOL_SOCKET, SO_PASSCRED, 0),
    SK_OPT(SOL_SOCKET, SO_PRIORITY, 0),
    SK_OPT(SOL_SOCKET, SO_MARK, 0),
};

/* ---- names ---- */

static const char *proto_name(uint32_t p)
{
	static const char *const names[] = {
	    [NETLINK_ROUTE] = "route",
	    [NETLINK_USERSOCK] = "usersock",
	    [NETLINK_FIREWALL] = "firewall",
	    [NETLINK_SOCK_DIAG] = "sock_diag",
	    [NETLINK_NFLOG] = "nflog",
	    [NETLINK_XFRM] = "xfrm",
	    [NETLINK_SELINUX] = "selinux",
	    [NETLINK_ISCSI] = "iscsi",
	    [NETLINK_AUDIT] = "audit",
	    [NETLINK_FIB_LOOKUP] = "fib_lookup",
	    [NETLINK_CONNECTOR] = "connector",
	    [NETLINK_NETFILTER] = "netfilter",
	    [NETLINK_IP6_FW] = "ip6_fw",
	    [NETLINK_DNRTMSG] = "dnrtmsg",
	    [NETLINK_KOBJECT_UEVENT] = "kobject_uevent",
	    [NETLINK_GENERIC] = "generic",
	    [NETLINK_SCSITRANSPORT] = "scsitransport",
	    [NETLINK_ECRYPTFS] = "ecryptfs",
	    [NETLINK_RDMA] = "rdma",
	    [NETLINK_CRYPTO] = "crypto",
	    [NETLINK_SMC] = "smc",
	};
	return p < sizeof(names) / sizeof(names[0]) && names[p] ? names[p] : "unknown";
}

/* "netlink socket:[INO] (route, port 1234)" */
static const char *nl_name(const NetlinkSkEntry *n, char *buf, size_t len)
{
	snprintf(buf, len, "netlink socket:[%llu] (%s %u, port %u)", (unsigned long long)n->ino,
		 proto_name(n->protocol), n->protocol, n->portid);
	return buf;
}

/* ---- sock_diag ---- */

/* What netlink_diag says of one socket. */
struct nl_diag {
	uint64_t ino;	 /* the socket looked for (0: any with portid) */
	uint32_t portid; /* or the port id looked for */
	bool found;
	uint32_t flags;	    /* NDIAG_FLAG_* */
	uint32_t rmem;	    /* bytes queued to be read */
	uint64_t other_ino; /* the socket found holding portid */
};

static int nl_diag_one(const struct nlmsghdr *h, void *arg)
{
	const struct netlink_diag_msg *m = NLMSG_DATA(h);
	struct nl_diag *d = arg;
	const uint32_t *mi;
	const uint32_t *fl;
	size_t len;

	if (h->nlmsg_len < NLMSG_LENGTH(sizeof(*m)))
		return err_set("short netlink_diag answer");
	if (d->ino ? m->ndiag_ino != d->ino : m->ndiag_portid != d->portid)
		return 0;
	d->found = true;
	d->other_ino = m->ndiag_ino;
	mi = sk_diag_attr(h, sizeof(*m), NETLINK_DIAG_MEMINFO, &len);
	if (mi && len >= (SK_MEMINFO_RMEM_ALLOC + 1) * sizeof(uint32_t))
		d->rmem = mi[SK_MEMINFO_RMEM_ALLOC];
	fl = sk_diag_attr(h, sizeof(*m), NETLINK_DIAG_FLAGS, &len);
	if (fl && len >= sizeof(uint32_t))
		d->flags = *fl;
	return 1;
}

/* The sockets of protocol proto in cryo's network namespace: the one of
 * d->ino, or (d->ino 0) the one bound to d->portid. */
static int nl_diag(uint32_t proto, struct nl_diag *d)
{
	struct netlink_diag_req r = {
	    .sdiag_family = AF_NETLINK,
	    .sdiag_protocol = proto,
	    .ndiag_show = NDIAG_SHOW_MEMINFO | NDIAG_SHOW_FLAGS,
	};

	return sk_diag_walk(&r, sizeof(r), nl_diag_one, d);
}

/* ---- dump ---- */

static bool netlink_recognise(const struct fd_probe *p)
{
	return p->sk_domain == AF_NETLINK;
}

static int read_groups(int fd, NetlinkSkEntry *n)
{
	socklen_t len = 4 * sizeof(uint32_t);

	for (;;) {
		socklen_t had = len;
		uint32_t *g = realloc(n->groups, len ? len : sizeof(uint32_t));
		if (!g)
			return err_set("out of memory");
		n->groups = g;
		if (getsockopt(fd, SOL_NETLINK, NETLINK_LIST_MEMBERSHIPS, g, &len))
			return err_errno("NETLINK_LIST_MEMBERSHIPS");
		if (len <= had)
			break;
		if (len > MAX_GROUP_WORDS * sizeof(uint32_t))
			return err_set("%u bytes of groups", (unsigned)len);
	}
	n->n_groups = len / sizeof(uint32_t);
	/* trailing words without a group need not be kept */
	while (n->n_groups && !n->groups[n->n_groups - 1])
		n->n_groups--;
	return 0;
}

static int read_addrs(int fd, NetlinkSkEntry *n)
{
	struct sockaddr_nl sa;
	socklen_t len = sizeof(sa);

	if (getsockname(fd, (struct sockaddr *)&sa, &len))
		return err_errno("getsockname");
	n->portid = sa.nl_pid;
	len = sizeof(sa);
	if (getpeername(fd, (struct sockaddr *)&sa, &len))
		return err_errno("getpeername");
	n->dst_portid = sa.nl_pid;
	n->dst_group = sa.nl_groups;
	return 0;
}

/* What the kernel holds for the socket that cannot be made again. */
static int check_queued(const NetlinkSkEntry *n, const char *what)
{
	struct nl_diag d = {.ino = n->ino};

	if (nl_diag(n->protocol, &d))
		return err_wrap("%s", what);
	/* the kernel lists bound sockets and listeners only: one never bound
	 * has nothing queued, nothing running */
	if (!d.found && !n->portid && !n->n_groups)
		return 0;
	if (!d.found)
		return err_set("%s: sock_diag does not know it (another network namespace?)", what);
	if (d.flags & NDIAG_FLAG_CB_RUNNING)
		return err_set("%s: a dump (NLM_F_DUMP) is running in the kernel for it, "
			       "whose state cannot be restored: dump again once the program "
			       "has read its reply",
			       what);
	if (d.rmem)
		return err_set("%s: %u bytes of messages are queued for the program, which "
			       "cannot be put back as the kernel's: dump again once it has "
			       "read them",
			       what, d.rmem);
	return 0;
}

static int netlink_dump(struct dump_ctx *ctx, struct dump_file *f, const struct fd_probe *p)
{
	NetlinkSkEntry *n = calloc(1, sizeof(*n));
	char what[160], name[96];
	int v;

	(void)ctx;
	if (!n)
		return err_set("out of memory");
	netlink_sk_entry__init(n);
	f->entry.netlink_sk = n;
	n->ino = p->st->st_ino;
	if (sk_get_int(p->local_fd, SOL_SOCKET, SO_TYPE, &v))
		return err_errno("fd %d of pid %d: socket:[%llu]: SO_TYPE", p->fd, p->pid,
				 (unsigned long long)n->ino);
	n->type = v;
	if (sk_get_int(p->local_fd, SOL_SOCKET, SO_PROTOCOL, &v))
		return err_errno("fd %d of pid %d: socket:[%llu]: SO_PROTOCOL", p->fd, p->pid,
				 (unsigned long long)n->ino);
	n->protocol = v;
	snprintf(what, sizeof(what), "fd %d of pid %d: %s", p->fd, p->pid, nl_name(n, name, 96));
	if (read_addrs(p->local_fd, n) || read_groups(p->local_fd, n) ||
	    sk_read_int_opts(p->local_fd, 0, nl_opts, sizeof(nl_opts) / sizeof(nl_opts[0]),
			     &n->opts, &n->n_opts) ||
	    sk_read_bufs(p->local_fd, &n->sndbuf, &n->rcvbuf, &n->buf_lock))
		return err_wrap("fd %d of pid %d: %s", p->fd, p->pid, nl_name(n, name, 96));
	snprintf(what, sizeof(what), "fd %d of pid %d: %s", p->fd, p->pid, nl_name(n, name, 96));
	return check_queued(n, what);
}

static void netlink_free_entry(FileEntry *fe)
{
	/* every part was allocated as protobuf-c's unpacking would */
	if (fe->netlink_sk)
		protobuf_c_message_free_unpacked(&fe->netlink_sk->base, NULL);
	fe->netlink_sk = NULL;
}

/* ---- restore, in cryo ---- */

static int netlink_validate(const struct restore_tree *tree, const FileEntry *fe,
			    const struct fd_use *use)
{
	const NetlinkSkEntry *n = fe->netlink_sk;
	struct nl_diag d = {0};
	char name[96];

	(void)tree;
	if (!n || (n->type != SOCK_RAW && n->type != SOCK_DGRAM) || n->protocol >= MAX_LINKS ||
	    n->n_groups > MAX_GROUP_WORDS)
		return err_set("file %u: malformed netlink socket", fe->id);
	for (size_t i = 0; i < n->n_opts; i++)
		if (n->opts[i]->level != SOL_NETLINK && n->opts[i]->level != SOL_SOCKET)
			return err_set("file %u: malformed netlink socket option", fe->id);
	if (!n->portid)
		return 0;
	d.portid = n->portid;
	if (nl_diag(n->protocol, &d))
		return err_wrap("fd %d of pid %d: %s", use->fd, use->pid, nl_name(n, name, 96));
	if (d.found)
		return err_set("fd %d of pid %d: %s: its port id %u is taken by socket:[%llu] "
			       "of this network namespace",
			       use->fd, use->pid, nl_name(n, name, 96), n->portid,
			       (unsigned long long)d.other_ino);
	return 0;
}

/* ---- restore, in the new process ---- */

static int join_groups(int fd, const NetlinkSkEntry *n)
{
	for (size_t w = 0; w < n->n_groups; w++)
		for (unsigned b = 0; b < 32; b++) {
			int g = w * 32 + b + 1;
			if (!(n->groups[w] & (1u << b)))
				continue;
			if (sk_set_int(fd, SOL_NETLINK, NETLINK_ADD_MEMBERSHIP, g))
				return err_errno("cannot join group %d", g);
		}
	return 0;
}

static int make_netlink(int fd, const NetlinkSkEntry *n)
{
	struct sockaddr_nl sa = {.nl_family = AF_NETLINK, .nl_pid = n->portid};

	if (sk_set_int_opts(fd, n->opts, n->n_opts) ||
	    sk_set_bufs(fd, n->sndbuf, n->rcvbuf, n->buf_lock))
		return -1;
	if (n->portid && bind(fd, (struct sockaddr *)&sa, sizeof(sa)))
		return err_errno(errno == EADDRINUSE ? "its port id %u is taken"
						     : "cannot bind to port id %u",
				 n->portid);
	if (join_groups(fd, n))
		return -1;
	if (!n->dst_portid && !n->dst_group)
		return 0;
	sa.nl_pid = n->dst_portid;
	sa.nl_groups = n->dst_group;
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)))
		return err_errno("cannot connect to port %u, groups 0x%x", n->dst_portid,
				 n->dst_group);
	return 0;
}

static int netlink_open(struct restore_ctx *ctx, const FileEntry *fe, int *fd)
{
	const NetlinkSkEntry *n = fe->netlink_sk;
	char name[96];

	(void)ctx;
	*fd = socket(AF_NETLINK, n->type | SOCK_CLOEXEC, n->protocol);
	if (*fd < 0)
		return err_errno("%s: socket", nl_name(n, name, sizeof(name)));
	if (make_netlink(*fd, n) || fcntl(*fd, F_SETFL, fe->flags & O_NONBLOCK))
		return err_wrap("%s", nl_name(n, name, sizeof(name)));
	return 0;
}

/* ---- show ---- */

static void netlink_describe(const FileEntry *fe, char *buf, size_t len)
{
	const NetlinkSkEntry *n = fe->netlink_sk;
	unsigned groups = 0;

	if (!n) {
		snprintf(buf, len, "netlink socket");
		return;
	}
	for (size_t w = 0; w < n->n_groups; w++)
		groups += __builtin_popcount(n->groups[w]);
	snprintf(buf, len, "netlink %s, port %u, %u group%s%s", proto_name(n->protocol), n->portid,
		 groups, groups == 1 ? "" : "s",
		 n->dst_portid || n->dst_group ? ", connected" : "");
}

const struct fd_kind netlink_kind = {
    .name = "netlink socket",
    .kind = FILE_KIND__NETLINK_SOCKET,
    .recognise = netlink_recognise,
    .dump = netlink_dump,
    .free_entry = netlink_free_entry,
    .validate = netlink_validate,
    .open = netlink_open,
    .describe = netlink_describe,
};
