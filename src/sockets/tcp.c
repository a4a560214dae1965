/*
 * sockets/tcp: TCP sockets, IPv4 and IPv6 (and v4-mapped addresses on a
 * dual-stack socket): unbound, bound, listening and established.
 *
 * Dump, per fd (tcp_dump): on cryo's pidfd_getfd duplicate, TCP_INFO gives
 * the state (and a listener's backlog and the connections waiting to be
 * accepted), getsockname/getpeername the addresses, getsockopt the options
 * the program may have set (a table of int options, then buffers, linger,
 * device, owner). An established connection without --tcp-established, a
 * listener with connections waiting (without --skip-in-flight) and any
 * other state stop the dump with one line naming the fd and the addresses.
 * With --tcp-close an established connection is saved as its addresses only.
 *
 * Dump, per tree (tcp_dump_finish): the network lock is recorded in
 * netlock.img and taken (netlock.c: one nftables table for every socket
 * of the tree), then each established connection is put into repair mode
 * (TCP_REPAIR) and read: the sequence number at the end of each queue
 * (TCP_QUEUE_SEQ), both queues without consuming them (MSG_PEEK on the
 * queue TCP_REPAIR_QUEUE selects; SIOCOUTQNSD tells what of the send queue
 * was never sent), the options of the handshake (TCP_INFO, TCP_MAXSEG),
 * the timestamp clock (TCP_TIMESTAMP) and the window (TCP_REPAIR_WINDOW).
 * dump_end: a failed or --leave-running dump takes every socket out of
 * repair mode and drops the lock, and the connections go on as before; a
 * dump that kills the tree leaves them in repair mode, so that they are
 * closed silently (no FIN, no RST, nothing left holding the addresses)
 * when cryo closes its duplicates after the kill, and leaves the lock for
 * the restore to remove (the peer's retransmissions are then answered by
 * the restored socket).
 *
 * Restore, in the process that holds it (tcp_open): a connection is made
 * again in repair mode: options, bind to its address (repair mode lets it
 * share the port with its listener), the sequence numbers of both queues,
 * connect() (which in repair mode sends nothing and gives ESTABLISHED),
 * the handshake's options, the timestamp clock, the receive queue and the
 * sent-but-unacknowledged part of the send queue, the window. A listener is
 * bound with SO_REUSEADDR forced for the while, then listens. Then, in
 * cryo, once the tree is rebuilt (tcp_release, through a pidfd_getfd
 * duplicate): each connection leaves repair mode (which sends a window
 * probe), the never-sent tail of its send queue is sent as new data,
 * SO_REUSEADDR and the owner are set, and the network lock is removed. A
 * failed restore removes the lock (tcp_undo).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <linux/sockios.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <net/if.h>

#include "fdkind.h"
#include "images.h"
#include "infra/log.h"
#include "netlock.h"
#include "sockets/inet.h"
#include "sockets/sockopt.h"
#include "sockets/tcpstate.h"

#include "netlock.pb-c.h"

#ifndef SO_BUF_LOCK
#define SO_BUF_LOCK 72
#endif

#define MAX_QUEUE (256u << 20) /* bytes of one queue, at most */

/* What the dump changed: the sockets it put into repair mode, the lock. */
struct tcp_dump {
	size_t nr_repaired;
	int *repaired; /* cryo's duplicates, in repair mode */
	bool locked;
	char table[NETLOCK_NAME_MAX];
	uint64_t netns; /* the tree's network namespace, locked whole; 0: cryo's */
};

/* What the restore must undo or finish: the dump's lock. */
struct tcp_restore {
	NetlockEntry *lock; /* netlock.img, or NULL */
};

/* ---- names ---- */

/* "A:p -> B:q" of a socket. */
static const char *endpoints(const TcpSkEntry *t, char *buf, size_t len)
{
	return inet_endpoints(t->family, &t->src_addr, t->src_port,
			      t->has_dst_addr ? &t->dst_addr : NULL, t->dst_port, buf, len);
}

/* ---- the TCP options a program may set (after inet.c's) ---- */

static const struct sk_int_opt_def tcp_int_opts[] = {
    SK_OPT(IPPROTO_TCP, TCP_NODELAY, 0),       SK_OPT(IPPROTO_TCP, TCP_CORK, 0),
    SK_OPT(IPPROTO_TCP, TCP_KEEPIDLE, 0),      SK_OPT(IPPROTO_TCP, TCP_KEEPINTVL, 0),
    SK_OPT(IPPROTO_TCP, TCP_KEEPCNT, 0),       SK_OPT(IPPROTO_TCP, TCP_USER_TIMEOUT, 0),
    SK_OPT(IPPROTO_TCP, TCP_NOTSENT_LOWAT, 0), SK_OPT(IPPROTO_TCP, TCP_SYNCNT, 0),
    SK_OPT(IPPROTO_TCP, TCP_DEFER_ACCEPT, 0),
};

/* ---- dump: one socket ---- */

static bool tcp_recognise(const struct fd_probe *p)
{
	return (p->sk_domain == AF_INET || p->sk_domain == AF_INET6) && p->sk_proto == IPPROTO_TCP;
}

static int read_int_opts(int fd, TcpSkEntry *t)
{
	if (sk_read_int_opts(fd, t->family, inet_int_opts, inet_nr_int_opts, &t->opts, &t->n_opts))
		return -1;
	return sk_read_int_opts(fd, t->family, tcp_int_opts,
				sizeof(tcp_int_opts) / sizeof(tcp_int_opts[0]), &t->opts,
				&t->n_opts);
}

