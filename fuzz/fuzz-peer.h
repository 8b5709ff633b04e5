/* SPDX-License-Identifier: MIT */
/*
 * fuzz-peer: what the files of the harness share. fuzz-peer.c has the
 * model, the library's side and the input loop; fuzz-peer-raw.c the raw
 * peer end; fuzz-peer-send.c the send side's argument checks;
 * fuzz-peer-seeds.c the seed corpus.
 */
#ifndef FUZZ_PEER_H
#define FUZZ_PEER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/resource.h>
#include <sys/types.h>

#include "ipcsock.h"

/* The wire format, written out again here rather than taken from lib/. */
struct fz_wire_hdr {
	uint32_t len;
	uint16_t nr_fds;
	uint8_t version;
	uint8_t flags;
};

_Static_assert(sizeof(struct fz_wire_hdr) == 8, "wire header is 8 bytes");

#define FZ_WIRE_VERSION		1
#define FZ_HDR			sizeof(struct fz_wire_hdr)

/* More than SCM_MAX_FD: the kernel must refuse those. */
#define FZ_PEER_MAX_FDS		255
#define FZ_MAX_SENT		1024
#define FZ_MAX_LIB_SENT		1024
#define FZ_MAX_BATCH		7
/* Largest datagram the peer sends, once its SO_SNDBUF is raised. */
#define FZ_BIG_SNDBUF		(512u * 1024)
#define FZ_TXBUF_LEN		(2 * FZ_BIG_SNDBUF)
/* Small loops: few buffers and slots, so that throttling is cheap. */
#define FZ_SMALL_MSG		4096u
#define FZ_SMALL_QUEUE		4u
#define FZ_SMALL_BUFFERS	4u
/*
 * How long a conversation may take to settle before it counts as stuck:
 * milliseconds normally, seconds on a loaded machine.
 */
#define FZ_SETTLE_MS		10000
#define FZ_IDLE_MS		10000
/* Dispatches a peer send waits for room before it gives up. */
#define FZ_SEND_RETRIES		16
/* SO_SNDBUF of the library's end for CONF_TIGHT: it fills after a few. */
#define FZ_TIGHT_SNDBUF		4096
/* An fd number that is never open (below the usual RLIMIT_NOFILE). */
#define FZ_UNUSED_FD		19999

enum fz_op {
	OP_SEND,		/* one datagram, see op_send() */
	OP_BURST,		/* valid datagrams without dispatch between */
	OP_DISPATCH,		/* arg + 1 dispatches, 0 timeout */
	OP_RECV,		/* ipcsock_receive() up to arg + 1 times */
	OP_LIB_SEND,		/* send / send_batch, see op_lib_send() */
	OP_DRAIN,		/* the peer reads up to arg + 1 datagrams */
	OP_PEER_CLOSE,		/* arg & 1: shutdown(SHUT_WR), else close */
	OP_NOFILE,		/* one datagram while RLIMIT_NOFILE is low */
	OP_SNDBUF,		/* raise the peer's SO_SNDBUF */
	OP_FLAGS,		/* callback behaviour, see op_flags() */
	OP_LOCAL_CLOSE,		/* arg & 1: ipcsock_free, else ipcsock_close */
	NR_OPS
};

/* Byte 0 of an input. */
enum fz_conf {
	CONF_BACKEND	= 3 << 0,	/* enum fz_backend */
	CONF_SMALL	= 1 << 2,	/* small loop options */
	CONF_CONSUMER	= 3 << 3,	/* enum fz_consumer */
	CONF_NO_DRAIN	= 1 << 5,	/* free without settling first */
	CONF_TIGHT	= 1 << 6,	/* small SO_SNDBUF on the library's end */
	CONF_PER_CALL3	= 1 << 7,	/* 3 messages per callback, not 1 */
};

enum fz_backend {
	BE_URING,		/* io_uring, direct sends when nothing waits */
	BE_EPOLL,
	BE_URING_RING,		/* io_uring, IPCSOCK_LOOP_RING_SENDS */
	NR_BE,
};

enum fz_consumer {
	CONSUMER_ALL,		/* ready_read receives everything */
	CONSUMER_SOME,		/* ready_read receives at most per_call */
	CONSUMER_MANUAL,	/* no ready_read: OP_RECV only */
	CONSUMER_LAZY,		/* every other ready_read receives nothing */
};

