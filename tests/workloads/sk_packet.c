/* sk_packet.c: workload with packet sockets, run in a network namespace of
 * the test's own (netns=1) on its veth pair vcryo0-vcryo1: a SOCK_RAW socket
 * of every protocol bound to vcryo1 with a classic BPF filter (only ethertype
 * 0x88b5 passes), locked, promiscuous mode, all-multicast and a multicast
 * address added twice, PACKET_AUXDATA, _ORIGDEV, _VERSION, _RESERVE,
 * _TIMESTAMP, _QDISC_BYPASS, _IGNORE_OUTGOING, a locked receive buffer,
 * O_NONBLOCK; a SOCK_DGRAM socket of ethertype 0x88b5; two sockets of one
 * fanout group (hash, rollover); a socket bound to nothing. One frame is
 * queued at the checkpoint: the dump does not save it (a restore drops it,
 * -R keeps it). After restore it checks every option, address, filter and
 * fanout as read before, the interface's promiscuous and all-multicast flags
 * and its multicast list, then that frames sent on vcryo0 arrive where they
 * should: on the filtered socket only those the filter passes (with their
 * auxiliary data), on the datagram socket, and on one or the other socket of
 * the fanout group. */
#include "wl.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <linux/filter.h>
#include <linux/if_packet.h>
#include <linux/net_tstamp.h>
#include <net/ethernet.h>
#include <net/if.h>

#ifndef PACKET_IGNORE_OUTGOING
#define PACKET_IGNORE_OUTGOING 23
#endif

#define ETH_A 0x88b5 /* passes the filter; the datagram socket's */
#define ETH_B 0x88b6 /* stopped by the filter */
#define ETH_F 0x88b7 /* the fanout group's */

static const unsigned char mcast[6] = {0x01, 0x00, 0x5e, 0x00, 0x00, 0xfb};

static const int pk_opts[] = {PACKET_VERSION,	      PACKET_RESERVE,	PACKET_AUXDATA,
			      PACKET_ORIGDEV,	      PACKET_TIMESTAMP, PACKET_QDISC_BYPASS,
			      PACKET_IGNORE_OUTGOING, PACKET_FANOUT,	PACKET_LOSS};
#define NR_OPTS (int)(sizeof(pk_opts) / sizeof(pk_opts[0]))

struct snap {
	int type, proto, ifindex;
	int opts[NR_OPTS];
	int rcvbuf, sndbuf, fl, locked;
	int nfilter;
	struct sock_filter filter[8];
};

static int opt(int fd, int level, int name)
{
	int v = -1;
	socklen_t len = sizeof(v);

	return getsockopt(fd, level, name, &v, &len) ? -errno : v;
}

static void take(int fd, struct snap *s)
{
	struct sockaddr_ll sa = {0};
	socklen_t len = sizeof(sa);

	memset(s, 0, sizeof(*s));
	getsockname(fd, (struct sockaddr *)&sa, &len);
	s->type = opt(fd, SOL_SOCKET, SO_TYPE);
	s->proto = ntohs(sa.sll_protocol);
	s->ifindex = sa.sll_ifindex;
	for (int i = 0; i < NR_OPTS; i++)
		s->opts[i] = opt(fd, SOL_PACKET, pk_opts[i]);
	s->rcvbuf = opt(fd, SOL_SOCKET, SO_RCVBUF);
	s->sndbuf = opt(fd, SOL_SOCKET, SO_SNDBUF);
	s->locked = opt(fd, SOL_SOCKET, SO_LOCK_FILTER);
	s->fl = fcntl(fd, F_GETFL) & O_NONBLOCK;
	len = 8; /* SO_GET_FILTER counts instructions */
	if (getsockopt(fd, SOL_SOCKET, SO_GET_FILTER, s->filter, &len) == 0)
		s->nfilter = len;
}

