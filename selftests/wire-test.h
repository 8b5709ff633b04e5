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
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

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
 * The largest record a sender makes: up to the 16th KiB of the receiver's
 * buffer, where the datagram starts 8 bytes in (README.md, Memory).
 */
#define TEST_WIRE_REC_MAX	(16384 - 8)

/* One message of a datagram, as test_wire_next() splits it. */
struct test_wire_msg {
	const unsigned char *data;
	uint32_t len;
	unsigned int nr_fds;
	unsigned int fd_off;	/* its first fd among the datagram's */
};

/* A datagram test_wire_check() found good, and how far it was split. */
struct test_wire_split {
	const unsigned char *buf;
	size_t len;
	size_t off;		/* of the next entry */
	unsigned int fd_off;	/* the next entry's first fd */
	unsigned int nr_msgs;	/* in the datagram */
	unsigned int left;	/* not split yet */
	bool record;
};

/*
 * Check a datagram, @len bytes at @buf that came with @nr_fds fds, as a
 * receiver with a max_msg_size of @max_len must (README.md's wire format),
 * and set @s up to split it. A version 1 message, not the reset notice
 * (the caller looks for that first), or a record: header lengths and fd
 * counts that match the datagram, no flags, no message over @max_len, and
 * for a record zero reserved fields, no empty message, entries that add
 * up exactly to the record with their fds and its message count, and no
 * record over a version 1 datagram's size. With @sender, also what a
 * library must get right when it sends: no empty message, zero padding,
 * at least two messages a record (one alone goes as version 1), none over
 * TEST_WIRE_REC_MAX. NULL if good, else the first rule it breaks.
 */
static inline const char *test_wire_check(struct test_wire_split *s,
					   const void *buf, size_t len,
					   unsigned int nr_fds, size_t max_len,
					   bool sender)
{
	const unsigned char *at = buf;
	struct test_wire_hdr h;
	struct test_wire_entry e;
	uint32_t rec[2];
	uint64_t fds = 0;
	size_t off, i;
	unsigned int n = 0;

	memset(s, 0, sizeof(*s));
	s->buf = at;
	s->len = len;
	if (len < TEST_WIRE_HDR_LEN)
		return "shorter than a header";
	memcpy(&h, at, sizeof(h));
	if (h.len != len - TEST_WIRE_HDR_LEN)
		return "header len is not the datagram's";
	if (h.nr_fds != nr_fds || nr_fds > IPCSOCK_MAX_FDS)
		return "header nr_fds is not the datagram's";
	if (h.flags)
		return "flags set";
	if (h.version == TEST_WIRE_VERSION) {
		if (sender && !h.len && !nr_fds)
			return "an empty message";
		if (h.len > max_len)
			return "a message over max_msg_size";
		s->off = TEST_WIRE_HDR_LEN - sizeof(e);
		s->nr_msgs = s->left = 1;
		return NULL;
	}
	if (h.version != TEST_WIRE_RECORD)
		return "unknown version";
	if (len < TEST_WIRE_REC_HDR_LEN)
		return "a record shorter than its header";
	if ((sender && len > TEST_WIRE_REC_MAX) ||
	    len - TEST_WIRE_HDR_LEN > max_len)
		return "a record too large";
	memcpy(rec, at + TEST_WIRE_HDR_LEN, sizeof(rec));
	if (rec[1])
		return "record header's zero field set";
	for (off = TEST_WIRE_REC_HDR_LEN; off < len;
	     off += TEST_WIRE_ENTRY_SIZE(e.len)) {
		if (len - off < sizeof(e))
			return "an entry header cut short";
		memcpy(&e, at + off, sizeof(e));
		if (e.zero)
			return "entry's zero field set";
		if (!e.len && !e.nr_fds)
			return "an empty message";
		if (e.len > max_len)
			return "a message over max_msg_size";
		if (TEST_WIRE_ENTRY_SIZE(e.len) > len - off)
			return "an entry past the record's end";
		for (i = sizeof(e) + e.len;
		     sender && i < TEST_WIRE_ENTRY_SIZE(e.len); i++)
			if (at[off + i])
				return "padding not zero";
		fds += e.nr_fds;
		n++;
	}
	if (n != rec[0])
		return "nr_msgs is not the entries'";
	if (fds != nr_fds)
		return "entries' nr_fds do not add up to the record's";
	if (!n)
		return "a record without messages";
	if (sender && n < 2)
		return "a record of one message";
	s->off = TEST_WIRE_REC_HDR_LEN;
	s->nr_msgs = s->left = n;
	s->record = true;
	return NULL;
}

/* The next message of a checked datagram: false after the last. */
static inline bool test_wire_next(struct test_wire_split *s,
				  struct test_wire_msg *m)
{
	struct test_wire_entry e;

	if (!s->left)
		return false;
	/* A version 1 header starts as an entry: len, then nr_fds. */
	memcpy(&e, s->buf + s->off, sizeof(e));
	m->data = s->buf + s->off + sizeof(e);
	m->len = e.len;
	m->nr_fds = e.nr_fds;
	m->fd_off = s->fd_off;
	s->fd_off += e.nr_fds;
	s->off += TEST_WIRE_ENTRY_SIZE(e.len);
	s->left--;
	return true;
}

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