/* Buffers, reuse, linger, device, peek offset, owner. */
/* What every inet kind has (inet.c): the timeouts and a classic BPF filter. */
static int read_shared_opts(int fd, TcpSkEntry *t)
{
	bool locked;

	if (inet_get_timeo(fd, SO_RCVTIMEO, &t->rcvtimeo_us) ||
	    inet_get_timeo(fd, SO_SNDTIMEO, &t->sndtimeo_us))
		return err_errno("SO_RCVTIMEO/SO_SNDTIMEO");
	if (inet_read_filter(fd, &t->bpf_filter, &locked))
		return -1;
	t->has_rcvtimeo_us = t->rcvtimeo_us != 0;
	t->has_sndtimeo_us = t->sndtimeo_us != 0;
	t->has_bpf_filter = t->bpf_filter.len > 0;
	t->has_filter_locked = locked;
	t->filter_locked = locked;
	return 0;
}

static int read_other_opts(int fd, TcpSkEntry *t)
{
	int v, lock;
	struct linger lg;
	socklen_t len = sizeof(lg);
	char dev[IFNAMSIZ + 1] = "";
	socklen_t dlen = sizeof(dev) - 1;

	if (sk_get_int(fd, SOL_SOCKET, SO_REUSEADDR, &v) ||
	    sk_get_int(fd, SOL_SOCKET, SO_SNDBUF, (int *)&t->sndbuf) ||
	    sk_get_int(fd, SOL_SOCKET, SO_RCVBUF, (int *)&t->rcvbuf) ||
	    sk_get_int(fd, SOL_SOCKET, SO_BUF_LOCK, &lock) ||
	    sk_get_int(fd, SOL_SOCKET, SO_PEEK_OFF, &t->peek_off) ||
	    getsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, &len) ||
	    getsockopt(fd, SOL_SOCKET, SO_BINDTODEVICE, dev, &dlen))
		return err_errno("getsockopt");
	t->reuseaddr = v;
	t->buf_lock = lock;
	if (lg.l_onoff) {
		t->has_linger = true;
		t->linger = lg.l_linger;
	}
	if (dev[0] && !(t->bind_dev = strdup(dev)))
		return err_set("out of memory");
	if (read_shared_opts(fd, t))
		return -1;
	v = fcntl(fd, F_GETOWN);
	if (v) {
		t->has_owner = true;
		t->owner = v;
	}
	return 0;
}

static int read_addrs(int fd, TcpSkEntry *t)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);

	if (getsockname(fd, (struct sockaddr *)&ss, &len))
		return err_errno("getsockname");
	if (inet_copy_addr(&ss, &t->src_addr, &t->src_port))
		return -1;
	if (t->state == ST_LISTEN || t->state == ST_CLOSE)
		return 0;
	if (t->state == ST_SYN_SENT) /* getpeername: ENOTCONN */
		return tcp_diag_peer(t);
	len = sizeof(ss);
	if (getpeername(fd, (struct sockaddr *)&ss, &len))
		return err_errno("getpeername");
	t->has_dst_addr = t->has_dst_port = true;
	return inet_copy_addr(&ss, &t->dst_addr, &t->dst_port);
}

static int read_ended_queue(int fd, TcpSkEntry *t);

/* Whether the dump can take the socket in the state it is in. */
static int check_state(struct dump_ctx *ctx, int fd, int fd_local, TcpSkEntry *t,
		       const struct tcp_info *ti)
{
	const struct cryo_opts *o = ctx->opts;
	char ep[160];

	endpoints(t, ep, sizeof(ep));
	switch (t->state) {
	case ST_CLOSE:
		if (tcp_read_ended(fd_local, t) || (t->ended && read_ended_queue(fd_local, t)))
			return err_wrap("fd %d of pid %d: TCP socket %s", fd, ctx->pid, ep);
		return 0;
	case ST_LISTEN:
		t->has_backlog = true;
		t->backlog = ti->tcpi_sacked;
		if (ti->tcpi_unacked && !o->skip_in_flight)
			return err_set(
			    "fd %d of pid %d: TCP listener %s has %u connection%s waiting "
			    "to be accepted, which the kernel cannot queue again "
			    "(--skip-in-flight drops them)",
			    fd, ctx->pid, ep, ti->tcpi_unacked, ti->tcpi_unacked > 1 ? "s" : "");
		return 0;
	case ST_ESTABLISHED:
	case ST_SYN_SENT:
	case ST_FIN_WAIT1:
	case ST_FIN_WAIT2:
	case ST_CLOSE_WAIT:
	case ST_LAST_ACK:
	case ST_CLOSING:
		if (o->tcp_close) {
			t->has_closed = t->closed = true;
			return 0;
		}
		if (!o->tcp_established)
			return err_set("fd %d of pid %d: %s TCP connection %s "
				       "(dump with --tcp-established to save it)",
				       fd, ctx->pid,
				       t->state == ST_ESTABLISHED ? "established"
								  : tcp_state_name(t->state),
				       ep);
		return 0;
	default:
		return err_set("fd %d of pid %d: TCP socket %s in state %s: not supported yet", fd,
			       ctx->pid, ep, tcp_state_name(t->state));
	}
}

static int tcp_dump(struct dump_ctx *ctx, struct dump_file *f, const struct fd_probe *p)
{
	TcpSkEntry *t = calloc(1, sizeof(*t));
	struct tcp_info ti;
	socklen_t len = sizeof(ti);

	if (!t)
		return err_set("out of memory");
	tcp_sk_entry__init(t);
	f->entry.tcp_sk = t;
	t->ino = p->st->st_ino;
	if (getsockopt(p->local_fd, IPPROTO_TCP, TCP_INFO, &ti, &len))
		return err_errno("fd %d of pid %d: TCP socket:[%lu]", p->fd, p->pid,
				 (unsigned long)t->ino);
	t->family = p->sk_domain;
	t->state = ti.tcpi_state;
	if (read_addrs(p->local_fd, t) || read_int_opts(p->local_fd, t) ||
	    read_other_opts(p->local_fd, t))
		return err_wrap("fd %d of pid %d: TCP socket:[%lu]", p->fd, p->pid,
				(unsigned long)t->ino);
	return check_state(ctx, p->fd, p->local_fd, t, &ti);
}

