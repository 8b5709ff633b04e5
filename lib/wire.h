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
	uint8_t flags;		/* 0, or IPCSOCK_WIRE_F_RESET alone */
};

/*
 * The reset notice: the sender is closing with messages of the receiver's
 * that its application never received. It comes last, after every message
 * the sender still had queued, has len 0 and nr_fds 0, and nothing but the
 * end of the socket may follow it. The receiver reports hangup with
 * -ECONNRESET, which the kernel cannot tell it: the sender's library took
 * those messages out of the socket, so at close its receive queue was
 * empty. 0.1 peers know no flag and fail the channel with -EPROTO.
 */
#define IPCSOCK_WIRE_F_RESET	0x01

_Static_assert(sizeof(struct ipcsock_wire_hdr) == 8, "wire header is ABI");

/*
 * IPCSOCK_WIRE_LIBCAMERA: libcamera's IPCUnixSocket format, unchanged from
 * libcamera 0.0.3 on. A message is two SOCK_DGRAM datagrams: this header
 * alone, then the payload bytes (possibly none) with exactly @fds fds in
 * one SCM_RIGHTS control message. Native byte order; the padding is sent
 * as zero and ignored on receipt. Same size as the native header, so a
 * send slot lays either out in the same place.
 */
struct ipcsock_wire_lc_hdr {
	uint32_t data;		/* payload bytes */
	uint8_t fds;		/* fds attached to the payload */
	uint8_t pad[3];
};

_Static_assert(sizeof(struct ipcsock_wire_lc_hdr) ==
	       sizeof(struct ipcsock_wire_hdr), "libcamera header is ABI");

#endif /* IPCSOCK_WIRE_H */