static void check_snap(const char *name, int fd, const struct snap *was)
{
	struct snap now;
	char n[64];

	take(fd, &now);
#define SAME(field)                                                                                \
	(snprintf(n, sizeof(n), "%s_" #field, name),                                               \
	 wl_check(n, now.field == was->field, "%ld, was %ld", (long)now.field, (long)was->field))
	SAME(type);
	SAME(proto);
	SAME(ifindex);
	for (int i = 0; i < NR_OPTS; i++) {
		snprintf(n, sizeof(n), "%s_opt%d", name, pk_opts[i]);
		wl_check(n, now.opts[i] == was->opts[i], "%d, was %d", now.opts[i], was->opts[i]);
	}
	SAME(rcvbuf);
	SAME(sndbuf);
	SAME(fl);
	SAME(locked);
	SAME(nfilter);
	snprintf(n, sizeof(n), "%s_filter", name);
	wl_check(n, !memcmp(now.filter, was->filter, sizeof(now.filter)), "instructions differ");
#undef SAME
}

static void set(int fd, int level, int name, int v)
{
	if (setsockopt(fd, level, name, &v, sizeof(v)))
		wl_die("setsockopt %d/%d = %d: %s", level, name, v, strerror(errno));
}

static int pk_socket(int type, int proto, int ifindex)
{
	struct sockaddr_ll sa = {
	    .sll_family = AF_PACKET, .sll_protocol = htons(proto), .sll_ifindex = ifindex};
	int fd = socket(AF_PACKET, type, 0);

	if (fd < 0 || ((proto || ifindex) && bind(fd, (struct sockaddr *)&sa, sizeof(sa))))
		wl_die("packet socket %d/0x%x: %s", type, proto, strerror(errno));
	return fd;
}

static void add_member(int fd, int ifindex, int type, const unsigned char *addr)
{
	struct packet_mreq mr = {.mr_ifindex = ifindex, .mr_type = type, .mr_alen = addr ? 6 : 0};

	if (addr)
		memcpy(mr.mr_address, addr, 6);
	if (setsockopt(fd, SOL_PACKET, PACKET_ADD_MEMBERSHIP, &mr, sizeof(mr)))
		wl_die("PACKET_ADD_MEMBERSHIP %d: %s", type, strerror(errno));
}

/* A broadcast frame of ethertype type, sent on vcryo0 (it arrives on vcryo1). */
static void send_frame(int out, int ifindex, int type, unsigned char tag)
{
	unsigned char f[60] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02, 0, 0, 0, 0, 1};
	struct sockaddr_ll to = {.sll_family = AF_PACKET, .sll_ifindex = ifindex, .sll_halen = 6};

	f[12] = type >> 8;
	f[13] = type & 0xff;
	f[14] = tag;
	f[15] = type & 0xff; /* a hash input that differs between frames */
	f[16] = tag * 37;
	if (sendto(out, f, sizeof(f), 0, (struct sockaddr *)&to, sizeof(to)) != sizeof(f))
		wl_die("send: %s", strerror(errno));
}

static bool readable(int fd, int ms)
{
	struct pollfd p = {.fd = fd, .events = POLLIN};

	return poll(&p, 1, ms) == 1;
}

/* The frames queued on fd (waiting up to ms for the first): their tags
 * (byte 14 of a raw frame, 0 of a datagram) into tags, how many. */
static int drain(int fd, int ms, bool raw, unsigned char *tags, int max, bool *aux)
{
	int n = 0;

	while (n < max && readable(fd, n ? 50 : ms)) {
		unsigned char f[128], c[256];
		struct iovec iov = {f, sizeof(f)};
		struct msghdr m = {.msg_iov = &iov,
				   .msg_iovlen = 1,
				   .msg_control = c,
				   .msg_controllen = sizeof(c)};
		if (recvmsg(fd, &m, MSG_DONTWAIT) <= 0)
			break;
		for (struct cmsghdr *h = CMSG_FIRSTHDR(&m); aux && h; h = CMSG_NXTHDR(&m, h))
			*aux |= h->cmsg_level == SOL_PACKET && h->cmsg_type == PACKET_AUXDATA;
		tags[n++] = raw ? f[14] : f[0];
	}
	return n;
}