/* ---- dump: a connection in repair mode ---- */

static bool in_repair(const TcpSkEntry *t)
{
	return tcp_in(t->state, TCPF_CONNECTED) && !t->closed;
}

static int set_queue(int fd, int q)
{
	return sk_set_int(fd, IPPROTO_TCP, TCP_REPAIR_QUEUE, q)
		   ? err_errno("TCP_REPAIR_QUEUE %d", q)
		   : 0;
}

/* The queue TCP_REPAIR_QUEUE selected, len bytes, without consuming it. */
static int peek_queue(int fd, uint32_t len, ProtobufCBinaryData *out, int peek_off)
{
	ssize_t n = 0;

	out->len = 0;
	out->data = malloc(len ? len : 1);
	if (!out->data)
		return err_set("out of memory");
	if (!len)
		return 0;
	/* a peek starts at the program's peek offset, if it set one */
	if (peek_off >= 0 && sk_set_int(fd, SOL_SOCKET, SO_PEEK_OFF, 0))
		return err_errno("SO_PEEK_OFF");
	n = recv(fd, out->data, len, MSG_PEEK | MSG_DONTWAIT);
	if (peek_off >= 0 && sk_set_int(fd, SOL_SOCKET, SO_PEEK_OFF, peek_off))
		return err_errno("SO_PEEK_OFF");
	if (n < 0)
		return err_errno("cannot read a queue of %u bytes", len);
	if ((uint32_t)n != len)
		return err_set("a queue of %u bytes gave %zd", len, n);
	out->len = len;
	return 0;
}

/* less: the bytes of the queue that are a FIN, not data (ours, sent or
 * not, while it is not acknowledged: SIOCOUTQ counts it, a peek does not). */
static int read_one_queue(int fd, int q, int ioc, int less, uint32_t *seq,
			  ProtobufCBinaryData *data, int peek_off)
{
	int len;

	if (set_queue(fd, q))
		return -1;
	if (sk_get_int(fd, IPPROTO_TCP, TCP_QUEUE_SEQ, (int *)seq))
		return err_errno("TCP_QUEUE_SEQ");
	if (ioctl(fd, ioc, &len))
		return err_errno("ioctl %#x", ioc);
	len -= less;
	if (len < 0 || (uint32_t)len > MAX_QUEUE)
		return err_set("a queue of %d bytes", len);
	return peek_queue(fd, len, data, peek_off);
}

/* The sequence numbers count the FINs (tcpstate.h), the queues hold data
 * only; a FIN not sent yet is the last of what SIOCOUTQNSD counts. */
static int read_queues(int fd, uint32_t state, TcpConnEntry *c, int peek_off)
{
	int fin = tcp_in(state, TCPF_OUR_FIN_UNACKED), unsent;

	if (read_one_queue(fd, TCP_SEND_QUEUE, SIOCOUTQ, fin, &c->snd_seq, &c->send_queue,
			   peek_off) ||
	    read_one_queue(fd, TCP_RECV_QUEUE, SIOCINQ, 0, &c->rcv_seq, &c->recv_queue, peek_off) ||
	    set_queue(fd, TCP_NO_QUEUE))
		return -1;
	if (ioctl(fd, SIOCOUTQNSD, &unsent))
		return err_errno("SIOCOUTQNSD");
	if (unsent > 0 && tcp_in(state, TCPF_OUR_FIN))
		unsent--;
	if (unsent < 0 || (size_t)unsent > c->send_queue.len)
		return err_set("%d bytes not sent of a send queue of %zu", unsent,
			       c->send_queue.len);
	c->unsent = unsent;
	return 0;
}

/* SYN_SENT: the initial sequence number (+ 1) and the timestamp clock. */
static int read_syn_sent(int fd, TcpConnEntry *c)
{
	if (set_queue(fd, TCP_SEND_QUEUE) ||
	    sk_get_int(fd, IPPROTO_TCP, TCP_QUEUE_SEQ, (int *)&c->snd_seq) ||
	    set_queue(fd, TCP_NO_QUEUE) ||
	    sk_get_int(fd, IPPROTO_TCP, TCP_TIMESTAMP, (int *)&c->timestamp))
		return err_errno("SYN_SENT: TCP_QUEUE_SEQ/TCP_TIMESTAMP");
	return 0;
}

/* An ended connection's unread data (no repair mode: nothing is sent). */
static int read_ended_queue(int fd, TcpSkEntry *t)
{
	int len;

	if (!(t->conn = calloc(1, sizeof(*t->conn))))
		return err_set("out of memory");
	tcp_conn_entry__init(t->conn);
	if (ioctl(fd, SIOCINQ, &len))
		return err_errno("SIOCINQ");
	if (len < 0 || (uint32_t)len > MAX_QUEUE)
		return err_set("a queue of %d bytes", len);
	t->conn->rcv_seq = len; /* any numbers do: it has no peer any more */
	return peek_queue(fd, len, &t->conn->recv_queue, t->peek_off);
}

static int read_handshake(int fd, TcpConnEntry *c)
{
	struct tcp_info ti;
	struct tcp_repair_window w;
	socklen_t len = sizeof(ti), wlen = sizeof(w);

	if (getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &len) ||
	    sk_get_int(fd, IPPROTO_TCP, TCP_MAXSEG, (int *)&c->mss) ||
	    sk_get_int(fd, IPPROTO_TCP, TCP_TIMESTAMP, (int *)&c->timestamp) ||
	    getsockopt(fd, IPPROTO_TCP, TCP_REPAIR_WINDOW, &w, &wlen))
		return err_errno("getsockopt");
	c->sack = ti.tcpi_options & TCPI_OPT_SACK;
	c->timestamps = ti.tcpi_options & TCPI_OPT_TIMESTAMPS;
	if (ti.tcpi_options & TCPI_OPT_WSCALE) {
		c->snd_wscale = ti.tcpi_snd_wscale;
		c->rcv_wscale = ti.tcpi_rcv_wscale;
	}
	c->snd_wl1 = w.snd_wl1;
	c->snd_wnd = w.snd_wnd;
	c->max_window = w.max_window;
	c->rcv_wnd = w.rcv_wnd;
	c->rcv_wup = w.rcv_wup;
	return 0;
}

