/*
 * sockets/packet: packet sockets (AF_PACKET, SOCK_RAW and SOCK_DGRAM).
 *
 * Dump, per fd (packet_dump), on cryo's pidfd_getfd duplicate:
 * getsockname gives the interface (ifindex, whose name is kept to check
 * it at restore) and the protocol it is bound to; getsockopt the options
 * a program sets (PACKET_VERSION, _RESERVE, _AUXDATA, _ORIGDEV,
 * _VNET_HDR, _TIMESTAMP, _QDISC_BYPASS, _LOSS, _TX_HAS_OFF,
 * _IGNORE_OUTGOING, _FANOUT), the buffers and the classic BPF filter
 * (SO_GET_FILTER); packet_diag (sock_diag, PACKET_SHOW_INFO | _MCLIST |
 * _RING_CFG | _MEMINFO) what getsockopt cannot tell: the memberships
 * (PACKET_ADD_MEMBERSHIP: promiscuous mode, multicast addresses, each with
 * how many times it was added), the copy threshold, whether it is hooked
 * to receive, the rings and the bytes queued. Frames queued for the
 * program are not saved: a packet socket receives what the wire gives and
 * a network may drop any frame (the kernel drops them itself when the
 * buffer is full), so they are dropped and the dump says how many bytes.
 * A fanout group with a BPF program of its own (PACKET_FANOUT_CBPF,
 * _EBPF), which cannot be read back, and a mapped ring (PACKET_RX_RING,
 * PACKET_TX_RING) are refused by name.
 *
 * Restore, in the process that holds it (packet_open): the socket made
 * with no protocol (so that it receives nothing yet), the options (the
 * version first: the rest depends on it), bound to the interface and the
 * protocol (which hooks it), its memberships added again as many times
 * as they were, its fanout group joined (once bound: the kernel wants a
 * running socket), the filter attached and locked.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <linux/if_packet.h>
#include <linux/packet_diag.h>
#include <linux/sock_diag.h>
#include <net/if.h>

#include "fdkind.h"
#include "infra/log.h"
#include "sockets/sockopt.h"

#ifndef PACKET_IGNORE_OUTGOING
#define PACKET_IGNORE_OUTGOING 23
#endif

#define FANOUT_TYPE(v)	(((v) >> 16) & 0xff)
#define FANOUT_UNIQUEID (PACKET_FANOUT_FLAG_UNIQUEID << 16)
#define MAX_MCLIST	4096

/* In the order they are set again: the version first. */
static const struct sk_int_opt_def pk_opts[] = {
    SK_OPT(SOL_PACKET, PACKET_VERSION, 0),	SK_OPT(SOL_PACKET, PACKET_RESERVE, 0),
    SK_OPT(SOL_PACKET, PACKET_AUXDATA, 0),	SK_OPT(SOL_PACKET, PACKET_ORIGDEV, 0),
    SK_OPT(SOL_PACKET, PACKET_VNET_HDR, 0),	SK_OPT(SOL_PACKET, PACKET_TIMESTAMP, 0),
    SK_OPT(SOL_PACKET, PACKET_QDISC_BYPASS, 0), SK_OPT(SOL_PACKET, PACKET_LOSS, 0),
    SK_OPT(SOL_PACKET, PACKET_TX_HAS_OFF, 0),	SK_OPT(SOL_PACKET, PACKET_IGNORE_OUTGOING, 0),
    SK_OPT(SOL_SOCKET, SO_PRIORITY, 0),		SK_OPT(SOL_SOCKET, SO_MARK, 0),
    SK_OPT(SOL_SOCKET, SO_RCVLOWAT, 0),		SK_OPT(SOL_SOCKET, SO_TIMESTAMP, 0),
    SK_OPT(SOL_SOCKET, SO_TIMESTAMPNS, 0),
};

/* "packet socket:[INO] (raw, eth0, protocol 0x0003)" */
static const char *pk_name(const PacketSkEntry *k, char *buf, size_t len)
{
	snprintf(buf, len, "packet socket:[%llu] (%s, %s, protocol 0x%04x)",
		 (unsigned long long)k->ino, k->type == SOCK_RAW ? "raw" : "dgram",
		 k->ifname ? k->ifname : "any interface", k->protocol);
	return buf;
}

/* ---- dump: packet_diag ---- */

struct pk_diag {
	uint64_t ino;
	PacketSkEntry *k;
	bool found;
	uint32_t rmem;
};

