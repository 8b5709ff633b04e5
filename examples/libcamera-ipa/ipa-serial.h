/* SPDX-License-Identifier: MIT */
/*
 * ipa-serial.h - libcamera's IPC message format and its IPA data
 * serialisation, as libcamera 0.0.3 puts them on the wire, for a C program
 * that talks to a libcamera IPA proxy worker.
 *
 * A message is libcamera's IPCMessage: a header { u32 cmd; u32 cookie; }
 * followed by the serialised arguments of a call (or of its reply, or of
 * an event), with the file descriptors the arguments hold travelling
 * beside the bytes, in order. The rules, learnt from libcamera's
 * generated serialisers and ipa_data_serializer.cpp (v0.0.3):
 *
 * - integers and enums: 4 bytes (uint64 8), in host byte order; enums and
 *   flags as u32
 * - a string: its bytes, no terminator; its length is the enclosing
 *   field's size
 * - a struct: its fields in order; a POD or enum field is bare, a string,
 *   array, map or nested struct field is preceded by its size (u32) and,
 *   when it holds fds, by the number of them (u32)
 * - an array: its element count (u32), then per element its size (u32),
 *   its number of fds (u32) and its bytes
 * - a file descriptor: u32 1 if valid (the fd itself goes with the
 *   message's fds), 0 if not
 * - a call's arguments: with more than one, first a table with the size
 *   of each (u32) and, for each that holds fds, its number of fds (u32),
 *   then the arguments; a single argument goes bare. A reply starts with
 *   the return value, if any (an int32), then the output arguments under
 *   the same rule.
 *
 * The writer keeps the first error (-EMSGSIZE when a message outgrows
 * struct ipa_msg) and ignores everything after it; the reader likewise
 * (-EBADMSG when the bytes or fds run short): check once, at the end.
 */
#ifndef IPA_SERIAL_H
#define IPA_SERIAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define IPA_MSG_MAX_BYTES	4096
#define IPA_MSG_MAX_FDS		16

/* libcamera's IPCMessage::Header. */
struct ipa_hdr {
	uint32_t cmd;
	uint32_t cookie;
};

/* A message being written: its bytes (header first) and its fds. */
struct ipa_msg {
	uint8_t data[IPA_MSG_MAX_BYTES];
	size_t len;
	int fds[IPA_MSG_MAX_FDS];
	unsigned int nr_fds;
	int err;
};

/*
 * Where a size (and maybe an fd count) will go, and where the item it
 * measures begins: reserved before the item, filled in after it.
 */
struct ipa_slot {
	size_t at;
	bool has_fds;
	size_t start;
	unsigned int fds_start;
};

void ipa_msg_init(struct ipa_msg *m, uint32_t cmd, uint32_t cookie);
void ipa_put_u32(struct ipa_msg *m, uint32_t v);
void ipa_put_bytes(struct ipa_msg *m, const void *p, size_t len);
void ipa_put_fd(struct ipa_msg *m, int fd);

/* Reserve a size (and an fd count if @has_fds) at the current end. */
void ipa_slot_reserve(struct ipa_msg *m, struct ipa_slot *s, bool has_fds);
/* The item @s measures starts here. */
void ipa_slot_open(struct ipa_msg *m, struct ipa_slot *s);
/* And ends here: fill in its size and fd count. */
void ipa_slot_close(struct ipa_msg *m, const struct ipa_slot *s);
/* Both at once, for an item that follows its size directly. */
void ipa_sized_begin(struct ipa_msg *m, struct ipa_slot *s, bool has_fds);

/* A received message being read. */
struct ipa_reader {
	const uint8_t *data;
	size_t len;
	size_t pos;
	const int *fds;
	unsigned int nr_fds;
	unsigned int fd_pos;
	int err;
};

void ipa_reader_init(struct ipa_reader *r, const void *data, size_t len,
		     const int *fds, unsigned int nr_fds);
void ipa_get_hdr(struct ipa_reader *r, struct ipa_hdr *hdr);
uint32_t ipa_get_u32(struct ipa_reader *r);
int32_t ipa_get_s32(struct ipa_reader *r);
/*
 * The next @len bytes (and @nr_fds fds) as a reader of their own, e.g.
 * one argument whose size the table gave; @r moves past them.
 */
void ipa_get_sub(struct ipa_reader *r, size_t len, unsigned int nr_fds,
		 struct ipa_reader *sub);
/* 0 if everything was read and nothing was left over, else the error. */
int ipa_reader_done(const struct ipa_reader *r);

#endif /* IPA_SERIAL_H */
