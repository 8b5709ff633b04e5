// SPDX-License-Identifier: MIT
/*
 * fuzz-peer: the seed corpus. "fuzz-peer -write-seeds=DIR" writes it to
 * DIR and exits (make fuzz-seeds): for each of byte 0's backends the same
 * set, then a few for the loops and channels behind byte 1
 * (seeds_write_ext()), then those for more loops and channels, the
 * application's open chain, small SQs, SQPOLL rings and a forked child
 * (seeds_write_new()).
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
#define ARRAY_LEN(a)	(sizeof(a) / sizeof((a)[0]))

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

/* Byte 0 with backend code BE_EXT and the flags @conf, then byte 1. */
static void seed_ext(struct fz_seed *s, unsigned int conf, unsigned int ext)
{
	memset(s, 0, sizeof(*s));
	PUT(s, BE_EXT | conf, ext);
}

/* A few messages, fds among them, and the peer closes. */
static void seed_valid_close(struct fz_seed *s)
{
	seed_msg(s, 5, 1, POOL_MEMFD_A, 1);
	seed_msg(s, 0, 0, 0, 2);
	seed_msg(s, 200, 3, POOL_PIPE_R, 3);
	PUT(s, OP(OP_DISPATCH, 1), OP(OP_PEER_CLOSE, 0));
}

/* The library sends: one, a batch of three, then the peer reads. */
static void seed_lib_send(struct fz_seed *s)
{
	PUT(s, OP(OP_LIB_SEND, 0), 0, 7, 1, 30);
	PUT(s, OP(OP_LIB_SEND, 0), 1 | 3 << 2, 9,
	    1 | 1 << 4, 10, 1, POOL_MEMFD_A, POOL_LIB,
	    1, 20,
	    1, 5);
	PUT(s, OP(OP_DRAIN, 15));
}

/* The library's end fills: sends wait for room, in order. */
static void seed_backpressure(struct fz_seed *s)
{
	unsigned int i, j;

	for (i = 0; i < 2; i++) {
		PUT(s, OP(OP_LIB_SEND, 0), 1 | 7 << 2, i);
		for (j = 0; j < 7; j++)
			PUT(s, 3 | 1 << 4, 0x20, 0x4e, 0, POOL_PIPE_W);
	}
	PUT(s, OP(OP_DRAIN, 3), OP(OP_DISPATCH, 0));
	seed_msg(s, 20, 1, POOL_LIB, 1);
}

/*
 * The loops and channels behind byte 1: shared rings (with the
 * application's own requests), busy polling, ipcsock_create(), a handle
 * kept from one input to the next, and rebinding mid-input and from
 * callbacks.
 */
