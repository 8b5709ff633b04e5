/* SPDX-License-Identifier: MIT */
/*
 * interop.h - what interop.cpp (libipcsock's end) and interop-peer.cpp
 * (libcamera's end) agree on: the commands, and the marks the peer leaves
 * in the files it gets. The command set is described in interop-peer.cpp.
 */
#ifndef IPCSOCK_COMPAT_LIBCAMERA_INTEROP_H
#define IPCSOCK_COMPAT_LIBCAMERA_INTEROP_H

#include <cstdint>
#include <cstring>
#include <vector>

/* The peer writes this at this offset of every file it receives ... */
#define INTEROP_PEER_MARK	"peer saw this"
#define INTEROP_MARK_OFFSET	64
/* ... and sends a memfd of its own holding this. */
#define INTEROP_PEER_TEXT	"peer"

/* A command: its four-letter name and two u32 arguments. */
static inline std::vector<uint8_t> interop_cmd(const char *name, uint32_t a,
					       uint32_t b)
{
	std::vector<uint8_t> d(12);

	memcpy(d.data(), name, 4);
	memcpy(d.data() + 4, &a, 4);
	memcpy(d.data() + 8, &b, 4);
	return d;
}

static inline bool interop_is(const std::vector<uint8_t> &d, const char *name)
{
	return d.size() >= 4 && !memcmp(d.data(), name, 4);
}

/* Argument @i (0 or 1) of a command, 0 if it has none. */
static inline uint32_t interop_arg(const std::vector<uint8_t> &d,
				   unsigned int i)
{
	uint32_t v = 0;

	if (d.size() >= 8 + 4 * i)
		memcpy(&v, d.data() + 4 + 4 * i, 4);
	return v;
}

#endif /* IPCSOCK_COMPAT_LIBCAMERA_INTEROP_H */
