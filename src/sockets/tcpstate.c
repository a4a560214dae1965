/*
 * sockets/tcpstate: the TCP states other than ESTABLISHED (tcpstate.h).
 *
 * The kernel lets a connection in any state but LISTEN enter repair mode,
 * where TCP_QUEUE_SEQ gives the sequence number at the end of each queue:
 * with our FIN counted when we sent one (FIN_WAIT1/2, CLOSING, LAST_ACK),
 * with the peer's counted when it came (CLOSE_WAIT, LAST_ACK, CLOSING).
 * tcp.c saves them so, and restores an ESTABLISHED connection in repair
 * mode with neither FIN counted; here, on cryo's duplicate while the
 * network lock still holds, the FINs are put back in the order they came:
 *  - ours: shutdown(SHUT_WR) in repair mode with the send queue selected,
 *    which queues the FIN and counts it as sent without transmitting it
 *    (FIN_WAIT1: it is retransmitted when the timer fires);
 *  - the peer's: a FIN segment from the peer's address and port, sequence
 *    number the FIN's, acknowledging what the peer had acknowledged, with
 *    the window the peer gave, sent through a raw socket (IP header
 *    included) to the socket's own address; the kernel takes it as the
 *    peer's. It carries no timestamp option: the peer's clock is not
 *    known, and a segment without one is not checked against it (PAWS);
 *  - FIN_WAIT2 (our FIN acknowledged): a segment acknowledging it.
 * The segments carry the mark NETLOCK_PASS_MARK, which the lock lets
 * through; what the socket answers is dropped by the lock as usual.
 * After each segment the socket must reach the state expected.
 *
 * A connection that ended (reset by its peer, or closed both ways) is in
 * CLOSE: reads give what was left unread, then the error if one is pending,
 * then EOF. It is made again as a connection in repair mode to itself (its
 * own address and port: no other socket has that pair), its unread data
 * queued, then ended by an RST segment; the ECONNRESET the RST leaves is
 * taken (SO_ERROR) unless the original had an error pending. The kernel
 * gives no way to read a pending error without taking it from the program
 * (SO_ERROR and recv clear it): the dump sees that one is pending (POLLERR)
 * and the restore gives ECONNRESET, what an RST gives.
 */
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <linux/inet_diag.h>
#include <linux/netlink.h>
#include <linux/sock_diag.h>
#include <linux/sockios.h>
#include <netinet/in.h>
#include <netinet/ip.h>
#include <netinet/ip6.h>
#include <netinet/tcp.h>

#include "infra/log.h"
#include "netlock.h"
#include "sockets/sockopt.h"
#include "sockets/tcpstate.h"

#define STATE_WAIT_MS 2000 /* for a segment to take the socket to its state */

const char *tcp_state_name(uint32_t st)
{
	static const char *const names[] = {
	    [ST_ESTABLISHED] = "ESTABLISHED",
	    [ST_SYN_SENT] = "SYN_SENT",
	    [ST_SYN_RECV] = "SYN_RECV",
	    [ST_FIN_WAIT1] = "FIN_WAIT1",
	    [ST_FIN_WAIT2] = "FIN_WAIT2",
	    [ST_TIME_WAIT] = "TIME_WAIT",
	    [ST_CLOSE] = "CLOSE",
	    [ST_CLOSE_WAIT] = "CLOSE_WAIT",
	    [ST_LAST_ACK] = "LAST_ACK",
	    [ST_LISTEN] = "LISTEN",
	    [ST_CLOSING] = "CLOSING",
	};
	return st < sizeof(names) / sizeof(names[0]) && names[st] ? names[st] : "unknown";
}

int tcp_state_of(int fd)
{
	struct tcp_info ti;
	socklen_t len = sizeof(ti);

	if (getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &len))
		return -1;
	return ti.tcpi_state;
}

/* ---- dump: a SYN_SENT connection's peer ---- */

struct diag_find {
	TcpSkEntry *t;
	bool found;
};