static void seeds_write_ext(const char *dir)
{
	struct fz_seed s;
	unsigned int i;

	seed_ext(&s, 0, KIND_SHARED);
	seed_valid_close(&s);
	seed_write(dir, "shared-valid-close", &s);

	seed_ext(&s, 0, KIND_SHARED_DEFER);
	seed_lib_send(&s);
	seed_msg(&s, 9, 2, POOL_SOCK_A, 4);
	seed_write(dir, "shared-defer-lib-send", &s);

	seed_ext(&s, 0, KIND_SHARED_DEFER_RING);
	seed_backpressure(&s);
	seed_write(dir, "shared-defer-ring-backpressure", &s);

	/* A 4-entry SQ, a small SO_SNDBUF and a 4-message queue. */
	seed_ext(&s, CONF_SMALL | CONF_TIGHT, KIND_SHARED_RING);
	for (i = 0; i < 3; i++) {
		PUT(&s, OP(OP_LIB_SEND, 0), 1 | 4 << 2, i);
		PUT(&s, 3, 0xe8, 0x03, 3, 0xe8, 0x03, 3, 0xe8, 0x03,
		    3, 0xe8, 0x03);
	}
	PUT(&s, OP(OP_BURST, 7), 100, 0x9c, 3);
	PUT(&s, OP(OP_DRAIN, 1), OP(OP_DISPATCH, 0));
	seed_write(dir, "shared-ring-small-enobufs", &s);

	/* Callbacks leave messages: the library must wake the ring. */
	seed_ext(&s, CONSUMER_LAZY << 3 | CONF_PER_CALL3, KIND_SHARED);
	PUT(&s, OP(OP_BURST, 7), 40, 0x24, 7);
	PUT(&s, OP(OP_DISPATCH, 2));
	seed_write(dir, "shared-lazy-wake", &s);

	/* The application's NOP, TIMEOUT, POLL_ADD and linked NOPs. */
	seed_ext(&s, CONSUMER_SOME << 3, KIND_SHARED_DEFER);
	PUT(&s, OP(OP_APP, APP_NOP), 1);
	seed_msg(&s, 3, 1, POOL_EVENTFD, 1);
	PUT(&s, OP(OP_APP, APP_TIMEOUT | 4), 2);
	PUT(&s, OP(OP_APP, APP_POLL), 3);
	seed_msg(&s, 30, 0, 0, 2);
	PUT(&s, OP(OP_APP, APP_LINKED | 8), 4 | 8);
	PUT(&s, OP(OP_DISPATCH, 3), OP(OP_PEER_CLOSE, 1));
	seed_write(dir, "shared-defer-app-requests", &s);

	seed_ext(&s, CONF_SMALL | CONSUMER_SOME << 3, KIND_BUSY_URING);
	PUT(&s, OP(OP_BURST, 15), 100, 0x9c, 3);
	PUT(&s, OP(OP_DISPATCH, 3), OP(OP_PEER_CLOSE, 1));
	seed_write(dir, "busy-uring-burst-small", &s);

	seed_ext(&s, 0, KIND_BUSY_EPOLL);
	seed_valid_close(&s);
	seed_write(dir, "busy-epoll-valid-close", &s);

	/* Replies left unread when the peer closes: -ECONNRESET. */
	seed_ext(&s, 0, KIND_BUSY_URING_RING);
	PUT(&s, OP(OP_FLAGS, 2));
	seed_msg(&s, 3, 0, 0, 5);
	seed_msg(&s, 6, 1, POOL_DEVNULL, 6);
	PUT(&s, OP(OP_DISPATCH, 2), OP(OP_PEER_CLOSE, 0));
	seed_write(dir, "busy-uring-ring-echo-reset", &s);

	/* ipcsock_create(): both ends of the channel travel in it. */
	seed_ext(&s, 0, KIND_URING | EXT_CREATE);
	PUT(&s, OP(OP_SEND, 0), 1 << 4, 2, 2, POOL_LIB,
	    POOL_LIB_DUP, POOL_REMOTE, 0);
	seed_valid_close(&s);
	seed_write(dir, "create-uring-own-ends", &s);

	seed_ext(&s, 0, KIND_SHARED_DEFER | EXT_CREATE);
	seed_lib_send(&s);
	seed_valid_close(&s);
	seed_write(dir, "create-shared-defer-lib-send", &s);

	/* The loop's kept handle: bound, closed, bound again by each run. */
	seed_ext(&s, CONSUMER_MANUAL << 3,
		 KIND_EPOLL | EXT_KEEP | EXT_CB_FIRST);
	seed_msg(&s, 9, 1, POOL_PIPE_W, 1);
	PUT(&s, OP(OP_RECV, 0), OP(OP_LOCAL_CLOSE, 0));
	PUT(&s, OP(OP_REBIND, 0), PROBE_BADF);
	seed_valid_close(&s);
	seed_write(dir, "keep-epoll-close-rebind", &s);

	seed_ext(&s, 0, KIND_SHARED | EXT_KEEP | EXT_CREATE);
	seed_lib_send(&s);
	seed_msg(&s, 9, 1, POOL_LIB, 1);
	seed_write(dir, "keep-shared-create", &s);

	/* Settle, rebind after a bind that fails; create with one after. */
	seed_ext(&s, 0, KIND_URING_RING);
	seed_msg(&s, 4, 1, POOL_MEMFD_B, 1);
	seed_lib_send(&s);
	PUT(&s, OP(OP_REBIND, 2), PROBE_NOTSOCK);
	seed_msg(&s, 5, 2, POOL_LIB, 2);
	PUT(&s, OP(OP_REBIND, 1 | 4), PROBE_BUSY);
	seed_valid_close(&s);
	seed_write(dir, "rebind-uring-ring", &s);

	/* From ready_read after two messages, on a shared ring. */
	seed_ext(&s, 0, KIND_SHARED_DEFER);
	PUT(&s, OP(OP_REBIND, 8 | 1), PROBE_UNCONNECTED | 1 << 3);
	for (i = 0; i < 4; i++)
		seed_msg(&s, 10 + i, i & 1, POOL_PIPE_R, i);
	PUT(&s, OP(OP_DISPATCH, 3));
	seed_valid_close(&s);
	seed_write(dir, "rebind-shared-defer-in-ready-read", &s);

	/* From the hangup callback: the peer closed, the next one talks. */
	seed_ext(&s, 0, KIND_EPOLL);
	PUT(&s, OP(OP_REBIND, 8), PROBE_STREAM | 0x80);
	seed_msg(&s, 7, 1, POOL_SOCK_B, 1);
	PUT(&s, OP(OP_PEER_CLOSE, 0), OP(OP_DISPATCH, 1));
	seed_valid_close(&s);
	seed_write(dir, "rebind-epoll-in-hangup", &s);
}