static int add_mclist(PacketSkEntry *k, const struct packet_diag_mclist *m, size_t n)
{
	if (n > MAX_MCLIST)
		return err_set("%zu memberships", n);
	k->mclist = calloc(n + 1, sizeof(*k->mclist));
	if (!k->mclist)
		return err_set("out of memory");
	for (size_t i = 0; i < n; i++) {
		PacketMclistEntry *e = malloc(sizeof(*e));
		size_t alen = m[i].pdmc_alen < sizeof(m[i].pdmc_addr) ? m[i].pdmc_alen : 0;
		if (!e)
			return err_set("out of memory");
		packet_mclist_entry__init(e);
		k->mclist[k->n_mclist++] = e;
		if (!(e->addr.data = malloc(alen + 1)))
			return err_set("out of memory");
		memcpy(e->addr.data, m[i].pdmc_addr, alen);
		e->addr.len = alen;
		e->ifindex = m[i].pdmc_index;
		e->type = m[i].pdmc_type;
		e->count = m[i].pdmc_count;
	}
	return 0;
}

static PacketRingEntry *ring_of(const struct packet_diag_ring *r)
{
	PacketRingEntry *e = malloc(sizeof(*e));

	if (!e)
		return NULL;
	packet_ring_entry__init(e);
	e->block_size = r->pdr_block_size;
	e->block_nr = r->pdr_block_nr;
	e->frame_size = r->pdr_frame_size;
	e->frame_nr = r->pdr_frame_nr;
	e->retire_tmo = r->pdr_retire_tmo;
	e->sizeof_priv = r->pdr_sizeof_priv;
	e->features = r->pdr_features;
	return e;
}

static int pk_diag_one(const struct nlmsghdr *h, void *arg)
{
	const struct packet_diag_msg *m = NLMSG_DATA(h);
	struct pk_diag *d = arg;
	const struct packet_diag_info *info;
	const void *a;
	size_t len;

	if (h->nlmsg_len < NLMSG_LENGTH(sizeof(*m)))
		return err_set("short packet_diag answer");
	if (m->pdiag_ino != d->ino)
		return 0;
	d->found = true;
	info = sk_diag_attr(h, sizeof(*m), PACKET_DIAG_INFO, &len);
	if (!info || len < sizeof(*info))
		return err_set("packet_diag gives no PACKET_DIAG_INFO");
	d->k->copy_thresh = info->pdi_copy_thresh;
	d->k->running = info->pdi_flags & PDI_RUNNING;
	if ((a = sk_diag_attr(h, sizeof(*m), PACKET_DIAG_MCLIST, &len)) &&
	    add_mclist(d->k, a, len / sizeof(struct packet_diag_mclist)))
		return -1;
	if ((a = sk_diag_attr(h, sizeof(*m), PACKET_DIAG_RX_RING, &len)) &&
	    len >= sizeof(struct packet_diag_ring) && !(d->k->rx_ring = ring_of(a)))
		return err_set("out of memory");
	if ((a = sk_diag_attr(h, sizeof(*m), PACKET_DIAG_TX_RING, &len)) &&
	    len >= sizeof(struct packet_diag_ring) && !(d->k->tx_ring = ring_of(a)))
		return err_set("out of memory");
	if ((a = sk_diag_attr(h, sizeof(*m), PACKET_DIAG_MEMINFO, &len)) &&
	    len >= (SK_MEMINFO_RMEM_ALLOC + 1) * sizeof(uint32_t))
		d->rmem = ((const uint32_t *)a)[SK_MEMINFO_RMEM_ALLOC];
	return 1;
}

static int read_diag(PacketSkEntry *k)
{
	struct packet_diag_req r = {
	    .sdiag_family = AF_PACKET,
	    .pdiag_show =
		PACKET_SHOW_INFO | PACKET_SHOW_MCLIST | PACKET_SHOW_RING_CFG | PACKET_SHOW_MEMINFO,
	};
	struct pk_diag d = {.ino = k->ino, .k = k};

	if (sk_diag_walk(&r, sizeof(r), pk_diag_one, &d))
		return -1;
	if (!d.found)
		return err_set("sock_diag does not know it (another network namespace?)");
	k->dropped = d.rmem;
	return 0;
}

/* ---- dump: one socket ---- */

static bool packet_recognise(const struct fd_probe *p)
{
	return p->sk_domain == AF_PACKET;
}