static int diag_one(const struct nlmsghdr *h, void *arg)
{
	const struct inet_diag_msg *m = NLMSG_DATA(h);
	struct diag_find *d = arg;
	size_t len = d->t->family == AF_INET ? 4 : 16;

	if (h->nlmsg_len < NLMSG_LENGTH(sizeof(*m)) || m->idiag_inode != d->t->ino)
		return 0;
	d->t->dst_addr.data = malloc(len);
	if (!d->t->dst_addr.data)
		return err_set("out of memory");
	memcpy(d->t->dst_addr.data, m->id.idiag_dst, len);
	d->t->dst_addr.len = len;
	d->t->dst_port = ntohs(m->id.idiag_dport);
	d->t->has_dst_addr = d->t->has_dst_port = true;
	d->found = true;
	return 1;
}

int tcp_diag_peer(TcpSkEntry *t)
{
	struct inet_diag_req_v2 r = {
	    .sdiag_family = t->family,
	    .sdiag_protocol = IPPROTO_TCP,
	    .idiag_states = TCPF(t->state),
	};
	struct diag_find d = {.t = t};

	if (sk_diag_walk(&r, sizeof(r), diag_one, &d))
		return -1;
	if (!d.found)
		return err_set("%s socket:[%lu] not found by sock_diag (is cryo in its network "
			       "namespace?)",
			       tcp_state_name(t->state), (unsigned long)t->ino);
	return 0;
}

/* ---- dump: a connection that ended ---- */

/* The kernel's struct tcp_info goes on past glibc's (which ends with
 * tcpi_total_retrans, 8-aligned): the fields up to tcpi_segs_in. */
struct tcp_info_more {
	struct tcp_info base;
	uint64_t pacing_rate, max_pacing_rate, bytes_acked, bytes_received;
	uint32_t segs_out, segs_in;
};

/* An error pending is taken to be the ECONNRESET of an RST, the one case
 * TCP_INFO tells apart: a connect() refused got one segment at most (the
 * RST: ECONNREFUSED), a connection that timed out had retransmitted or
 * probed (ETIMEDOUT; an RST may have come then too). */
static int pending_error(int fd, TcpSkEntry *t)
{
	struct tcp_info_more ti = {0};
	socklen_t len = sizeof(ti);

	if (getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &len))
		return err_errno("TCP_INFO");
	if (len < sizeof(ti) || ti.segs_in <= 1 || ti.base.tcpi_retransmits || ti.base.tcpi_probes)
		return err_set("a TCP connection that failed (%s) with its error pending: the "
			       "kernel gives no way to read which error without taking it from "
			       "the program",
			       len < sizeof(ti) || ti.segs_in <= 1
				   ? "connect() refused or unreachable"
				   : "timed out or reset while retransmitting");
	t->has_pending_error = true;
	t->pending_error = ECONNRESET;
	return 0;
}

int tcp_read_ended(int fd, TcpSkEntry *t)
{
	struct pollfd p = {.fd = fd, .events = POLLIN | POLLRDHUP};

	if (poll(&p, 1, 0) < 0)
		return err_errno("poll");
	/* a socket never connected has not shut its reading down */
	if (!(p.revents & POLLRDHUP))
		return 0;
	t->has_ended = t->ended = true;
	return p.revents & POLLERR ? pending_error(fd, t) : 0;
}

/* ---- restore: segments from the peer ---- */

static uint32_t sum16(const void *p, size_t len, uint32_t s)
{
	const uint8_t *b = p;

	for (size_t i = 0; i + 1 < len; i += 2)
		s += (uint32_t)b[i] << 8 | b[i + 1];
	if (len & 1)
		s += (uint32_t)b[len - 1] << 8;
	return s;
}

static uint16_t fold(uint32_t s)
{
	while (s >> 16)
		s = (s & 0xffff) + (s >> 16);
	return htons(~s & 0xffff);
}

/* Addresses as the packet carries them: a v4-mapped IPv6 pair travels as
 * IPv4. *v4 says which. */
static void packet_addrs(const TcpSkEntry *t, const uint8_t **peer, const uint8_t **self, bool *v4)
{
	static const uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

	*peer = t->dst_addr.data;
	*self = t->src_addr.data;
	*v4 = t->family == AF_INET;
	if (!*v4 && !memcmp(*peer, mapped, 12) && !memcmp(*self, mapped, 12)) {
		*peer += 12;
		*self += 12;
		*v4 = true;
	}
}

