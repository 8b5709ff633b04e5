/* SPDX-License-Identifier: MIT */
/*
 * The wire format: one message is one SOCK_SEQPACKET datagram made of this
 * header, then the payload bytes, with the message's fds attached as one
 * SCM_RIGHTS control message.
 *
 * The header exists because a zero-length datagram is indistinguishable
 * from end-of-file (recvmsg returns 0 for both, and multishot RECVMSG stops
 * on both), yet a message may carry fds and no bytes. It also lets the
 * receiver check that every fd the sender attached did arrive, instead of
 * handing out a short fd array. Both ends live on one host, so fields are
 * in native byte order.
 */
#ifndef IPCSOCK_WIRE_H
#define IPCSOCK_WIRE_H

#include <stdint.h>

#define IPCSOCK_WIRE_VERSION	1

struct ipcsock_wire_hdr {
	uint32_t len;		/* payload bytes after this header */
	uint16_t nr_fds;	/* fds in the SCM_RIGHTS control message */
	uint8_t version;	/* IPCSOCK_WIRE_VERSION */
	uint8_t flags;		/* none defined; must be 0 */
};

_Static_assert(sizeof(struct ipcsock_wire_hdr) == 8, "wire header is ABI");

#endif /* IPCSOCK_WIRE_H */