/* The state again, now that the lock holds (a segment may have come since
 * the socket was first seen), then the queues and the handshake. */
static int read_conn(int fd, TcpSkEntry *t)
{
	int st = tcp_state_of(fd);

	if (st < 0)
		return err_errno("TCP_INFO");
	if (!tcp_in(st, TCPF_CONNECTED))
		return err_set("went from %s to %s during the dump", tcp_state_name(t->state),
			       tcp_state_name(st));
	t->state = st;
	if (st == ST_SYN_SENT)
		return read_syn_sent(fd, t->conn);
	return read_queues(fd, st, t->conn, t->peek_off) || read_handshake(fd, t->conn);
}

/* Puts the connection into repair mode (recorded, so that dump_end takes
 * it out) and reads it. */
static int repair_and_read(struct tcp_dump *td, struct dump_file *f)
{
	TcpSkEntry *t = f->entry.tcp_sk;
	TcpConnEntry *c = calloc(1, sizeof(*c));
	char ep[160];

	if (!c)
		return err_set("out of memory");
	tcp_conn_entry__init(c);
	t->conn = c;
	if (sk_set_int(f->local_fd, IPPROTO_TCP, TCP_REPAIR, TCP_REPAIR_ON))
		return err_errno("fd %d of pid %d: TCP connection %s: cannot enter repair mode",
				 f->first_fd, f->first_pid, endpoints(t, ep, sizeof(ep)));
	td->repaired[td->nr_repaired++] = f->local_fd;
	if (read_conn(f->local_fd, t))
		return err_wrap("fd %d of pid %d: TCP connection %s", f->first_fd, f->first_pid,
				endpoints(t, ep, sizeof(ep)));
	return 0;
}

/* ---- dump: the network lock ---- */

static bool is_tcp(const struct dump_file *f)
{
	return f->entry.kind == FILE_KIND__TCP_SOCKET && f->entry.tcp_sk;
}

static bool lockable(const TcpSkEntry *t)
{
	return in_repair(t) || t->state == ST_LISTEN;
}

static void lock_entry(const TcpSkEntry *t, struct netlock_sock *s)
{
	memset(s, 0, sizeof(*s));
	s->family = t->family;
	memcpy(s->src, t->src_addr.data, t->src_addr.len);
	s->sport = t->src_port;
	s->listener = t->state == ST_LISTEN;
	if (t->has_dst_addr) {
		memcpy(s->dst, t->dst_addr.data, t->dst_addr.len);
		s->dport = t->dst_port;
	}
}

/* netlock.img: the lock's name and every socket repair mode will touch. */
static int write_record(struct dump_tree *tree, const char *table, uint64_t netns)
{
	NetlockEntry e = NETLOCK_ENTRY__INIT;
	NetlockSock *socks = calloc(tree->nr_files + 1, sizeof(*socks));
	NetlockSock **ptrs = calloc(tree->nr_files + 1, sizeof(*ptrs));
	int r = -1;

	if (!socks || !ptrs) {
		err_set("out of memory");
		goto out;
	}
	e.table = (char *)table;
	e.has_netns = netns != 0;
	e.netns = netns;
	for (int i = 0; i < tree->nr_files; i++) {
		const struct dump_file *f = &tree->files[i];
		if (!is_tcp(f) || !in_repair(f->entry.tcp_sk))
			continue;
		netlock_sock__init(&socks[e.n_socks]);
		socks[e.n_socks].pid = f->first_pid;
		socks[e.n_socks].fd = f->first_fd;
		socks[e.n_socks].ino = f->entry.tcp_sk->ino;
		ptrs[e.n_socks] = &socks[e.n_socks];
		e.n_socks++;
	}
	e.socks = ptrs;
	r = image_write_one(&tree->dir, IMAGE_NETLOCK, 0, &e.base);
out:
	free(socks);
	free(ptrs);
	return r;
}

static int take_lock(struct dump_tree *tree, struct tcp_dump *td, size_t n)
{
	struct netlock_sock *s = calloc(n, sizeof(*s));
	size_t k = 0;
	int r;

	if (!s)
		return err_set("out of memory");
	for (int i = 0; i < tree->nr_files; i++)
		if (is_tcp(&tree->files[i]) && lockable(tree->files[i].entry.tcp_sk))
			lock_entry(tree->files[i].entry.tcp_sk, &s[k++]);
	r = netlock_take(td->table, td->netns, tree->procs[0]->pid, s, k);
	free(s);
	if (!r)
		td->locked = true;
	return r;
}

static bool lock_skipped(const struct cryo_opts *o)
{
	return o->network_lock && !strcmp(o->network_lock, "skip");
}

static int check_lock_method(const struct cryo_opts *o)
{
	if (o->network_lock && !strcmp(o->network_lock, "iptables"))
		return err_set("--network-lock iptables is not supported: cryo locks the network "
			       "with nftables (or --network-lock skip)");
	return 0;
}

/* Out of repair mode as soon as the queues are read (the lock keeps the
 * peers silent meanwhile), without the window probe TCP_REPAIR_OFF sends:
 * a cryo that dies while it writes the images leaves sockets the program
 * can use (in repair mode a recv fails with EPERM). The kill puts them
 * back in repair mode just before it (tcp_dump_end). */
