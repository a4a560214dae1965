/*
 * netlock: the network lock of a checkpoint (netlock.c), an nftables table
 * that drops every packet of the tree's TCP connections, both ways, and the
 * new connections its listeners would take, while the tree is frozen; or,
 * when the tree has a network namespace of its own, a table in that
 * namespace that drops every packet in and out of it.
 */
#ifndef CRYO_NETLOCK_H
#define CRYO_NETLOCK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define NETLOCK_NAME_MAX 64
/* The mark (SO_MARK) of the packets the lock lets through: the segments a
 * restore sends to its own sockets as their peers' (sockets/tcpstate.c). */
#define NETLOCK_PASS_MARK     0x6372796f /* "cryo" */
#define NETLOCK_PASS_MARK_STR "0x6372796f"

/* One TCP socket the lock covers: a connection (both ends), or a listener
 * (its address, or any address when it is the wildcard). */
struct netlock_sock {
	int family;	       /* AF_INET or AF_INET6 */
	unsigned char src[16]; /* network order: 4 bytes for AF_INET */
	uint16_t sport;	       /* host order */
	unsigned char dst[16];
	uint16_t dport;
	bool listener;
};

/* A name recognisable as cryo's and unique to one checkpoint of root. */
void netlock_name(char *buf, size_t len, pid_t root);
/* The inode of pid's network namespace if it is not cryo's, else 0. */
int netlock_netns_of(pid_t pid, uint64_t *netns);
/* One transaction: the table, its chains and rules, and the sockets; with
 * netns (an inode netlock_netns_of gave, hint a process in it), the table
 * is made in that namespace and drops all of its traffic instead. */
int netlock_take(const char *table, uint64_t netns, pid_t hint, const struct netlock_sock *s,
		 size_t n);
/* Removes the table (in namespace netns, if not 0: found through hint,
 * else among /run/netns and the processes): 0, 1 if there was none (or the
 * namespace is gone, and its tables with it), -1 on error. */
int netlock_drop(const char *table, uint64_t netns, pid_t hint);
/* Whether the name is one netlock_name makes (a table of cryo's). */
bool netlock_is_ours(const char *table);

#endif
