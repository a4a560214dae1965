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
 *
 * A tree in a network namespace that is not cryo's is locked whole: the
 * table is made in that namespace (cryo enters it with setns for the
 * transaction and comes back), its input and output chains dropping every
 * packet, whatever the number of connections; no other namespace is
 * touched. netlock.img records the namespace's inode, by which the restore,
 * a failed dump and `cryo unlock` find it again (cryo's own, the process
 * given as a hint, /run/netns, then every process's); a namespace no
 * longer there took its tables with it.
 */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/stat.h>
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

/* ---- the tree's network namespace ---- */

static int netns_ino(const char *path, uint64_t *ino)
{
	struct stat st;

	if (stat(path, &st))
		return -1;
	*ino = st.st_ino;
	return 0;
}

int netlock_netns_of(pid_t pid, uint64_t *netns)
{
	char path[64];
	uint64_t own, tree;

	snprintf(path, sizeof(path), "/proc/%d/ns/net", (int)pid);
	if (netns_ino("/proc/thread-self/ns/net", &own) || netns_ino(path, &tree))
		return err_errno("network lock: the network namespace of pid %d", (int)pid);
	*netns = tree == own ? 0 : tree;
	return 0;
}

/* An fd of the namespace whose inode is ino, if path is one. */
static int open_if(const char *path, uint64_t ino)
{
	uint64_t found;

	if (netns_ino(path, &found) || found != ino)
		return -1;
	return open(path, O_RDONLY | O_CLOEXEC);
}

/* path is dir/name, for each entry of dir (+ suffix), until one opens. */
static int open_in_dir(const char *dir, const char *suffix, bool pids, uint64_t ino)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	char path[320];
	int fd = -1;

	if (!d)
		return -1;
	while (fd < 0 && (de = readdir(d))) {
		if (de->d_name[0] == '.' || (pids && (de->d_name[0] < '0' || de->d_name[0] > '9')))
			continue;
		snprintf(path, sizeof(path), "%s/%s%s", dir, de->d_name, suffix);
		fd = open_if(path, ino);
	}
	closedir(d);
	return fd;
}

/* The namespace of inode ino: through hint, /run/netns, every process. */
static int open_netns(uint64_t ino, pid_t hint)
{
	char path[64];
	int fd = -1;

	if (hint > 0) {
		snprintf(path, sizeof(path), "/proc/%d/ns/net", (int)hint);
		fd = open_if(path, ino);
	}
	if (fd < 0)
		fd = open_in_dir("/run/netns", "", false, ino);
	if (fd < 0)
		fd = open_in_dir("/proc", "/ns/net", true, ino);
	return fd;
}

/* run_nft in the namespace ino (0 or cryo's own: here): 1 if it is gone. */
static int run_nft_in(uint64_t ino, pid_t hint, const char *cmds, char *nft_err, size_t len)
{
	uint64_t own;
	int self, target, r;

	if (!ino || (!netns_ino("/proc/thread-self/ns/net", &own) && own == ino))
		return run_nft(cmds, nft_err, len);
	target = open_netns(ino, hint);
	if (target < 0)
		return 1;
	self = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
	if (self < 0 || setns(target, CLONE_NEWNET)) {
		snprintf(nft_err, len, "cannot enter network namespace net:[%llu]: %s",
			 (unsigned long long)ino, strerror(errno));
		r = -1;
	} else {
		r = run_nft(cmds, nft_err, len);
		if (setns(self, CLONE_NEWNET)) {
			snprintf(nft_err, len, "cannot come back to cryo's network namespace: %s",
				 strerror(errno));
			r = -1;
		}
	}
	if (self >= 0)
		close(self);
	close(target);
	return r;
}

/* Every packet in and out of the namespace (no element: constant cost). */
static const char *const whole_netns[] = {
    "add table inet %s\n",
    "add chain inet %s in { type filter hook input priority -300; policy drop; }\n",
    "add chain inet %s out { type filter hook output priority -300; policy drop; }\n",
};

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

static const char *const set_names[] = {"c4", "c6", "l4", "l6", "lp"};

/* The set a socket goes in (an index of set_names), its element in buf. */
static int element(const struct netlock_sock *s, char *buf, size_t len)
{
	char src[INET6_ADDRSTRLEN], dst[INET6_ADDRSTRLEN];
	bool v4, dst_v4;

	addr_str(s->family, s->src, src, &v4);
	if (s->listener && is_any(s->family, s->src)) {
		snprintf(buf, len, "%u", s->sport);
		return 4;
	}
	if (s->listener) {
		snprintf(buf, len, "%s . %u", src, s->sport);
		return v4 ? 2 : 3;
	}
	addr_str(s->family, s->dst, dst, &dst_v4);
	snprintf(buf, len, "%s . %u . %s . %u", src, s->sport, dst, s->dport);
	return v4 ? 0 : 1;
}

/* One command per set, with all its elements: nft parses and sends them
 * as one list, not a command per socket. */
static void add_elements(FILE *out, const char *table, const struct netlock_sock *s, size_t n)
{
	char e[2 * INET6_ADDRSTRLEN + 32];

	for (int set = 0; set < (int)(sizeof(set_names) / sizeof(set_names[0])); set++) {
		bool first = true;
		for (size_t i = 0; i < n; i++) {
			if (element(&s[i], e, sizeof(e)) != set)
				continue;
			if (first)
				fprintf(out, "add element inet %s %s { ", table, set_names[set]);
			fprintf(out, "%s%s", first ? "" : ", ", e);
			first = false;
		}
		if (!first)
			fprintf(out, " }\n");
	}
}

int netlock_take(const char *table, uint64_t netns, pid_t hint, const struct netlock_sock *s,
		 size_t n)
{
	char *cmds = NULL, nft_err[256];
	size_t len = 0;
	FILE *out = open_memstream(&cmds, &len);
	int r;

	if (!out)
		return err_errno("network lock: open_memstream");
	if (netns)
		for (size_t i = 0; i < sizeof(whole_netns) / sizeof(whole_netns[0]); i++)
			fprintf(out, whole_netns[i], table);
	else
		for (size_t i = 0; i < sizeof(skeleton) / sizeof(skeleton[0]); i++)
			fprintf(out, skeleton[i], table);
	if (!netns)
		add_elements(out, table, s, n);
	if (fclose(out))
		return free(cmds), err_errno("network lock: out of memory");
	r = run_nft_in(netns, hint, cmds, nft_err, sizeof(nft_err));
	free(cmds);
	if (r == 1)
		return err_set("cannot lock the network: the tree's network namespace net:[%llu] "
			       "is not found",
			       (unsigned long long)netns);
	if (r)
		return err_set("cannot lock the network (nftables table inet %s): %s", table,
			       nft_err);
	if (netns)
		pr_info("network locked: nftables table inet %s in the tree's network namespace "
			"net:[%llu], all its traffic",
			table, (unsigned long long)netns);
	else
		pr_info("network locked: nftables table inet %s, %zu sockets", table, n);
	return 0;
}

int netlock_drop(const char *table, uint64_t netns, pid_t hint)
{
	char cmd[128], nft_err[256];
	int r;

	snprintf(cmd, sizeof(cmd), "delete table inet %s\n", table);
	r = run_nft_in(netns, hint, cmd, nft_err, sizeof(nft_err));
	if (!r) {
		pr_info("network unlocked: nftables table inet %s removed", table);
		return 0;
	}
	if (r == 1 || strstr(nft_err, "No such file or directory"))
		return 1;
	return err_set("cannot remove the network lock (nftables table inet %s): %s", table,
		       nft_err);
}