/*
 * OP_LOOPS: more loops on the input's ring (the first takes the input's
 * loop's number again if the counter is naive), channels on them and on
 * the input's loop, messages both ways, then all closed at once.
 */
static void seed_loops(struct fz_seed *s)
{
	seed_msg(s, 5, 1, POOL_MEMFD_A, 1);
	PUT(s, OP(OP_LOOPS, 8 | 0), 1);
	PUT(s, OP(OP_LOOPS, 1), 0, OP(OP_LOOPS, 1), 2);
	PUT(s, OP(OP_LOOPS, 2), 3 | 2 << 2);
	seed_msg(s, 40, 0, 0, 2);
	PUT(s, OP(OP_DISPATCH, 2), OP(OP_LOOPS, 2), 1 | 1 << 2);
	PUT(s, OP(OP_LOOPS, 4 | 0), 0xf0 | 4);
	PUT(s, OP(OP_LOOPS, 2), 2 | 3 << 2);
	seed_msg(s, 7, 0, 0, 3);
	PUT(s, OP(OP_DISPATCH, 1), OP(OP_LOOPS, 3), 0);
	PUT(s, OP(OP_PEER_CLOSE, 0));
}

/*
 * OP_APP leaves a chain open (c bit 0, head failing with c bit 1) and the
 * input calls into the library before the next OP_APP ends it.
 */
static void seed_chain(struct fz_seed *s, unsigned int c,
		       const unsigned int *ops, unsigned int n)
{
	unsigned int i;

	seed_msg(s, 4, 0, 0, 1);
	PUT(s, OP(OP_DISPATCH, 1));
	PUT(s, OP(OP_APP, APP_NOP), 0x10 | 1, c);
	for (i = 0; i < n; i++)
		PUT(s, ops[i]);
	PUT(s, OP(OP_APP, APP_NOP), 0x10 | 2, c & 0x10);
}

/*
 * Fill an 8-entry SQ: three rounds of the application's NOPs and a
 * library send of four messages, then drain and dispatch.
 */