struct segment {
	uint32_t seq, ack;
	uint8_t flags;
	uint16_t window;
};

static void fill_tcp(struct tcphdr *th, const TcpSkEntry *t, const struct segment *s)
{
	memset(th, 0, sizeof(*th));
	th->source = htons(t->dst_port);
	th->dest = htons(t->src_port);
	th->seq = htonl(s->seq);
	th->ack_seq = htonl(s->ack);
	th->doff = sizeof(*th) / 4;
	th->fin = !!(s->flags & TH_FIN);
	th->rst = !!(s->flags & TH_RST);
	th->ack = !!(s->flags & TH_ACK);
	th->window = htons(s->window);
}

/* The segment as a whole packet (IP header included) into buf; its length. */
static size_t build_packet(const TcpSkEntry *t, const struct segment *s, uint8_t *buf,
			   struct sockaddr_storage *to, socklen_t *tolen)
{
	const uint8_t *peer, *self;
	bool v4;
	uint8_t pseudo[40] = {0};
	struct tcphdr *th;
	size_t alen, hlen;

	packet_addrs(t, &peer, &self, &v4);
	alen = v4 ? 4 : 16;
	hlen = v4 ? sizeof(struct iphdr) : sizeof(struct ip6_hdr);
	memset(buf, 0, hlen + sizeof(*th));
	memset(to, 0, sizeof(*to));
	if (v4) {
		struct iphdr *ip = (struct iphdr *)buf;
		struct sockaddr_in *sin = (struct sockaddr_in *)to;
		ip->version = 4;
		ip->ihl = 5;
		ip->ttl = 64;
		ip->protocol = IPPROTO_TCP;
		memcpy(&ip->saddr, peer, 4);
		memcpy(&ip->daddr, self, 4);
		sin->sin_family = AF_INET;
		memcpy(&sin->sin_addr, self, 4);
		*tolen = sizeof(*sin);
	} else {
		struct ip6_hdr *ip = (struct ip6_hdr *)buf;
		struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)to;
		ip->ip6_flow = htonl(6u << 28);
		ip->ip6_plen = htons(sizeof(*th));
		ip->ip6_nxt = IPPROTO_TCP;
		ip->ip6_hlim = 64;
		memcpy(&ip->ip6_src, peer, 16);
		memcpy(&ip->ip6_dst, self, 16);
		sin6->sin6_family = AF_INET6;
		memcpy(&sin6->sin6_addr, self, 16);
		*tolen = sizeof(*sin6);
	}
	th = (struct tcphdr *)(buf + hlen);
	fill_tcp(th, t, s);
	/* the pseudo header: both addresses, the protocol, the TCP length */
	memcpy(pseudo, peer, alen);
	memcpy(pseudo + alen, self, alen);
	pseudo[2 * alen + (v4 ? 1 : 7)] = IPPROTO_TCP; /* after a zero, or three */
	pseudo[2 * alen + 3] = sizeof(*th);	       /* the low byte of the length */
	th->check = fold(sum16(th, sizeof(*th), sum16(pseudo, 2 * alen + (v4 ? 4 : 8), 0)));
	return hlen + sizeof(*th);
}

static int send_segment(const TcpSkEntry *t, const struct segment *s)
{
	uint8_t buf[sizeof(struct ip6_hdr) + sizeof(struct tcphdr)];
	struct sockaddr_storage to;
	socklen_t tolen;
	size_t len = build_packet(t, s, buf, &to, &tolen);
	int raw = socket(to.ss_family, SOCK_RAW | SOCK_CLOEXEC, IPPROTO_RAW);
	ssize_t n = -1;

	if (raw < 0)
		return err_errno("raw socket");
	if (!sk_set_int(raw, SOL_SOCKET, SO_MARK, NETLOCK_PASS_MARK))
		n = sendto(raw, buf, len, 0, (struct sockaddr *)&to, tolen);
	close(raw);
	if (n != (ssize_t)len)
		return err_errno("cannot send the peer's segment");
	return 0;
}