static int leave_repair(struct tcp_dump *td, int how)
{
	for (size_t i = 0; i < td->nr_repaired; i++)
		if (sk_set_int(td->repaired[i], IPPROTO_TCP, TCP_REPAIR, how))
			return err_errno("cannot take a TCP socket out of repair mode");
	return 0;
}

static int tcp_dump_finish(struct dump_tree *tree)
{
	struct tcp_dump *td;
	size_t n = 0, nr_conns = 0;

	for (int i = 0; i < tree->nr_files; i++)
		if (is_tcp(&tree->files[i])) {
			n += lockable(tree->files[i].entry.tcp_sk);
			nr_conns += in_repair(tree->files[i].entry.tcp_sk);
		}
	if (!n)
		return 0;
	if (check_lock_method(tree->opts))
		return -1;
	td = tree->tcp = calloc(1, sizeof(*td));
	if (!td || !(td->repaired = calloc(nr_conns + 1, sizeof(int))))
		return err_set("out of memory");
	if (!lock_skipped(tree->opts))
		netlock_name(td->table, sizeof(td->table), tree->procs[0]->pid);
	if (td->table[0] && netlock_netns_of(tree->procs[0]->pid, &td->netns))
		return -1;
	/* recorded before it is taken: a cryo that dies leaves nothing unnamed */
	if (write_record(tree, td->table, td->netns) || (td->table[0] && take_lock(tree, td, n)))
		return -1;
	for (int i = 0; i < tree->nr_files; i++)
		if (is_tcp(&tree->files[i]) && in_repair(tree->files[i].entry.tcp_sk) &&
		    repair_and_read(td, &tree->files[i]))
			return -1;
	pr_info("%zu TCP connection%s in repair mode, read", nr_conns, nr_conns == 1 ? "" : "s");
	return leave_repair(td, TCP_REPAIR_OFF_NO_WP);
}

static void tcp_dump_end(struct dump_tree *tree, enum dump_end how)
{
	struct tcp_dump *td = tree->tcp;

	if (!td)
		return;
	/* killed: in repair mode again, closed so with cryo's duplicates after
	 * the kill (no FIN, no RST); the lock stays until the restore */
	if (how == DUMP_END_KILL) {
		for (size_t i = 0; i < td->nr_repaired; i++)
			if (sk_set_int(td->repaired[i], IPPROTO_TCP, TCP_REPAIR, TCP_REPAIR_ON))
				pr_warn("a TCP socket could not go back to repair mode before the "
					"kill, its peer may see it close: %s",
					strerror(errno));
		return;
	}
	/* released or failed: out already (leave_repair), but a dump that
	 * failed while reading may have left some in */
	for (size_t i = 0; i < td->nr_repaired; i++)
		if (sk_set_int(td->repaired[i], IPPROTO_TCP, TCP_REPAIR, TCP_REPAIR_OFF_NO_WP))
			pr_warn("cannot take a TCP socket out of repair mode: %s", strerror(errno));
	td->nr_repaired = 0;
	if (td->locked && netlock_drop(td->table, td->netns, tree->procs[0]->pid) < 0) {
		pr_warn("%s", err_text());
		err_clear();
	}
	td->locked = false;
}

static void tcp_free_entry(FileEntry *fe)
{
	/* every part was allocated as protobuf-c's unpacking would */
	if (fe->tcp_sk)
		protobuf_c_message_free_unpacked(&fe->tcp_sk->base, NULL);
	fe->tcp_sk = NULL;
}

static void tcp_dump_free(struct dump_tree *tree)
{
	if (tree->tcp)
		free(tree->tcp->repaired);
	free(tree->tcp);
	tree->tcp = NULL;
}

/* ---- restore, in cryo ---- */

static int tcp_load(struct restore_tree *tree)
{
	tree->tcp = calloc(1, sizeof(*tree->tcp));
	if (!tree->tcp)
		return err_set("out of memory");
	if (!image_present(&tree->dir, IMAGE_NETLOCK, 0))
		return 0;
	if (image_load_one(&tree->dir, IMAGE_NETLOCK, 0, (ProtobufCMessage **)&tree->tcp->lock))
		return -1;
	if (tree->tcp->lock->table[0] && !netlock_is_ours(tree->tcp->lock->table))
		return err_set("netlock.img names table %s, which is not one of cryo's",
			       tree->tcp->lock->table);
	return 0;
}

static bool addr_ok(uint32_t family, const ProtobufCBinaryData *a)
{
	return a->len == (family == AF_INET ? 4u : 16u);
}

static int validate_conn(const struct restore_tree *tree, const TcpSkEntry *t, const char *what)
{
	const TcpConnEntry *c = t->conn;

	if (!t->has_dst_addr || !addr_ok(t->family, &t->dst_addr) || !t->has_dst_port ||
	    c->unsent > c->send_queue.len || c->snd_wscale > 14 || c->rcv_wscale > 14)
		return err_set("%s: malformed connection", what);
	if (!tree->opts->tcp_established && !tree->opts->tcp_close)
		return err_set("%s: TCP connection: restore with --tcp-established "
			       "(or --tcp-close to restore it closed)",
			       what);
	return 0;
}

static int tcp_validate(const struct restore_tree *tree, const FileEntry *fe,
			const struct fd_use *use)
{
	const TcpSkEntry *t = fe->tcp_sk;
	char what[256], ep[160];

	if (!t || (t->family != AF_INET && t->family != AF_INET6) ||
	    !addr_ok(t->family, &t->src_addr) || t->src_port > 65535)
		return err_set("file %u: malformed TCP socket", fe->id);
	snprintf(what, sizeof(what), "fd %d of pid %d: TCP socket %s", use->fd, use->pid,
		 endpoints(t, ep, sizeof(ep)));
	if (t->state == ST_LISTEN || (t->state == ST_CLOSE && !t->ended))
		return 0;
	if (t->state == ST_CLOSE)
		return t->conn ? 0 : err_set("%s: malformed ended connection", what);
	if (!tcp_in(t->state, TCPF_CONNECTED))
		return err_set("%s: state %s cannot be restored", what, tcp_state_name(t->state));
	return t->conn	   ? validate_conn(tree, t, what)
	       : t->closed ? 0
			   : err_set("%s: no state", what);
}

