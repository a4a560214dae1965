/*
 * netlock: the network lock of a checkpoint (netlock.c), an nftables table
 * that drops every packet of the tree's TCP connections, both ways, and the
 * new connections its listeners would take, while the tree is frozen.
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
/* One transaction: the table, its chains and rules, and the sockets. */
int netlock_take(const char *table, const struct netlock_sock *s, size_t n);
/* Removes the table: 0, 1 if there was none, -1 on error. */
int netlock_drop(const char *table);
/* Whether the name is one netlock_name makes (a table of cryo's). */
bool netlock_is_ours(const char *table);

#endif