/* Until the socket is in state want (the segment is taken in softirq). */
static int wait_state(int fd, uint32_t want, const char *what)
{
	struct timespec d = {0, 1000000};
	int st = -1;

	for (int ms = 0; ms < STATE_WAIT_MS; ms++) {
		st = tcp_state_of(fd);
		if (st == (int)want)
			return 0;
		nanosleep(&d, NULL);
	}
	return err_set("%s: the socket is in state %s, not %s", what,
		       st < 0 ? "unknown" : tcp_state_name(st), tcp_state_name(want));
}

static int inject(int fd, const TcpSkEntry *t, const struct segment *s, uint32_t want,
		  const char *what)
{
	if (send_segment(t, s))
		return err_wrap("%s", what);
	return wait_state(fd, want, what);
}

/* Our FIN, counted as sent (the send queue selected: nothing transmitted). */
static int our_fin(int fd, uint32_t want)
{
	if (sk_set_int(fd, IPPROTO_TCP, TCP_REPAIR_QUEUE, TCP_SEND_QUEUE) ||
	    shutdown(fd, SHUT_WR) || sk_set_int(fd, IPPROTO_TCP, TCP_REPAIR_QUEUE, TCP_NO_QUEUE))
		return err_errno("our FIN (shutdown in repair mode)");
	return wait_state(fd, want, "our FIN");
}

/* The window the peer gave, in its scale. */
static uint16_t peer_window(const TcpConnEntry *c)
{
	uint32_t w = c->snd_wnd >> c->snd_wscale;

	return w > 0xffff ? 0xffff : w;
}

/* The peer's FIN, acknowledging what it had of ours. */
static int peer_fin(int fd, const TcpSkEntry *t, uint32_t want)
{
	const TcpConnEntry *c = t->conn;
	uint32_t una = c->snd_seq - tcp_in(t->state, TCPF_OUR_FIN) - c->send_queue.len;
	struct segment s = {c->rcv_seq - 1, una, TH_FIN | TH_ACK, peer_window(c)};

	return inject(fd, t, &s, want, "the peer's FIN");
}

/* Connected to itself (make_ended): the RST comes from its own address. */
static int ended(int fd, const TcpSkEntry *t)
{
	const TcpConnEntry *c = t->conn;
	struct segment s = {c->rcv_seq, c->snd_seq, TH_RST | TH_ACK, 0};
	TcpSkEntry self = *t;
	int e;

	self.dst_addr = t->src_addr;
	self.dst_port = t->src_port;
	if (inject(fd, &self, &s, ST_CLOSE, "the reset"))
		return -1;
	/* the RST left ECONNRESET: the program had read its error already */
	if (!t->pending_error && sk_get_int(fd, SOL_SOCKET, SO_ERROR, &e))
		return err_errno("SO_ERROR");
	return 0;
}

int tcp_finish_state(int fd, const TcpSkEntry *t)
{
	const TcpConnEntry *c = t->conn;
	struct segment ack = {c->rcv_seq, c->snd_seq, TH_ACK, peer_window(c)};

	switch (t->state) {
	case ST_ESTABLISHED:
		return 0;
	case ST_CLOSE:
		return ended(fd, t);
	case ST_FIN_WAIT1:
		return our_fin(fd, ST_FIN_WAIT1);
	case ST_FIN_WAIT2:
		return our_fin(fd, ST_FIN_WAIT1) ||
		       inject(fd, t, &ack, ST_FIN_WAIT2, "the ACK of our FIN");
	case ST_CLOSE_WAIT:
		return peer_fin(fd, t, ST_CLOSE_WAIT);
	case ST_LAST_ACK: /* the peer's FIN came first */
		return peer_fin(fd, t, ST_CLOSE_WAIT) || our_fin(fd, ST_LAST_ACK);
	case ST_CLOSING: /* ours was sent first */
		return our_fin(fd, ST_FIN_WAIT1) || peer_fin(fd, t, ST_CLOSING);
	default:
		return err_set("state %s cannot be restored", tcp_state_name(t->state));
	}
}
