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
#define IPCSOCK_WIRE_RECORD	2	/* version of a record, below */

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
 * A record (version 2, 0.2 on): several whole messages in one datagram,
 * since the kernel's cost is per datagram, not per byte. The datagram is
 * the header above with version IPCSOCK_WIRE_RECORD, flags 0, len the
 * bytes after it and nr_fds every fd of the record; then this record
 * header; then each message as an entry header and its payload, padded
 * with zeros to a multiple of 16 bytes (IPCSOCK_WIRE_ENTRY_SIZE). The
 * record's fds come in one SCM_RIGHTS control message, in message order:
 * each message owns the next nr_fds of them.
 *
 * The receiver puts the datagram 8 bytes past a 16-byte boundary (rx.c),
 * as a version 1 datagram: the 16 header bytes and the 8 of each entry
 * header then leave every payload 16-byte aligned, as a version 1
 * payload is. A record is never larger than a version 1 datagram of
 * max_msg_size bytes, so any receiver buffer that takes one takes the
 * other. A 0.1 receiver knows only version 1: it fails the channel with
 * -EPROTO on the first record.
 */
struct ipcsock_wire_rec {
	uint32_t nr_msgs;	/* entries that follow, at least 1 */
	uint32_t zero;		/* 0 */
};

struct ipcsock_wire_entry {
	uint32_t len;		/* payload bytes after this header */
	uint16_t nr_fds;	/* this message's share of the record's fds */
	uint16_t zero;		/* 0 */
};

#define IPCSOCK_WIRE_REC_HDR	(sizeof(struct ipcsock_wire_hdr) + \
				 sizeof(struct ipcsock_wire_rec))

/*
 * An entry's bytes in a record: header, payload, padding. No overflow
 * for any uint32_t @len: the sum is done in 64 bits.
 */
#define IPCSOCK_WIRE_ENTRY_SIZE(len) \
	((sizeof(struct ipcsock_wire_entry) + (uint64_t)(len) + 15) & \
	 ~(uint64_t)15)

_Static_assert(IPCSOCK_WIRE_REC_HDR == 16, "record header is ABI");
_Static_assert(sizeof(struct ipcsock_wire_entry) == 8, "entry is ABI");

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