/* ---- restore, in the new process ---- */

static int set_int_opts(struct restore_ctx *ctx, int fd, const TcpSkEntry *t)
{
	return inet_set_int_opts(ctx, fd, t->family, SOCK_STREAM, IPPROTO_TCP, t->opts, t->n_opts);
}

/* The buffers as they were (even autotuned ones, so that the queues fit),
 * then the program's locks on them. */
static int set_other_opts(int fd, const TcpSkEntry *t)
{
	struct linger lg = {.l_onoff = t->has_linger, .l_linger = t->linger};

	if (sk_set_int(fd, SOL_SOCKET, SO_SNDBUFFORCE, t->sndbuf / 2) ||
	    sk_set_int(fd, SOL_SOCKET, SO_RCVBUFFORCE, t->rcvbuf / 2) ||
	    sk_set_int(fd, SOL_SOCKET, SO_BUF_LOCK, t->buf_lock))
		return err_errno("cannot set the buffers");
	if (t->has_linger && setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg)))
		return err_errno("SO_LINGER");
	if (t->bind_dev &&
	    setsockopt(fd, SOL_SOCKET, SO_BINDTODEVICE, t->bind_dev, strlen(t->bind_dev)))
		return err_errno("SO_BINDTODEVICE %s", t->bind_dev);
	if (t->peek_off >= 0 && sk_set_int(fd, SOL_SOCKET, SO_PEEK_OFF, t->peek_off))
		return err_errno("SO_PEEK_OFF");
	if (inet_set_timeo(fd, SO_RCVTIMEO, t->rcvtimeo_us) ||
	    inet_set_timeo(fd, SO_SNDTIMEO, t->sndtimeo_us))
		return err_errno("SO_RCVTIMEO/SO_SNDTIMEO");
	return inet_set_filter(fd, &t->bpf_filter, t->filter_locked);
}

static int bind_src(int fd, const TcpSkEntry *t)
{
	struct sockaddr_storage ss;
	socklen_t len = inet_make_addr(t->family, &t->src_addr, t->src_port, &ss);

	if (bind(fd, (struct sockaddr *)&ss, len))
		return err_errno("cannot bind");
	return 0;
}

static int set_seq(int fd, int q, uint32_t seq)
{
	if (set_queue(fd, q))
		return -1;
	if (sk_set_int(fd, IPPROTO_TCP, TCP_QUEUE_SEQ, seq))
		return err_errno("TCP_QUEUE_SEQ");
	return 0;
}

static int set_handshake(int fd, const TcpConnEntry *c)
{
	struct tcp_repair_opt o[4];
	int n = 0;

	o[n++] = (struct tcp_repair_opt){TCPOPT_MAXSEG, c->mss};
	if (c->snd_wscale || c->rcv_wscale)
		o[n++] =
		    (struct tcp_repair_opt){TCPOPT_WINDOW, c->snd_wscale | c->rcv_wscale << 16};
	if (c->sack)
		o[n++] = (struct tcp_repair_opt){TCPOPT_SACK_PERMITTED, 0};
	if (c->timestamps)
		o[n++] = (struct tcp_repair_opt){TCPOPT_TIMESTAMP, 0};
	if (setsockopt(fd, IPPROTO_TCP, TCP_REPAIR_OPTIONS, o, n * sizeof(o[0])))
		return err_errno("TCP_REPAIR_OPTIONS");
	if (c->timestamps && sk_set_int(fd, IPPROTO_TCP, TCP_TIMESTAMP, c->timestamp))
		return err_errno("TCP_TIMESTAMP");
	return 0;
}

/* Into the queue TCP_REPAIR_QUEUE selected: len bytes of data (none:
 * nothing to select, the next step selects its own). */
static int fill_queue(int fd, int q, const uint8_t *data, size_t len)
{
	if (len && set_queue(fd, q))
		return -1;
	while (len) {
		ssize_t n = send(fd, data, len, MSG_DONTWAIT);
		if (n <= 0)
			return err_errno("cannot refill a queue (%zu bytes left)", len);
		data += n;
		len -= n;
	}
	return 0;
}

/* rcv_nxt: where the receive queue ends now (the peer's FIN not counted
 * yet: the last window update may have been after it). */
static int set_window(int fd, const TcpConnEntry *c, uint32_t rcv_nxt)
{
	struct tcp_repair_window w = {
	    .snd_wl1 = c->snd_wl1,
	    .snd_wnd = c->snd_wnd,
	    .max_window = c->max_window,
	    .rcv_wnd = c->rcv_wnd,
	    .rcv_wup = (int32_t)(c->rcv_wup - rcv_nxt) > 0 ? rcv_nxt : c->rcv_wup,
	};

	if (setsockopt(fd, IPPROTO_TCP, TCP_REPAIR_WINDOW, &w, sizeof(w)))
		return err_errno("TCP_REPAIR_WINDOW");
	return 0;
}

/* In repair mode: bound, sequence numbers, connected without a packet,
 * the handshake's options, the queues, the window; neither FIN counted
 * yet (tcp_finish_state puts them back). ESTABLISHED or CLOSE_WAIT: what
 * was sent of the send queue (the rest is sent once out of repair mode);
 * after our FIN, all of it counts as sent (the FIN must come after it: what
 * was never sent is sent again when the timer fires). */
