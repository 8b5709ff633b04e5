/* SPDX-License-Identifier: MIT */
/*
 * The wire format and the payload rules as the tests see them, shared by
 * selftests/ and fuzz/. Written from the documentation (README.md's wire
 * format, include/ipcsock.h), not taken from lib/wire.h: a change to the
 * library's header that changes the format must fail the tests, not move
 * them along with it.
 *
 * One message is one SOCK_SEQPACKET datagram: this header, then the
 * payload bytes, with the message's fds as one SCM_RIGHTS control message.
 */
#ifndef IPCSOCK_WIRE_TEST_H
#define IPCSOCK_WIRE_TEST_H

#include <errno.h>
#include <stdint.h>

#include "ipcsock.h"

struct test_wire_hdr {
	uint32_t len;		/* payload bytes after the header */
	uint16_t nr_fds;	/* fds in the SCM_RIGHTS control message */
	uint8_t version;	/* TEST_WIRE_VERSION */
	uint8_t flags;		/* 0, or TEST_WIRE_F_RESET alone */
};

_Static_assert(sizeof(struct test_wire_hdr) == 8, "wire header is 8 bytes");

#define TEST_WIRE_VERSION	1
#define TEST_WIRE_HDR_LEN	sizeof(struct test_wire_hdr)
/*
 * The reset notice: a header alone (len 0, nr_fds 0), the last datagram
 * before the end, from a peer that closed with messages unreceived.
 */
#define TEST_WIRE_F_RESET	0x01

/*
 * A record (README.md's wire format, version 2): several messages in one
 * datagram. The header above with version TEST_WIRE_RECORD, len the
 * bytes after it, nr_fds all of the record's fds; a u32 message count and
 * a u32 zero; then per message this entry header and its payload, padded
 * with zeros to a multiple of 16 bytes. The fds come in message order.
 */
#define TEST_WIRE_RECORD	2
#define TEST_WIRE_REC_HDR_LEN	16

struct test_wire_entry {
	uint32_t len;
	uint16_t nr_fds;
	uint16_t zero;
};

#define TEST_WIRE_ENTRY_SIZE(len) \
	((sizeof(struct test_wire_entry) + (uint64_t)(len) + 15) & \
	 ~(uint64_t)15)

/*
 * What ipcsock_send() documents for one payload on a loop whose
 * max_msg_size is @max, before it looks at the channel or the fds:
 * -EINVAL for no payload, an empty one, NULL data or fds with a count, or
 * more than IPCSOCK_MAX_FDS fds; -EMSGSIZE when longer than @max; else 0.
 */
static inline int test_payload_err(const struct ipcsock_payload *p,
				   unsigned int max)
{
	if (!p || (!p->len && !p->nr_fds))
		return -EINVAL;
	if ((!p->data && p->len) || (!p->fds && p->nr_fds))
		return -EINVAL;
	if (p->nr_fds > IPCSOCK_MAX_FDS)
		return -EINVAL;
	if (p->len > max)
		return -EMSGSIZE;
	return 0;
}

#endif /* IPCSOCK_WIRE_TEST_H */
