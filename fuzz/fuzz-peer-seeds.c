// SPDX-License-Identifier: MIT
/*
 * fuzz-peer: the seed corpus. "fuzz-peer -seed=DIR" writes it to DIR and
 * exits (make fuzz-seeds).
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz-peer.h"

struct fz_seed {
	uint8_t b[256];
	size_t n;
};

static void put(struct fz_seed *s, unsigned int n, ...)
{
	va_list ap;

	va_start(ap, n);
	while (n--)
		s->b[s->n++] = va_arg(ap, unsigned int);
	va_end(ap);
}

#define PUT(s, ...)	put(s, sizeof((unsigned int[]){ __VA_ARGS__ }) / \
			       sizeof(unsigned int), __VA_ARGS__)
#define OP(op, arg)	((op) | (arg) << 4)

/* OP_SEND, correct header, 0-255 bytes, 1-4 fds from the given picks. */
static void seed_msg(struct fz_seed *s, unsigned int size, unsigned int nr,
		     unsigned int pick, unsigned int seed)
{
	unsigned int i;

	if (!nr) {
		PUT(s, OP(OP_SEND, 0), 1 << 2, size, seed);
		return;
	}
	PUT(s, OP(OP_SEND, 0), 1 << 2 | 1 << 4, size, nr - 1);
	for (i = 0; i < nr; i++)
		PUT(s, pick + i);
	PUT(s, seed);
}

static void seed_write(const char *dir, const char *name,
		       const struct fz_seed *s)
{
	char path[4096];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "wb");
	if (!f || fwrite(s->b, 1, s->n, f) != s->n || fclose(f)) {
		perror(path);
		exit(1);
	}
}

/*
 * The seed ends: write it for this backend. The io_uring loop that sends
 * everything on the ring gets only the seeds about sending (@ring true).
 */
static void seed_end(const char *dir, unsigned int e, const char *what,
		     struct fz_seed *s, bool ring)
{
	static const char * const backend[NR_BE] = {
		[BE_URING] = "uring",
		[BE_EPOLL] = "epoll",
		[BE_URING_RING] = "uring-ring",
	};
	char name[64];

	snprintf(name, sizeof(name), "%s-%s", backend[e], what);
	if (e != BE_URING_RING || ring)
		seed_write(dir, name, s);
	memset(s, 0, sizeof(*s));
	PUT(s, e);
}