static int make_conn(int fd, const TcpSkEntry *t)
{
	const TcpConnEntry *c = t->conn;
	struct sockaddr_storage ss;
	socklen_t len = inet_make_addr(t->family, &t->dst_addr, t->dst_port, &ss);
	bool our_fin = tcp_in(t->state, TCPF_OUR_FIN);
	size_t sent = our_fin ? c->send_queue.len : c->send_queue.len - c->unsent;

	if (bind_src(fd, t) ||
	    set_seq(fd, TCP_SEND_QUEUE, c->snd_seq - our_fin - c->send_queue.len) ||
	    set_seq(fd, TCP_RECV_QUEUE,
		    c->rcv_seq - tcp_in(t->state, TCPF_PEER_FIN) - c->recv_queue.len))
		return -1;
	if (connect(fd, (struct sockaddr *)&ss, len))
		return err_errno("cannot connect in repair mode");
	if (set_handshake(fd, c) ||
	    fill_queue(fd, TCP_RECV_QUEUE, c->recv_queue.data, c->recv_queue.len) ||
	    fill_queue(fd, TCP_SEND_QUEUE, c->send_queue.data, sent) || set_queue(fd, TCP_NO_QUEUE))
		return -1;
	return set_window(fd, c, c->rcv_seq - tcp_in(t->state, TCPF_PEER_FIN));
}

/* SYN_SENT: its initial sequence number set in repair mode, then a real
 * connect() (whose SYN the lock drops: the timer sends it again), then the
 * timestamp clock put back in repair mode for that SYN and what follows. */
static int make_syn_sent(int fd, const TcpSkEntry *t)
{
	struct sockaddr_storage ss;
	socklen_t len = inet_make_addr(t->family, &t->dst_addr, t->dst_port, &ss);

	if (bind_src(fd, t) || set_seq(fd, TCP_SEND_QUEUE, t->conn->snd_seq - 1) ||
	    set_queue(fd, TCP_NO_QUEUE))
		return -1;
	if (sk_set_int(fd, IPPROTO_TCP, TCP_REPAIR, TCP_REPAIR_OFF_NO_WP) ||
	    fcntl(fd, F_SETFL, O_NONBLOCK))
		return err_errno("cannot leave repair mode");
	if (connect(fd, (struct sockaddr *)&ss, len) == 0 || errno != EINPROGRESS)
		return err_errno("connect gave no SYN_SENT");
	if (sk_set_int(fd, IPPROTO_TCP, TCP_REPAIR, TCP_REPAIR_ON) ||
	    sk_set_int(fd, IPPROTO_TCP, TCP_TIMESTAMP, t->conn->timestamp) ||
	    sk_set_int(fd, IPPROTO_TCP, TCP_REPAIR, TCP_REPAIR_OFF_NO_WP))
		return err_errno("cannot set the timestamp clock");
	return 0;
}

/* An ended connection: connected in repair mode to itself (its own
 * address and port: no other socket has that pair), its unread data
 * queued; tcp_finish_state resets it. */
static int make_ended(int fd, const TcpSkEntry *t)
{
	struct sockaddr_storage ss;
	socklen_t len = inet_make_addr(t->family, &t->src_addr, t->src_port, &ss);
	const TcpConnEntry *c = t->conn;

	if (!t->src_port)
		return err_set("an ended connection with no port");
	if (bind_src(fd, t) || set_seq(fd, TCP_SEND_QUEUE, c->snd_seq) ||
	    set_seq(fd, TCP_RECV_QUEUE, c->rcv_seq - c->recv_queue.len))
		return -1;
	if (connect(fd, (struct sockaddr *)&ss, len))
		return err_errno("cannot connect in repair mode");
	return fill_queue(fd, TCP_RECV_QUEUE, c->recv_queue.data, c->recv_queue.len) ||
	       set_queue(fd, TCP_NO_QUEUE);
}

/* Bound (SO_REUSEADDR forced meanwhile: a connection of the tree may hold
 * the port already), listening with its backlog. */
static int make_unconnected(int fd, const TcpSkEntry *t)
{
	if (t->src_port && (sk_set_int(fd, SOL_SOCKET, SO_REUSEADDR, 1) || bind_src(fd, t)))
		return err_errno("cannot bind");
	if (t->state == ST_LISTEN && listen(fd, t->backlog))
		return err_errno("cannot listen (backlog %u)", t->backlog);
	if (sk_set_int(fd, SOL_SOCKET, SO_REUSEADDR, t->reuseaddr))
		return err_errno("SO_REUSEADDR");
	return 0;
}

/* A connection (not restored closed by --tcp-close) or an ended one. */
static bool in_repair_at_restore(const struct cryo_opts *o, const TcpSkEntry *t)
{
	return t->conn && (t->ended || !o->tcp_close);
}

static int make_socket(struct restore_ctx *ctx, const FileEntry *fe, int fd)
{
	const TcpSkEntry *t = fe->tcp_sk;
	bool repair = in_repair_at_restore(ctx->opts, t);

	if (repair && sk_set_int(fd, IPPROTO_TCP, TCP_REPAIR, TCP_REPAIR_ON))
		return err_errno("cannot enter repair mode");
	if (set_int_opts(ctx, fd, t) || set_other_opts(fd, t))
		return -1;
	if (t->state == ST_CLOSE && t->ended)
		return make_ended(fd, t);
	/* closed (--tcp-close): a socket of the same options, not connected */
	if (tcp_in(t->state, TCPF_CONNECTED))
		return !repair			 ? 0
		       : t->state == ST_SYN_SENT ? make_syn_sent(fd, t)
						 : make_conn(fd, t);
	return make_unconnected(fd, t);
}

static int tcp_open(struct restore_ctx *ctx, const FileEntry *fe, int *fd)
{
	const TcpSkEntry *t = fe->tcp_sk;
	char ep[160];

	*fd = socket(t->family, SOCK_STREAM | SOCK_CLOEXEC, IPPROTO_TCP);
	if (*fd < 0)
		return err_errno("TCP socket %s: socket", endpoints(t, ep, sizeof(ep)));
	if (make_socket(ctx, fe, *fd) || fcntl(*fd, F_SETFL, fe->flags & (O_NONBLOCK | O_ASYNC)))
		return err_wrap("TCP socket %s", endpoints(t, ep, sizeof(ep)));
	return 0;
}