static bool has_mcast(const char *dev)
{
	FILE *f = fopen("/proc/net/dev_mcast", "r");
	char line[256], want[16];
	bool found = false;

	snprintf(want, sizeof(want), "%02x%02x%02x%02x%02x%02x", mcast[0], mcast[1], mcast[2],
		 mcast[3], mcast[4], mcast[5]);
	while (f && fgets(line, sizeof(line), f))
		found |= strstr(line, dev) && strstr(line, want);
	if (f)
		fclose(f);
	return found;
}

/* dev->flags, as sysfs shows them: with IFF_PROMISC and IFF_ALLMULTI set
 * while any socket asks for them (SIOCGIFFLAGS shows only what was set by
 * hand). */
static int if_flags(const char *dev)
{
	char path[128];
	FILE *f;
	int v = -1;

	snprintf(path, sizeof(path), "/sys/class/net/%s/flags", dev);
	f = fopen(path, "r");
	if (f && fscanf(f, "%x", &v) != 1)
		v = -1;
	if (f)
		fclose(f);
	return v;
}

static void check_traffic(int raw, int dg, int f1, int f2, int out, int if0)
{
	unsigned char tags[16];
	bool aux = false;
	int n, n1, n2;

	send_frame(out, if0, ETH_B, 1);
	send_frame(out, if0, ETH_A, 2);
	n = drain(raw, 2000, true, tags, 16, &aux);
	wl_check("raw_filtered_frames", n == 1 && tags[0] == 2, "%d frames, first tag %d", n,
		 n ? tags[0] : -1);
	wl_check("raw_auxdata", aux, "no PACKET_AUXDATA message");
	n = drain(dg, 2000, false, tags, 16, NULL);
	wl_check("dgram_frames", n == 1 && tags[0] == 2, "%d frames, first byte %d", n,
		 n ? tags[0] : -1);
	for (int i = 0; i < 8; i++)
		send_frame(out, if0, ETH_F, 10 + i);
	n1 = drain(f1, 2000, true, tags, 16, NULL);
	n2 = drain(f2, 300, true, tags, 16, NULL);
	wl_check("fanout_frames", n1 + n2 == 8, "%d + %d frames, expected 8 in all", n1, n2);
}