void seeds_write(const char *dir)
{
	unsigned int e, i, j;
	struct fz_seed s;

	for (e = 0; e < NR_BE; e++) {
		memset(&s, 0, sizeof(s));
		PUT(&s, e);

		seed_msg(&s, 5, 1, POOL_MEMFD_A, 1);
		seed_msg(&s, 0, 0, 0, 2);
		seed_msg(&s, 200, 3, POOL_PIPE_R, 3);
		PUT(&s, OP(OP_DISPATCH, 1), OP(OP_PEER_CLOSE, 0));
		seed_end(dir, e, "valid-close", &s, true);

		/* A valid message, one with version 0, one not delivered. */
		seed_msg(&s, 4, 1, POOL_SOCK_A, 1);
		PUT(&s, OP(OP_SEND, 0), 2 | 1 << 2 | 1 << 4, 9, 0,
		    POOL_MEMFD_B, 7, 2 | 1 << 2);
		seed_msg(&s, 4, 0, 0, 3);
		seed_end(dir, e, "bad-version", &s, false);

		PUT(&s, OP(OP_SEND, 0), 2, 3, 5, 3 | 4 << 2);
		seed_end(dir, e, "bad-flags", &s, false);

		PUT(&s, OP(OP_SEND, 0), 2 | 1 << 2, 40, 5, 0 | 31 << 2);
		seed_end(dir, e, "bad-len", &s, false);

		/* Two fds, the header says three. */
		PUT(&s, OP(OP_SEND, 0), 2 | 1 << 4, 1, 1, POOL_PIPE_W,
		    POOL_EVENTFD, 8, 1 | 33 << 2);
		seed_end(dir, e, "fd-count", &s, false);

		/* Five bytes and an fd: no room for a header. */
		PUT(&s, OP(OP_SEND, 0), 3 | 1 << 4, 5, 0, POOL_LIB, 1,
		    1, 0, 0, 0, 0);
		seed_end(dir, e, "short", &s, false);

		seed_msg(&s, 10, 0, 0, 4);
		PUT(&s, OP(OP_SEND, 0), 3, 0, 0);
		PUT(&s, OP(OP_DISPATCH, 3));
		seed_end(dir, e, "zero-length", &s, false);

		/* A raw header that happens to be right. */
		PUT(&s, OP(OP_SEND, 0), 1 | 1 << 2, 3, 9,
		    3, 0, 0, 0, 0, 0, 1, 0);
		seed_end(dir, e, "raw-header", &s, false);

		/* 73,744 bytes, then up to the kernel's limit. */
		PUT(&s, OP(OP_SEND, 0), 3 << 2, 0x10, 0x20, 0x01, 6);
		PUT(&s, OP(OP_SNDBUF, 15));
		PUT(&s, OP(OP_SEND, 0), 3 << 2, 0xff, 0xff, 0x07, 6);
		seed_end(dir, e, "too-big", &s, false);

		/* 253 fds, then 254 that the kernel refuses. */
		PUT(&s, OP(OP_SEND, 0), 3 << 4, 1, 0x35, 2);
		PUT(&s, OP(OP_SEND, 0), 2 << 4, 1, 254, 0x35, 2);
		PUT(&s, OP(OP_PEER_CLOSE, 0));
		seed_end(dir, e, "max-fds", &s, false);

		s.b[0] |= CONF_SMALL | CONSUMER_SOME << 3 | CONF_PER_CALL3;
		PUT(&s, OP(OP_BURST, 15), 100, 0x9c, 3);
		PUT(&s, OP(OP_PEER_CLOSE, 1));
		seed_end(dir, e, "burst-small", &s, false);

		PUT(&s, OP(OP_SEND, 0), 1 << 4, 2, 2, POOL_LIB,
		    POOL_LIB_DUP, POOL_REMOTE, 0);
		PUT(&s, OP(OP_PEER_CLOSE, 0));
		seed_end(dir, e, "own-ends", &s, false);

		/* One, a batch of three, EINVAL, a bad fd, unbound. */
		PUT(&s, OP(OP_LIB_SEND, 0), 0, 7, 1, 30);
		PUT(&s, OP(OP_LIB_SEND, 0), 1 | 3 << 2, 9,
		    1 | 1 << 4, 10, 1, POOL_MEMFD_A, POOL_LIB,
		    1, 20,
		    2 << 4, 0x21);
		PUT(&s, OP(OP_LIB_SEND, 0), 0, 1, 1 | 4, 10);
		PUT(&s, OP(OP_LIB_SEND, 0), 0, 1, 1 | 1 << 4 | 1 << 6,
		    5, 2, POOL_PIPE_R, POOL_PIPE_W, POOL_SOCK_A, 1, 4);
		PUT(&s, OP(OP_LIB_SEND, 0), 3, 1, 1, 5);
		PUT(&s, OP(OP_DRAIN, 15));
		seed_end(dir, e, "lib-send", &s, true);

		/* Replies left unread when the peer closes: -ECONNRESET. */
		PUT(&s, OP(OP_FLAGS, 2));
		seed_msg(&s, 3, 0, 0, 5);
		seed_msg(&s, 6, 1, POOL_DEVNULL, 6);
		PUT(&s, OP(OP_DISPATCH, 2), OP(OP_PEER_CLOSE, 0));
		seed_end(dir, e, "echo-reset", &s, true);

		seed_msg(&s, 8, 2, POOL_MEMFD_A, 1);
		PUT(&s, OP(OP_NOFILE, 2), 1 << 2 | 2 << 4, 16, 12, 0x41, 9);
		seed_msg(&s, 8, 1, POOL_MEMFD_B, 2);
		seed_end(dir, e, "nofile", &s, false);

		s.b[0] |= CONSUMER_MANUAL << 3;
		seed_msg(&s, 1, 1, POOL_EVENTFD, 1);
		seed_msg(&s, 2, 0, 0, 2);
		PUT(&s, OP(OP_DISPATCH, 0), OP(OP_RECV, 0));
		seed_msg(&s, 3, 2, POOL_LOOP, 3);
		seed_end(dir, e, "manual", &s, false);

		s.b[0] |= CONSUMER_SOME << 3;
		PUT(&s, OP(OP_FLAGS, 1));
		seed_msg(&s, 1, 0, 0, 1);
		seed_msg(&s, 2, 0, 0, 2);
		PUT(&s, OP(OP_SEND, 0), 2, 3, 5, 2 | 1 << 2);
		seed_end(dir, e, "close-in-hangup", &s, false);

		PUT(&s, OP(OP_FLAGS, 8), 1);
		seed_msg(&s, 1, 1, POOL_MEMFD_A, 1);
		seed_msg(&s, 2, 1, POOL_MEMFD_B, 2);
		seed_msg(&s, 3, 1, POOL_PIPE_R, 3);
		PUT(&s, OP(OP_DISPATCH, 3));
		seed_end(dir, e, "free-in-callback", &s, true);

		s.b[0] |= CONSUMER_MANUAL << 3 | CONF_NO_DRAIN;
		seed_msg(&s, 9, 4, POOL_SOCK_A, 1);
		PUT(&s, OP(OP_DISPATCH, 1), OP(OP_LOCAL_CLOSE, 0));
		seed_end(dir, e, "local-close", &s, false);

		/* The library's end fills: sends wait for room, in order. */
		for (i = 0; i < 2; i++) {
			PUT(&s, OP(OP_LIB_SEND, 0), 1 | 7 << 2, i);
			for (j = 0; j < 7; j++)
				PUT(&s, 3 | 1 << 4, 0x20, 0x4e, 0, POOL_PIPE_W);
		}
		PUT(&s, OP(OP_DRAIN, 3), OP(OP_DISPATCH, 0));
		seed_msg(&s, 20, 1, POOL_LIB, 1);
		seed_end(dir, e, "backpressure", &s, true);

		/* A small SO_SNDBUF and a 4-message queue: -ENOBUFS. */
		s.b[0] |= CONF_TIGHT | CONF_SMALL;
		for (i = 0; i < 5; i++) {
			PUT(&s, OP(OP_LIB_SEND, 0), 1 | 4 << 2, i);
			for (j = 0; j < 4; j++)
				PUT(&s, 3, 0xe8, 0x03);
		}
		PUT(&s, OP(OP_DRAIN, 1), OP(OP_DISPATCH, 0));
		seed_end(dir, e, "enobufs", &s, true);
	}
}