/* Files the harness passes around; the last four are per input. */
enum fz_pool {
	POOL_MEMFD_A,
	POOL_MEMFD_B,
	POOL_PIPE_R,
	POOL_PIPE_W,
	POOL_SOCK_A,		/* another socket pair */
	POOL_SOCK_B,
	POOL_EVENTFD,
	POOL_DEVNULL,
	POOL_LOOP,		/* ipcsock_loop_fd() of the loop in use */
	POOL_LIB,		/* the library's end of the channel */
	POOL_LIB_DUP,		/* a dup of it, the harness's */
	POOL_REMOTE,		/* the peer's own end */
	NR_POOL
};

enum fz_status {
	DG_VALID,		/* must be delivered */
	DG_MAYBE,		/* valid, but its fds may not all arrive */
	DG_INVALID,		/* must never be delivered */
};

/* One datagram the peer sent, or one message the library sent. */
struct fz_msg {
	uint8_t status;
	uint8_t seed;		/* payload bytes are pattern(seed, i) */
	bool empty;		/* no bytes at all: reads like EOF */
	uint16_t nr_fds;
	uint32_t len;		/* payload bytes after the header */
	uint8_t fds[FZ_PEER_MAX_FDS];	/* pool indices */
};

struct fz_file {
	int fd;
	dev_t dev;
	ino_t ino;
};

struct fz_loop {
	struct ipcsock_loop *loop;
	struct ipcsock *unbound;	/* never bound: -ENOTCONN */
	unsigned int max_msg;
	unsigned int queue_len;
	int fd;
	const char *name;
};

struct fz {
	struct fz_loop *fl;
	struct ipcsock *sock;		/* NULL once freed */
	int remote;			/* -1 once closed */
	int lib_dup;
	int kmax;			/* largest datagram the peer can send */

	unsigned int consumer;
	unsigned int per_call;
	unsigned int ready_calls;
	bool drain;

	/* Behaviour set by OP_FLAGS. */
	bool close_in_hangup;
	bool echo;
	unsigned int close_at;		/* close when this many delivered */
	bool close_free;

	/* Peer -> library. */
	unsigned int nr_sent;
	unsigned int delivered;
	bool broken_sent;		/* an invalid or maybe datagram went */
	bool remote_in_flight;		/* the peer sent its own end */
	bool remote_closed;
	bool remote_shut;
	bool must_reset;		/* closed with our reads pending */
	bool nofile_low;
	struct rlimit nofile;

	/* Library -> peer. */
	unsigned int lib_sent;
	unsigned int lib_read;
	bool lib_eof;

	/* What happened. */
	unsigned int hup_calls;
	int hup_err;
	unsigned int hup_unread;	/* lib_sent - lib_read at hangup */
	bool lib_closed;
};

extern struct fz_file pool[NR_POOL];
extern struct fz_msg sent[FZ_MAX_SENT];
extern struct fz_msg lib_sent[FZ_MAX_LIB_SENT];
extern uint8_t *txbuf;		/* datagrams the peer sends */
extern uint8_t *rxbuf;		/* datagrams the peer receives */
extern size_t rxbuf_len;

struct fz_in {
	const uint8_t *p;
	size_t n;
};

/* fuzz-peer.c */
unsigned int in_u8(struct fz_in *in);
unsigned int in_u16(struct fz_in *in);
unsigned int in_u24(struct fz_in *in);
void fill_pattern(uint8_t *buf, size_t len, unsigned int seed);
bool check_pattern(const uint8_t *buf, size_t len, unsigned int seed);
__attribute__((format(printf, 1, 2), noreturn))
void fz_fail(const char *fmt, ...);
unsigned int pool_pick(const struct fz *fz, unsigned int v);
void pick_fds(struct fz *fz, struct fz_in *in, unsigned int nr, uint8_t *idx);
void fz_dispatch(struct fz *fz, int timeout_ms);
void lib_record(struct fz *fz, const struct ipcsock_payload *p,
		unsigned int seed, const uint8_t *idx);
bool send_state_ok(const struct fz *fz, int ret, unsigned int count);

/* fuzz-peer-raw.c */
void op_send(struct fz *fz, struct fz_in *in, bool maybe);
void op_burst(struct fz *fz, struct fz_in *in, unsigned int arg);
void op_nofile(struct fz *fz, struct fz_in *in, unsigned int arg);
void op_sndbuf(struct fz *fz, unsigned int arg);
void op_peer_close(struct fz *fz, unsigned int arg);
int peer_read_one(struct fz *fz);

/* fuzz-peer-send.c */
void op_lib_send(struct fz *fz, struct fz_in *in);

/* fuzz-peer-seeds.c */
void seeds_write(const char *dir);

#endif /* FUZZ_PEER_H */
