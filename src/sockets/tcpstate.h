/*
 * sockets/tcpstate: the TCP states other than ESTABLISHED (tcpstate.c),
 * for sockets/tcp.c. A connect() in repair mode always gives ESTABLISHED;
 * the FINs each side sent are put back here: ours by a shutdown in repair
 * mode, the peer's (and the ACK of ours, and the RST of a reset
 * connection) by a segment from the peer's address, made by hand and sent
 * through a raw socket to the socket's own address.
 */
#ifndef CRYO_SOCKETS_TCPSTATE_H
#define CRYO_SOCKETS_TCPSTATE_H

#include <stdbool.h>
#include <stdint.h>

#include "sk-tcp.pb-c.h"

enum {
	ST_ESTABLISHED = 1,
	ST_SYN_SENT,
	ST_SYN_RECV,
	ST_FIN_WAIT1,
	ST_FIN_WAIT2,
	ST_TIME_WAIT,
	ST_CLOSE,
	ST_CLOSE_WAIT,
	ST_LAST_ACK,
	ST_LISTEN,
	ST_CLOSING,
};

#define TCPF(s) (1u << (s))
/* The states of a connection cryo takes in repair mode. */
#define TCPF_CONNECTED                                                                             \
	(TCPF(ST_ESTABLISHED) | TCPF(ST_SYN_SENT) | TCPF(ST_FIN_WAIT1) | TCPF(ST_FIN_WAIT2) |      \
	 TCPF(ST_CLOSE_WAIT) | TCPF(ST_LAST_ACK) | TCPF(ST_CLOSING))
/* We sent a FIN (it counts in the send sequence), not yet acknowledged. */
#define TCPF_OUR_FIN                                                                               \
	(TCPF(ST_FIN_WAIT1) | TCPF(ST_FIN_WAIT2) | TCPF(ST_CLOSING) | TCPF(ST_LAST_ACK))
#define TCPF_OUR_FIN_UNACKED (TCPF(ST_FIN_WAIT1) | TCPF(ST_CLOSING) | TCPF(ST_LAST_ACK))
/* The peer's FIN came (it counts in the receive sequence). */
#define TCPF_PEER_FIN (TCPF(ST_CLOSE_WAIT) | TCPF(ST_LAST_ACK) | TCPF(ST_CLOSING))

static inline bool tcp_in(uint32_t state, uint32_t mask)
{
	return state < 32 && (TCPF(state) & mask);
}

/* The kernel's name of a state. */
const char *tcp_state_name(uint32_t st);
/* The state TCP_INFO gives for fd, or -1. */
int tcp_state_of(int fd);

/* The peer of a connection getpeername does not give (SYN_SENT), from
 * sock_diag: into t->dst_addr/dst_port. */
int tcp_diag_peer(TcpSkEntry *t);

/* A connection of the dump that ended (state CLOSE after being connected:
 * reads give EOF, maybe an error first): whether it did, and its error
 * pending (poll tells, without taking it), refused unless TCP_INFO shows
 * it is an RST's. */
int tcp_read_ended(int fd, TcpSkEntry *t);

/* Release, on cryo's duplicate of a restored connection still in repair
 * mode with the queues of an ESTABLISHED one: what takes it to t->state
 * (our FIN, the peer's FIN, the ACK of ours, the reset). */
int tcp_finish_state(int fd, const TcpSkEntry *t);

#endif