static int read_addr(int fd, PacketSkEntry *k)
{
	struct sockaddr_ll sa;
	socklen_t len = sizeof(sa);
	char name[IF_NAMESIZE];
	int v;

	if (sk_get_int(fd, SOL_SOCKET, SO_TYPE, &v))
		return err_errno("SO_TYPE");
	k->type = v;
	if (getsockname(fd, (struct sockaddr *)&sa, &len))
		return err_errno("getsockname");
	k->protocol = ntohs(sa.sll_protocol);
	k->ifindex = sa.sll_ifindex;
	if (k->ifindex && !if_indextoname(k->ifindex, name))
		return err_errno("interface %u", k->ifindex);
	if (k->ifindex && !(k->ifname = strdup(name)))
		return err_set("out of memory");
	return 0;
}

static int read_fanout_filter(int fd, PacketSkEntry *k)
{
	int v, locked;
	size_t len;

	if (sk_get_int(fd, SOL_PACKET, PACKET_FANOUT, &v))
		return err_errno("PACKET_FANOUT");
	if (v) {
		k->has_fanout = true;
		k->fanout = v;
	}
	if (sk_read_filter(fd, &k->filter.data, &len, &locked))
		return -1;
	k->has_filter = len > 0;
	k->filter.len = len;
	k->filter_locked = locked;
	return 0;
}

/* What cannot be taken, by name. */
static int check_packet(const PacketSkEntry *k)
{
	if (k->has_fanout && (FANOUT_TYPE(k->fanout) == PACKET_FANOUT_CBPF ||
			      FANOUT_TYPE(k->fanout) == PACKET_FANOUT_EBPF))
		return err_set("its fanout group %u steers by a BPF program "
			       "(PACKET_FANOUT_DATA), which cannot be read back: not supported",
			       k->fanout & 0xffff);
	if (k->rx_ring || k->tx_ring)
		return err_set("a mapped ring (%s): not supported yet",
			       k->rx_ring ? "PACKET_RX_RING" : "PACKET_TX_RING");
	for (size_t i = 0; i < k->n_mclist; i++)
		if (k->mclist[i]->addr.len > 8)
			return err_set("a membership with an address of %zu bytes",
				       k->mclist[i]->addr.len);
	return 0;
}

static int packet_dump(struct dump_ctx *ctx, struct dump_file *f, const struct fd_probe *p)
{
	PacketSkEntry *k = calloc(1, sizeof(*k));
	char name[128];

	(void)ctx;
	if (!k)
		return err_set("out of memory");
	packet_sk_entry__init(k);
	f->entry.packet_sk = k;
	k->ino = p->st->st_ino;
	if (read_addr(p->local_fd, k) ||
	    sk_read_int_opts(p->local_fd, 0, pk_opts, sizeof(pk_opts) / sizeof(pk_opts[0]),
			     &k->opts, &k->n_opts) ||
	    sk_read_bufs(p->local_fd, &k->sndbuf, &k->rcvbuf, &k->buf_lock) ||
	    read_fanout_filter(p->local_fd, k) || read_diag(k) || check_packet(k))
		return err_wrap("fd %d of pid %d: %s", p->fd, p->pid,
				pk_name(k, name, sizeof(name)));
	if (k->dropped)
		pr_warn("fd %d of pid %d: %s: %u bytes of frames queued for the program are "
			"not saved (a restore drops them, as a network may)",
			p->fd, p->pid, pk_name(k, name, sizeof(name)), k->dropped);
	return 0;
}

static void packet_free_entry(FileEntry *fe)
{
	if (fe->packet_sk)
		protobuf_c_message_free_unpacked(&fe->packet_sk->base, NULL);
	fe->packet_sk = NULL;
}

/* ---- restore, in cryo ---- */