/* ---- restore: release, in cryo ---- */

/* Its state put back (tcpstate.c), out of repair mode, the never-sent
 * tail (states where we sent no FIN: make_conn), what repair mode
 * overrode. A SYN_SENT one left repair mode for its connect(). */
static int finish_conn(int fd, const TcpSkEntry *t)
{
	const TcpConnEntry *c = t->conn;
	size_t sent = c->send_queue.len - c->unsent;

	if (t->state == ST_SYN_SENT)
		return 0;
	if (tcp_finish_state(fd, t))
		return -1;
	if (sk_set_int(fd, IPPROTO_TCP, TCP_REPAIR, TCP_REPAIR_OFF))
		return err_errno("cannot leave repair mode");
	if (tcp_in(t->state, TCPF_OUR_FIN) || t->state == ST_CLOSE)
		return 0;
	for (size_t off = sent; off < c->send_queue.len;) {
		ssize_t n = send(fd, c->send_queue.data + off, c->send_queue.len - off,
				 MSG_DONTWAIT | MSG_NOSIGNAL);
		if (n <= 0)
			return err_errno("cannot send the %zu bytes never sent",
					 c->send_queue.len - off);
		off += n;
	}
	return 0;
}

static int finish_sk(const struct cryo_opts *o, int fd, const TcpSkEntry *t)
{
	if (in_repair_at_restore(o, t)) {
		if (finish_conn(fd, t))
			return -1;
		if (sk_set_int(fd, SOL_SOCKET, SO_REUSEADDR, t->reuseaddr))
			return err_errno("SO_REUSEADDR");
	}
	if (t->has_owner && fcntl(fd, F_SETOWN, t->owner))
		return err_errno("F_SETOWN %d", t->owner);
	return 0;
}

static int release_proc(struct restore_tree *tree, struct restore_ctx *ctx, bool *done)
{
	int pidfd = syscall(SYS_pidfd_open, ctx->child, 0);
	int ret = 0;
	char ep[160];

	if (pidfd < 0)
		return err_errno("pid %d: pidfd_open", ctx->pid);
	for (size_t i = 0; i < ctx->nr_fds && !ret; i++) {
		const FdEntry *d = ctx->fds[i];
		const FileEntry *fe = ctx_file(tree, d->file_id);
		int fd;

		if (!fe || fe->kind != FILE_KIND__TCP_SOCKET || done[fe->id - 1])
			continue;
		done[fe->id - 1] = true;
		fd = syscall(SYS_pidfd_getfd, pidfd, d->fd, 0);
		if (fd < 0 || finish_sk(tree->opts, fd, fe->tcp_sk))
			ret = err_wrap("fd %u of pid %d: TCP socket %s%s", d->fd, ctx->pid,
				       endpoints(fe->tcp_sk, ep, sizeof(ep)),
				       fd < 0 ? ": pidfd_getfd" : "");
		if (fd >= 0)
			close(fd);
	}
	close(pidfd);
	return ret;
}

static void drop_lock(struct restore_tree *tree)
{
	NetlockEntry *l = tree->tcp ? tree->tcp->lock : NULL;

	if (!l || !l->table[0])
		return;
	if (netlock_drop(l->table, l->has_netns ? l->netns : 0, 0) < 0) {
		pr_warn("%s", err_text());
		err_clear();
	}
	l->table[0] = 0;
}

static int tcp_release(struct restore_tree *tree)
{
	bool *done = calloc(tree->nr_files + 1, sizeof(*done));
	int ret = 0;

	if (!done)
		return err_set("out of memory");
	for (size_t p = 0; p < tree->nr_procs && !ret; p++)
		if (!tree->procs[p]->zombie)
			ret = release_proc(tree, tree->procs[p], done);
	free(done);
	if (!ret)
		drop_lock(tree);
	return ret;
}

static void tcp_undo(struct restore_tree *tree)
{
	drop_lock(tree);
}

static void tcp_restore_free(struct restore_tree *tree)
{
	if (!tree->tcp)
		return;
	if (tree->tcp->lock)
		protobuf_c_message_free_unpacked(&tree->tcp->lock->base, NULL);
	free(tree->tcp);
	tree->tcp = NULL;
}

/* ---- show ---- */

static void tcp_describe(const FileEntry *fe, char *buf, size_t len)
{
	const TcpSkEntry *t = fe->tcp_sk;
	char ep[160];

	if (!t) {
		snprintf(buf, len, "TCP socket");
		return;
	}
	endpoints(t, ep, sizeof(ep));
	if (t->conn)
		snprintf(buf, len, "TCP%s %s %s, send queue %zu (%u not sent), receive queue %zu",
			 t->family == AF_INET6 ? "v6" : "", ep, tcp_state_name(t->state),
			 t->conn->send_queue.len, t->conn->unsent, t->conn->recv_queue.len);
	else
		snprintf(buf, len, "TCP%s %s %s%s", t->family == AF_INET6 ? "v6" : "", ep,
			 tcp_state_name(t->state), t->closed ? " (restored closed)" : "");
}

const struct fd_kind tcp_kind = {
    .name = "TCP socket",
    .kind = FILE_KIND__TCP_SOCKET,
    .recognise = tcp_recognise,
    .dump = tcp_dump,
    .dump_finish = tcp_dump_finish,
    .dump_end = tcp_dump_end,
    .free_entry = tcp_free_entry,
    .dump_free = tcp_dump_free,
    .load = tcp_load,
    .validate = tcp_validate,
    .release = tcp_release,
    .undo = tcp_undo,
    .restore_free = tcp_restore_free,
    .open = tcp_open,
    .describe = tcp_describe,
};