int main(void)
{
	struct sock_filter prog[] = {
	    BPF_STMT(BPF_LD | BPF_H | BPF_ABS, 12),
	    BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, ETH_A, 0, 1),
	    BPF_STMT(BPF_RET | BPF_K, 0xffff),
	    BPF_STMT(BPF_RET | BPF_K, 0),
	};
	struct sock_fprog fp = {.len = 4, .filter = prog};
	int if0, if1, raw, dg, f1, f2, un, out,
	    fanout = (getpid() & 0xffff) | (PACKET_FANOUT_HASH | PACKET_FANOUT_FLAG_ROLLOVER) << 16;
	struct snap s_raw, s_dg, s_f1, s_f2, s_un;
	unsigned char tags[4];
	int queued_raw, queued_dg;

	wl_init();
	if0 = if_nametoindex("vcryo0");
	if1 = if_nametoindex("vcryo1");
	if (!if0 || !if1)
		wl_die("no veth pair vcryo0-vcryo1 (run with netns=1)");
	raw = socket(AF_PACKET, SOCK_RAW, 0);
	set(raw, SOL_PACKET, PACKET_VERSION, TPACKET_V2);
	set(raw, SOL_PACKET, PACKET_RESERVE, 64);
	set(raw, SOL_PACKET, PACKET_AUXDATA, 1);
	set(raw, SOL_PACKET, PACKET_ORIGDEV, 1);
	set(raw, SOL_PACKET, PACKET_TIMESTAMP, SOF_TIMESTAMPING_RAW_HARDWARE);
	set(raw, SOL_PACKET, PACKET_QDISC_BYPASS, 1);
	set(raw, SOL_PACKET, PACKET_IGNORE_OUTGOING, 1);
	set(raw, SOL_SOCKET, SO_RCVBUF, 200000);
	if (setsockopt(raw, SOL_SOCKET, SO_ATTACH_FILTER, &fp, sizeof(fp)))
		wl_die("SO_ATTACH_FILTER: %s", strerror(errno));
	set(raw, SOL_SOCKET, SO_LOCK_FILTER, 1);
	{
		struct sockaddr_ll sa = {
		    .sll_family = AF_PACKET, .sll_protocol = htons(ETH_P_ALL), .sll_ifindex = if1};
		if (bind(raw, (struct sockaddr *)&sa, sizeof(sa)))
			wl_die("bind: %s", strerror(errno));
	}
	add_member(raw, if1, PACKET_MR_PROMISC, NULL);
	add_member(raw, if1, PACKET_MR_ALLMULTI, NULL);
	add_member(raw, if1, PACKET_MR_MULTICAST, mcast);
	add_member(raw, if1, PACKET_MR_MULTICAST, mcast);
	fcntl(raw, F_SETFL, O_NONBLOCK);
	dg = pk_socket(SOCK_DGRAM, ETH_A, if1);
	set(dg, SOL_PACKET, PACKET_LOSS, 1);
	f1 = pk_socket(SOCK_RAW, ETH_F, if1);
	f2 = pk_socket(SOCK_RAW, ETH_F, if1);
	set(f1, SOL_PACKET, PACKET_FANOUT, fanout);
	set(f2, SOL_PACKET, PACKET_FANOUT, fanout);
	un = pk_socket(SOCK_DGRAM, 0, 0);
	out = pk_socket(SOCK_RAW, 0, 0);
	/* one frame left queued at the checkpoint on raw and dg */
	send_frame(out, if0, ETH_A, 7);
	queued_raw = readable(raw, 2000);
	queued_dg = readable(dg, 2000);
	if (!queued_raw || !queued_dg || !(if_flags("vcryo1") & IFF_PROMISC) ||
	    !has_mcast("vcryo1"))
		wl_die("setup: queued %d %d, flags 0x%x, multicast %d", queued_raw, queued_dg,
		       if_flags("vcryo1"), has_mcast("vcryo1"));
	take(raw, &s_raw);
	take(dg, &s_dg);
	take(f1, &s_f1);
	take(f2, &s_f2);
	take(un, &s_un);
	wl_ready();
	wl_wait_go();
	check_snap("raw", raw, &s_raw);
	check_snap("dgram", dg, &s_dg);
	check_snap("fanout1", f1, &s_f1);
	check_snap("fanout2", f2, &s_f2);
	check_snap("unbound", un, &s_un);
	wl_check("raw_set_as_asked",
		 s_raw.opts[0] == TPACKET_V2 && s_raw.opts[1] == 64 && s_raw.nfilter == 4 &&
		     s_raw.locked == 1 && s_f1.opts[7] == fanout && s_raw.proto == ETH_P_ALL,
		 "version %d reserve %d filter %d locked %d fanout 0x%x", s_raw.opts[0],
		 s_raw.opts[1], s_raw.nfilter, s_raw.locked, s_f1.opts[7]);
	wl_check("vcryo1_promisc", if_flags("vcryo1") & IFF_PROMISC, "flags 0x%x",
		 if_flags("vcryo1"));
	wl_check("vcryo1_allmulti", if_flags("vcryo1") & IFF_ALLMULTI, "flags 0x%x",
		 if_flags("vcryo1"));
	wl_check("vcryo1_multicast", has_mcast("vcryo1"), "01:00:5e:00:00:fb not listed");
	/* the frame queued at the checkpoint: dropped by a restore */
	queued_raw = drain(raw, 0, true, tags, 4, NULL);
	queued_dg = drain(dg, 0, false, tags, 4, NULL);
	wl_check("queued_frame",
		 queued_raw == (wl_restored() ? 0 : 1) && queued_dg == (wl_restored() ? 0 : 1),
		 "%d and %d frames queued after the checkpoint (%s)", queued_raw, queued_dg,
		 wl_restored() ? "restored: dropped" : "left running: kept");
	check_traffic(raw, dg, f1, f2, out, if0);
	wl_done();
}
