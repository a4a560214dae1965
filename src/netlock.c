/*
 * netlock: the network lock of a checkpoint (netlock.h).
 *
 * While a tree is frozen, its TCP connections must neither send nor
 * receive: a packet answered by a socket in repair mode, or by no socket
 * once the tree is killed, would make the peer see a reset. The lock is one
 * nftables table of the inet family, named cryo-PID-STAMP (netlock_name:
 * recognisable as cryo's, unique to one checkpoint, recorded in its
 * netlock.img), made through libnftables in one transaction: an input and
 * an output chain at the raw priority, before conntrack, and sets of
 * connections (local address . port . remote address . port, IPv4 and
 * IPv6) and of listeners. Output drops what a connection of the tree sends,
 * input what is addressed to it, and connection requests (SYN without ACK)
 * to a listener of the tree; nothing else on the machine is touched, and
 * the cost per connection is one set element. Packets marked
 * NETLOCK_PASS_MARK pass both ways: the segments a restore makes to put a
 * connection back in its state (sockets/tcpstate.c). A v4-mapped IPv6 address
 * goes into the IPv4 sets, where its packets are. Removing the lock is
 * deleting the table.
 */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <netinet/in.h>
#include <nftables/libnftables.h>

#include "infra/log.h"
#include "netlock.h"

#define NETLOCK_PREFIX "cryo-"

void netlock_name(char *buf, size_t len, pid_t root)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	snprintf(buf, len, NETLOCK_PREFIX "%d-%llx", (int)root,
		 (unsigned long long)ts.tv_sec * 1000000000ULL + ts.tv_nsec);
}

bool netlock_is_ours(const char *table)
{
	size_t n = strlen(NETLOCK_PREFIX);

	if (strncmp(table, NETLOCK_PREFIX, n) || strlen(table) >= NETLOCK_NAME_MAX)
		return false;
	for (const char *p = table + n; *p; p++)
		if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f') || *p == '-'))
			return false;
	return true;
}

/* Runs the commands in one transaction; *nft_err gets nft's first error line. */
static int run_nft(const char *cmds, char *nft_err, size_t len)
{
	struct nft_ctx *nft = nft_ctx_new(NFT_CTX_DEFAULT);
	int r;

	nft_err[0] = 0;
	if (!nft)
		return snprintf(nft_err, len, "cannot make an nftables context"), -1;
	nft_ctx_buffer_output(nft);
	nft_ctx_buffer_error(nft);
	r = nft_run_cmd_from_buffer(nft, cmds);
	if (r) {
		const char *e = nft_ctx_get_error_buffer(nft);
		snprintf(nft_err, len, "%.*s", (int)strcspn(e ? e : "", "\n"), e ? e : "");
	}
	nft_ctx_free(nft);
	return r ? -1 : 0;
}

static const char *const skeleton[] = {
    "add table inet %s\n",
    "add chain inet %s in { type filter hook input priority -300; policy accept; }\n",
    "add chain inet %s out { type filter hook output priority -300; policy accept; }\n",
    "add set inet %s c4 { type ipv4_addr . inet_service . ipv4_addr . inet_service; }\n",
    "add set inet %s c6 { type ipv6_addr . inet_service . ipv6_addr . inet_service; }\n",
    "add set inet %s l4 { type ipv4_addr . inet_service; }\n",
    "add set inet %s l6 { type ipv6_addr . inet_service; }\n",
    "add set inet %s lp { type inet_service; }\n",
    "add rule inet %s in meta mark " NETLOCK_PASS_MARK_STR " accept\n",
    "add rule inet %s out meta mark " NETLOCK_PASS_MARK_STR " accept\n",
    "add rule inet %s out ip saddr . tcp sport . ip daddr . tcp dport @c4 drop\n",
    "add rule inet %s in ip daddr . tcp dport . ip saddr . tcp sport @c4 drop\n",
    "add rule inet %s out ip6 saddr . tcp sport . ip6 daddr . tcp dport @c6 drop\n",
    "add rule inet %s in ip6 daddr . tcp dport . ip6 saddr . tcp sport @c6 drop\n",
    "add rule inet %s in tcp flags & (syn | ack) == syn ip daddr . tcp dport @l4 drop\n",
    "add rule inet %s in tcp flags & (syn | ack) == syn ip6 daddr . tcp dport @l6 drop\n",
    "add rule inet %s in tcp flags & (syn | ack) == syn tcp dport @lp drop\n",
};

/* An address as nft reads it; *v4 whether it is (or maps) an IPv4 one. */
static void addr_str(int family, const unsigned char *a, char *buf, bool *v4)
{
	struct in6_addr a6;

	memcpy(&a6, a, sizeof(a6));
	*v4 = family == AF_INET || IN6_IS_ADDR_V4MAPPED(&a6);
	if (family == AF_INET)
		inet_ntop(AF_INET, a, buf, INET6_ADDRSTRLEN);
	else if (*v4)
		inet_ntop(AF_INET, a + 12, buf, INET6_ADDRSTRLEN);
	else
		inet_ntop(AF_INET6, a, buf, INET6_ADDRSTRLEN);
}

static bool is_any(int family, const unsigned char *a)
{
	static const unsigned char zero[16];

	return !memcmp(a, zero, family == AF_INET ? 4 : 16);
}

static void add_element(FILE *out, const char *table, const struct netlock_sock *s)
{
	char src[INET6_ADDRSTRLEN], dst[INET6_ADDRSTRLEN];
	bool v4, dst_v4;

	addr_str(s->family, s->src, src, &v4);
	if (s->listener && is_any(s->family, s->src))
		fprintf(out, "add element inet %s lp { %u }\n", table, s->sport);
	else if (s->listener)
		fprintf(out, "add element inet %s l%c { %s . %u }\n", table, v4 ? '4' : '6', src,
			s->sport);
	else {
		addr_str(s->family, s->dst, dst, &dst_v4);
		fprintf(out, "add element inet %s c%c { %s . %u . %s . %u }\n", table,
			v4 ? '4' : '6', src, s->sport, dst, s->dport);
	}
}

int netlock_take(const char *table, const struct netlock_sock *s, size_t n)
{
	char *cmds = NULL, nft_err[256];
	size_t len = 0;
	FILE *out = open_memstream(&cmds, &len);
	int r;

	if (!out)
		return err_errno("network lock: open_memstream");
	for (size_t i = 0; i < sizeof(skeleton) / sizeof(skeleton[0]); i++)
		fprintf(out, skeleton[i], table);
	for (size_t i = 0; i < n; i++)
		add_element(out, table, &s[i]);
	if (fclose(out))
		return free(cmds), err_errno("network lock: out of memory");
	r = run_nft(cmds, nft_err, sizeof(nft_err));
	free(cmds);
	if (r)
		return err_set("cannot lock the network (nftables table inet %s): %s", table,
			       nft_err);
	pr_info("network locked: nftables table inet %s, %zu sockets", table, n);
	return 0;
}

int netlock_drop(const char *table)
{
	char cmd[128], nft_err[256];

	snprintf(cmd, sizeof(cmd), "delete table inet %s\n", table);
	if (!run_nft(cmd, nft_err, sizeof(nft_err))) {
		pr_info("network unlocked: nftables table inet %s removed", table);
		return 0;
	}
	if (strstr(nft_err, "No such file or directory"))
		return 1;
	return err_set("cannot remove the network lock (nftables table inet %s): %s", table,
		       nft_err);
}