static void seed_sq_full(struct fz_seed *s)
{
	unsigned int i;

	for (i = 0; i < 3; i++) {
		PUT(s, OP(OP_APP, APP_NOP | 4), 0x10, 4);
		PUT(s, OP(OP_LIB_SEND, 0), 1 | 4 << 2, i);
		PUT(s, 3, 0xe8, 0x03, 3, 0xe8, 0x03, 3, 0xe8, 0x03,
		    3, 0xe8, 0x03);
	}
	PUT(s, OP(OP_DRAIN, 3), OP(OP_DISPATCH, 0));
}

static void seeds_write_new(const char *dir)
{
	static const unsigned int close_ops[] = { OP(OP_LOCAL_CLOSE, 0),
						  OP(OP_DISPATCH, 3) };
	static const unsigned int free_ops[] = { OP(OP_LOCAL_CLOSE, 1) };
	static const unsigned int send_ops[] = {
		OP(OP_LIB_SEND, 0), 0, 7, 1, 30,
		OP(OP_LIB_SEND, 0), 1 | 3 << 2, 9, 1, 10, 1, 20, 1, 5,
		OP(OP_DISPATCH, 1), OP(OP_DRAIN, 15),
	};
	static const unsigned int recv_ops[] = {
		OP(OP_SEND, 0), 1 << 2, 33, 4, OP(OP_DISPATCH, 0),
		OP(OP_RECV, 3), OP(OP_DISPATCH, 2),
	};
	static const unsigned int rebind_ops[] = {
		OP(OP_SEND, 0), 1 << 2, 9, 5, OP(OP_REBIND, 8), 0,
		OP(OP_DISPATCH, 3),
	};
	static const struct {
		unsigned int conf, ext;
		const char *name;
	} loops[] = {
		/* Around the wrap of the loop numbers, on each shared ring. */
		{ 0, KIND_SHARED, "loops-shared" },
		{ 0, KIND_SHARED_DEFER, "loops-shared-defer" },
		{ CONF_SMALL, KIND_SHARED_RING, "loops-shared-ring-small" },
		{ 0, KIND_SHARED_DEFER_RING | EXT_CREATE,
		  "loops-shared-defer-ring-create" },
		/* Loops made and freed, more channels on one own loop. */
		{ 0, KIND_EPOLL, "loops-epoll" },
		{ CONF_SMALL, KIND_URING, "loops-uring-small" },
	};
	struct fz_seed s;
	unsigned int i;

	for (i = 0; i < ARRAY_LEN(loops); i++) {
		seed_ext(&s, loops[i].conf, loops[i].ext);
		seed_loops(&s);
		seed_write(dir, loops[i].name, &s);
	}

	/* A chain left open while the library closes, frees, sends... */
	seed_ext(&s, 0, KIND_SHARED);
	seed_chain(&s, 1 | 2, close_ops, ARRAY_LEN(close_ops));
	PUT(&s, OP(OP_PEER_CLOSE, 0));
	seed_write(dir, "chain-shared-bad-close", &s);
	seed_ext(&s, 0, KIND_SHARED_DEFER);
	seed_chain(&s, 1 | 2, free_ops, ARRAY_LEN(free_ops));
	seed_write(dir, "chain-shared-defer-bad-free", &s);
	seed_ext(&s, 0, KIND_SHARED_RING);
	seed_chain(&s, 1 | 2, send_ops, ARRAY_LEN(send_ops));
	seed_write(dir, "chain-shared-ring-bad-send", &s);
	seed_ext(&s, 0, KIND_SHARED_DEFER_RING);
	seed_chain(&s, 1, send_ops, ARRAY_LEN(send_ops));
	seed_write(dir, "chain-shared-defer-ring-nop-send", &s);
	seed_ext(&s, CONSUMER_MANUAL << 3, KIND_SHARED);
	seed_chain(&s, 1 | 2 | 0x10, recv_ops, ARRAY_LEN(recv_ops));
	seed_write(dir, "chain-shared-bad-recv", &s);
	seed_ext(&s, CONSUMER_SOME << 3, KIND_SHARED_DEFER);
	seed_chain(&s, 1 | 0x10, rebind_ops, ARRAY_LEN(rebind_ops));
	seed_valid_close(&s);
	seed_write(dir, "chain-shared-defer-nop-rebind", &s);

	/*
	 * Small SQs (4 and 8 entries): the SQ filled by the application,
	 * many of its requests out, several channels, all closed at once.
	 */
	for (i = 0; i < 2; i++) {
		memset(&s, 0, sizeof(s));
		PUT(&s, BE_EXT | CONF_SMALL,
		    (i ? KIND_SHARED_DEFER : KIND_SHARED) | (i ? EXT_SQ8 : 0));
		PUT(&s, OP(OP_APP, APP_POLL), 0, OP(OP_APP, APP_POLL), 1);
		PUT(&s, OP(OP_APP, APP_POLL), 2, OP(OP_APP, APP_TIMEOUT), 3);
		PUT(&s, OP(OP_LOOPS, 1), 0, OP(OP_LOOPS, 1), 8);
		PUT(&s, OP(OP_LOOPS, 1), 0, OP(OP_LOOPS, 0), 0);
		PUT(&s, OP(OP_APP, APP_NOP | 4), 0x10, 4 | 8);
		PUT(&s, OP(OP_LOOPS, 2), 3 | 3 << 2);
		seed_msg(&s, 30, 1, POOL_PIPE_R, 1);
		PUT(&s, OP(OP_APP, APP_LINKED | 4), 0x10, 4);
		PUT(&s, OP(OP_LOOPS, 1), 1);
		PUT(&s, OP(OP_DISPATCH, 1), OP(OP_LOOPS, 2), 2 | 1 << 2);
		PUT(&s, OP(OP_APP, APP_NOP), 0x10 | 8, 4);
		PUT(&s, OP(OP_LOOPS, 3), 1, OP(OP_LOCAL_CLOSE, 0));
		PUT(&s, OP(OP_APP, APP_NOP), 0);
		seed_write(dir, i ? "small8-shared-defer-channels" :
				    "small-shared-channels", &s);
	}
	seed_ext(&s, CONF_TIGHT | CONF_SMALL, KIND_SHARED_RING | EXT_SQ8);
	seed_sq_full(&s);
	seed_write(dir, "small8-shared-ring-sq-full", &s);

	/*
	 * SQPOLL: the kernel thread takes the SQEs in its own time, and a
	 * small SQ is full when the library wants one.
	 */
	seed_ext(&s, 0, KIND_SHARED_SQPOLL);
	seed_valid_close(&s);
	seed_lib_send(&s);
	seed_write(dir, "sqpoll-valid-close", &s);
	seed_ext(&s, CONF_SMALL | CONSUMER_SOME << 3, KIND_SHARED_SQPOLL);
	PUT(&s, OP(OP_LOOPS, 1), 0, OP(OP_LOOPS, 1), 0, OP(OP_LOOPS, 0), 1);
	PUT(&s, OP(OP_APP, APP_POLL), 0, OP(OP_APP, APP_NOP | 4), 0x10, 4);
	PUT(&s, OP(OP_LOOPS, 2), 3 | 3 << 2);
	PUT(&s, OP(OP_BURST, 7), 100, 0x9c, 3);
	PUT(&s, OP(OP_APP, APP_NOP | 4), 0x10, 4);
	PUT(&s, OP(OP_LOOPS, 3), 0, OP(OP_LOCAL_CLOSE, 0));
	seed_write(dir, "sqpoll-small-channels", &s);
	seed_ext(&s, CONF_SMALL | CONF_TIGHT, KIND_SHARED_SQPOLL | EXT_SQ8);
	seed_sq_full(&s);
	seed_valid_close(&s);
	seed_write(dir, "sqpoll-small8-sq-full", &s);
	seed_ext(&s, 0, KIND_SHARED_SQPOLL);
	seed_chain(&s, 1 | 2, close_ops, ARRAY_LEN(close_ops));
	PUT(&s, OP(OP_PEER_CLOSE, 0));
	seed_write(dir, "chain-sqpoll-bad-close", &s);

	/* A forked child on its default loop talks to the input's loop. */
	seed_ext(&s, 0, KIND_DEFAULT);
	seed_msg(&s, 5, 1, POOL_MEMFD_A, 1);
	PUT(&s, OP(OP_FORK, 0), 0xa5);
	seed_lib_send(&s);
	seed_valid_close(&s);
	seed_write(dir, "fork-default", &s);
	seed_ext(&s, 0, KIND_SHARED_DEFER);
	PUT(&s, OP(OP_FORK, 0), 0xa5);
	seed_valid_close(&s);
	seed_write(dir, "fork-shared-defer", &s);
	seed_ext(&s, 0, KIND_EPOLL);
	seed_lib_send(&s);
	PUT(&s, OP(OP_FORK, 0), 0xa5);
	seed_valid_close(&s);
	seed_write(dir, "fork-epoll", &s);
	/* The child also calls into the loop and socket it inherited. */
	for (i = 0; i < 3; i++) {
		static const unsigned int kinds[] = { KIND_EPOLL, KIND_URING,
						      KIND_SHARED };
		static const char * const names[] = {
			"fork-touch-epoll", "fork-touch-uring",
			"fork-touch-shared",
		};

		seed_ext(&s, 0, kinds[i]);
		seed_msg(&s, 5, 1, POOL_MEMFD_A, 1);
		seed_lib_send(&s);
		seed_msg(&s, 9, 0, 0, 2);
		PUT(&s, OP(OP_FORK, 1), 0xa5);
		seed_msg(&s, 12, 1, POOL_PIPE_R, 3);
		PUT(&s, OP(OP_LIB_SEND, 0), 0, 7, 1, 30, OP(OP_DRAIN, 3));
		seed_valid_close(&s);
		seed_write(dir, names[i], &s);
	}
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

		/*
		 * Records: 6 messages with 11 fds, 256 of 0-15 bytes, 65
		 * of 0 bytes with an fd each, 2176 of 0-15 bytes.
		 */
		PUT(&s, OP(OP_RECORD, 0), 0 | 2 << 2 | 1 << 4, 5, 0x1b, 7,
		    0x35, 0);
		PUT(&s, OP(OP_DISPATCH, 1));
		PUT(&s, OP(OP_RECORD, 1), 2 | 1 << 2, 0, 0, 9, 0);
		PUT(&s, OP(OP_RECORD, 2), 1 | 2 << 4, 63, 0, 11, 0x21, 0);
		PUT(&s, OP(OP_RECORD, 3), 2 | 1 << 2, 0x78, 0, 13, 0);
		PUT(&s, OP(OP_DISPATCH, 15), OP(OP_PEER_CLOSE, 0));
		seed_end(dir, e, "records", &s, false);

		/*
		 * Each way a record can be broken, between two valid
		 * messages: the second must not be delivered. The
		 * record: 4 messages of 0-255 bytes with 3, 2, 1, 0 fds.
		 */
		for (i = 8; i < 16; i++) {
			for (j = 0; j < 2; j++) {
				char what[32];

				seed_msg(&s, 4, 1, POOL_MEMFD_A, 1);
				PUT(&s, OP(OP_RECORD, i), 2 << 2 | 1 << 4, 3,
				    0x1b, 4 + j, 0x35, 1 + j * 200);
				seed_msg(&s, 4, 0, 0, 3);
				PUT(&s, OP(OP_DISPATCH, 3));
				snprintf(what, sizeof(what), "record-bad-%u%c",
					 i, "ab"[j]);
				seed_end(dir, e, what, &s, false);
			}
		}

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
	seeds_write_ext(dir);
	seeds_write_new(dir);
}