static int packet_validate(const struct restore_tree *tree, const FileEntry *fe,
			   const struct fd_use *use)
{
	const PacketSkEntry *k = fe->packet_sk;
	char name[128], now[IF_NAMESIZE];

	(void)tree;
	if (!k || (k->type != SOCK_RAW && k->type != SOCK_DGRAM) || k->protocol > 0xffff ||
	    (k->has_filter && (!k->filter.len || k->filter.len % 8 || k->filter.len > 8 * 4096)) ||
	    k->rx_ring || k->tx_ring)
		return err_set("file %u: malformed packet socket", fe->id);
	for (size_t i = 0; i < k->n_opts; i++)
		if (k->opts[i]->level != SOL_PACKET && k->opts[i]->level != SOL_SOCKET)
			return err_set("file %u: malformed packet socket option", fe->id);
	for (size_t i = 0; i < k->n_mclist; i++)
		if (k->mclist[i]->addr.len > 8 || k->mclist[i]->count > 1u << 20)
			return err_set("file %u: malformed packet membership", fe->id);
	if (!k->ifindex)
		return 0;
	if (!if_indextoname(k->ifindex, now) || !k->ifname || strcmp(now, k->ifname))
		return err_set("fd %d of pid %d: %s: interface %u is %s here", use->fd, use->pid,
			       pk_name(k, name, sizeof(name)), k->ifindex,
			       if_indextoname(k->ifindex, now) ? now : "not there");
	return 0;
}

/* ---- restore, in the new process ---- */

static int add_memberships(int fd, const PacketSkEntry *k)
{
	for (size_t i = 0; i < k->n_mclist; i++) {
		const PacketMclistEntry *e = k->mclist[i];
		struct packet_mreq mr = {
		    .mr_ifindex = e->ifindex,
		    .mr_type = e->type,
		    .mr_alen = e->addr.len,
		};
		if (e->addr.len)
			memcpy(mr.mr_address, e->addr.data, e->addr.len);
		for (uint32_t n = 0; n < e->count; n++)
			if (setsockopt(fd, SOL_PACKET, PACKET_ADD_MEMBERSHIP, &mr, sizeof(mr)))
				return err_errno("PACKET_ADD_MEMBERSHIP (interface %u, type %u)",
						 e->ifindex, e->type);
	}
	return 0;
}

static int make_packet(int fd, const PacketSkEntry *k)
{
	struct sockaddr_ll sa = {
	    .sll_family = AF_PACKET,
	    .sll_protocol = htons(k->protocol),
	    .sll_ifindex = k->ifindex,
	};

	if (sk_set_int_opts(fd, k->opts, k->n_opts) ||
	    sk_set_bufs(fd, k->sndbuf, k->rcvbuf, k->buf_lock))
		return -1;
	if (sk_set_int(fd, SOL_PACKET, PACKET_COPY_THRESH, k->copy_thresh))
		return err_errno("PACKET_COPY_THRESH");
	if ((k->protocol || k->ifindex) && bind(fd, (struct sockaddr *)&sa, sizeof(sa)))
		return err_errno("cannot bind");
	if (add_memberships(fd, k))
		return -1;
	/* the id it had, even one the kernel chose (UNIQUEID) */
	if (k->has_fanout &&
	    sk_set_int(fd, SOL_PACKET, PACKET_FANOUT, k->fanout & ~(uint32_t)FANOUT_UNIQUEID))
		return err_errno("cannot join fanout group %u", k->fanout & 0xffff);
	return sk_attach_filter(fd, k->filter.data, k->has_filter ? k->filter.len : 0,
				k->filter_locked);
}

static int packet_open(struct restore_ctx *ctx, const FileEntry *fe, int *fd)
{
	const PacketSkEntry *k = fe->packet_sk;
	char name[128];

	(void)ctx;
	*fd = socket(AF_PACKET, k->type | SOCK_CLOEXEC, 0);
	if (*fd < 0)
		return err_errno("%s: socket", pk_name(k, name, sizeof(name)));
	if (make_packet(*fd, k) || fcntl(*fd, F_SETFL, fe->flags & O_NONBLOCK))
		return err_wrap("%s", pk_name(k, name, sizeof(name)));
	return 0;
}

/* ---- show ---- */

static void packet_describe(const FileEntry *fe, char *buf, size_t len)
{
	const PacketSkEntry *k = fe->packet_sk;
	char name[128];

	if (!k) {
		snprintf(buf, len, "packet socket");
		return;
	}
	snprintf(buf, len, "%s, %zu membership%s%s%s", pk_name(k, name, sizeof(name)), k->n_mclist,
		 k->n_mclist == 1 ? "" : "s", k->has_fanout ? ", fanout" : "",
		 k->has_filter ? ", filter" : "");
}

const struct fd_kind packet_kind = {
    .name = "packet socket",
    .kind = FILE_KIND__PACKET_SOCKET,
    .recognise = packet_recognise,
    .dump = packet_dump,
    .free_entry = packet_free_entry,
    .validate = packet_validate,
    .open = packet_open,
    .describe = packet_describe,
};
