/* SPDX-License-Identifier: MIT */
/*
 * fuzz-peer: what the files of the harness share. fuzz-peer.c has the
 * helpers, the end-of-conversation checks and the input loop;
 * fuzz-peer-lib.c the library's callbacks; fuzz-peer-loop.c the loops and
 * the application that owns a shared ring; fuzz-peer-chan.c binding,
 * creating and rebinding the channel; fuzz-peer-raw.c the raw peer end;
 * fuzz-peer-send.c the send side's argument checks; fuzz-peer-multi.c
 * more loops and channels beside the conversation's, and the loop numbers;
 * fuzz-peer-fork.c a forked child on its default loop; fuzz-peer-seeds.c
 * the seed corpus.
 */
#ifndef FUZZ_PEER_H
#define FUZZ_PEER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/resource.h>
#include <sys/types.h>

#include "ipcsock.h"
/* The wire format and payload rules, as the selftests see them. */
#include "../selftests/wire-test.h"

/* More than SCM_MAX_FD: the kernel must refuse those. */
#define FZ_PEER_MAX_FDS		255
/* Messages the peer may send in one input: a record holds thousands. */
#define FZ_MAX_SENT		5120
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
/* busy_poll_us of the busy-polling loops: short, so that fuzzing stays fast. */
#define FZ_BUSY_US		20
/*
 * How long an SQPOLL ring's kernel thread polls before it sleeps: short,
 * for it spins on a CPU meanwhile.
 */
#define FZ_SQPOLL_IDLE_MS	2
/* SQ sizes of the shared rings; the small ones fill at once. */
#define FZ_SHARED_SQ		64
#define FZ_SHARED_SQ_SMALL	4
#define FZ_SHARED_SQ_SMALL8	8
/* The application's own requests a shared ring holds at most. */
#define FZ_APP_MAX		16

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
	OP_APP,			/* the application's requests, op_app() */
	OP_REBIND,		/* close and bind again, see op_rebind() */
	OP_LOOPS,		/* more loops and channels, op_loops() */
	OP_FORK,		/* a child on its default loop, op_fork() */
	OP_RECORD,		/* a record, valid or not, see op_record() */
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

/* Byte 0's backend code; 3 (BE_EXT) says that byte 1 follows. */
enum fz_backend {
	BE_URING,		/* io_uring, direct sends when nothing waits */
	BE_EPOLL,
	BE_URING_RING,		/* io_uring, IPCSOCK_LOOP_RING_SENDS */
	NR_BE,
	BE_EXT = NR_BE,
};

/* Byte 1 of an input whose backend code is BE_EXT. */
enum fz_ext {
	EXT_KIND	= 15 << 0,	/* enum fz_kind, modulo NR_KINDS */
	EXT_CREATE	= 1 << 4,	/* ipcsock_create(), not _bind() */
	EXT_KEEP	= 1 << 5,	/* the loop's kept handle, rebound */
	EXT_CB_FIRST	= 1 << 6,	/* callbacks set before binding */
	EXT_SQ8		= 1 << 7,	/* CONF_SMALL shared ring: 8-entry SQ */
};

/* Every loop the harness has: the first three are byte 0's backends too. */
enum fz_kind {
	KIND_URING = BE_URING,
	KIND_EPOLL = BE_EPOLL,
	KIND_URING_RING = BE_URING_RING,
	KIND_SHARED,		/* the application's plain io_uring */
	KIND_SHARED_DEFER,	/* one with SINGLE_ISSUER | DEFER_TASKRUN */
	KIND_SHARED_RING,	/* plain, IPCSOCK_LOOP_RING_SENDS */
	KIND_SHARED_DEFER_RING,	/* DEFER_TASKRUN, RING_SENDS */
	KIND_BUSY_URING,	/* own io_uring, busy_poll_us */
	KIND_BUSY_EPOLL,	/* epoll, busy_poll_us */
	KIND_BUSY_URING_RING,	/* busy_poll_us, RING_SENDS */
	KIND_DEFAULT,		/* ipcsock_loop_default(), this thread's */
	KIND_SHARED_SQPOLL,	/* the application's, IORING_SETUP_SQPOLL */
	NR_KINDS,
};

/* Each kind has these: default options, then small ones (SQ 4 or 8). */
enum fz_size {
	SIZE_DEFAULT,
	SIZE_SMALL,		/* a shared one has a 4-entry SQ */
	SIZE_SMALL8,		/* EXT_SQ8: shared only, an 8-entry SQ */
	NR_SIZES,
};

enum fz_consumer {
	CONSUMER_ALL,		/* ready_read receives everything */
	CONSUMER_SOME,		/* ready_read receives at most per_call */
	CONSUMER_MANUAL,	/* no ready_read: OP_RECV only */
	CONSUMER_LAZY,		/* every other ready_read receives nothing */
};

/* OP_APP: the application's own requests on a shared ring. */
enum fz_app_kind {
	APP_NOP,
	APP_TIMEOUT,		/* 1 us: completes with -ETIME */
	APP_POLL,		/* POLLIN on the application's eventfd */
	APP_LINKED,		/* two NOPs, the first linked */
	/* Not from op_app()'s arg: */
	APP_BAD,		/* an opcode the kernel refuses: -EINVAL */
	APP_CHAIN_NOP,		/* a NOP left linked to what comes next */
	APP_CHAIN_BAD,		/* a READ of a closed fd, left linked */
	APP_CHAIN_TAIL,		/* the NOP that ends the chain */
};

/* OP_REBIND: a bind or create that must fail, see bind_probe(). */
enum fz_probe {
	PROBE_NONE,
	PROBE_BADF,		/* -1 and a number that is not open */
	PROBE_NOTSOCK,		/* a memfd */
	PROBE_STREAM,		/* an AF_UNIX SOCK_STREAM socket */
	PROBE_INET,		/* an AF_INET socket */
	PROBE_UNCONNECTED,	/* a SOCK_SEQPACKET socket with no peer */
	PROBE_BUSY,		/* the handle is bound already */
	PROBE_NULL,		/* no handle at all */
};

/* Files the harness passes around; the last four are per conversation. */
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
	DG_RESET,		/* a reset notice: only the end may follow */
};

/* One datagram the peer sent, or one message the library sent. */
struct fz_msg {
	uint8_t status;
	uint8_t seed;		/* payload bytes are pattern(seed, i) */
	bool empty;		/* no bytes at all: reads like EOF */
	uint16_t nr_fds;
	uint16_t dg_fds;	/* of its datagram: a record's, all of them */
	uint32_t len;		/* payload bytes after the header */
	uint8_t fds[FZ_PEER_MAX_FDS];	/* pool indices */
};

struct fz_file {
	int fd;
	dev_t dev;
	ino_t ino;
};

/* One of the application's own requests on a shared ring. */
struct fz_app_req {
	uint64_t ud;
	uint8_t kind;			/* enum fz_app_kind */
	bool busy;
};

/*
 * A chain the application began with IOSQE_IO_LINK on its last SQE and
 * left unsubmitted, so that whatever comes next on the ring joins it; it
 * ends it (app_chain_end()) with a NOP of its own.
 */
struct fz_chain {
	bool open;			/* the head waits for its tail */
	bool live;			/* head or tail still to complete */
	bool head_done;
	bool split;			/* the harness had to submit the head */
	uint8_t head_kind;		/* APP_CHAIN_NOP or APP_CHAIN_BAD */
	uint64_t head_ud;
	uint64_t tail_ud;
};

struct fz_loop {
	struct ipcsock_loop *loop;
	struct ipcsock *unbound;	/* never bound: -ENOTCONN */
	struct ipcsock *kept;		/* EXT_KEEP: bound by each input */
	unsigned int max_msg;
	unsigned int queue_len;
	int fd;
	bool busy;			/* busy_poll_us set */
	bool ring_sends;		/* IPCSOCK_LOOP_RING_SENDS */
	bool async_rx;			/* receives run at any syscall */
	bool shared_defer;		/* a shared DEFER_TASKRUN ring */
	bool sqpoll;			/* a shared SQPOLL ring */
	unsigned int kind;		/* enum fz_kind */
	unsigned int sq_entries;	/* of a shared ring */
	unsigned int number;		/* the loop number a counter gives it */
	const char *name;

	/* A shared ring: the application's, which the harness drives. */
	struct io_uring *ring;
	int app_evfd;			/* what its POLL_ADDs wait for */
	unsigned int app_inflight;
	unsigned int app_gen;
	unsigned long lib_cqes;		/* the library's, handed over */
	unsigned long app_cqes;
	struct fz_app_req app[FZ_APP_MAX];
	struct fz_chain chain;
};

/*
 * One input. It is one conversation, or several when OP_REBIND closes the
 * handle and binds it again: everything from the remote field on belongs
 * to the conversation and starts over at zero (fz_conv_reset()).
 */
struct fz {
	struct fz_loop *fl;
	struct ipcsock *sock;		/* NULL once freed */

	unsigned int consumer;
	unsigned int per_call;
	bool drain;
	bool tight;			/* CONF_TIGHT */
	bool create;			/* EXT_CREATE */
	bool keep;			/* EXT_KEEP */
	unsigned int convs;		/* conversations so far */

	/* Behaviour set by OP_FLAGS. */
	bool close_in_hangup;
	bool echo;
	bool close_free;

	/* Per conversation, from here on. */
	int remote;			/* -1 once closed */
	int lib_fd;			/* the library's end */
	int lib_dup;
	int kmax;			/* largest datagram the peer can send */
	bool created;			/* by ipcsock_create() */
	unsigned int ready_calls;
	unsigned int close_at;		/* close when this many delivered */

	/* OP_REBIND from a callback. */
	unsigned int rebind_at;		/* from ready_read at this count */
	bool rebind_in_hangup;
	unsigned int rebind_how;	/* op_rebind()'s arg and probe */

	/* Peer -> library. */
	unsigned int nr_sent;
	unsigned int delivered;
	unsigned int rec_extra;		/* valid records' messages less one */
	bool broken_sent;		/* an invalid or maybe datagram went */
	bool remote_in_flight;		/* the peer sent its own end */
	bool remote_closed;
	bool remote_shut;
	bool must_reset;		/* closed with our reads pending */
	unsigned int reset_at;		/* 1 + index of our reset notice */
	bool nofile_low;
	struct rlimit nofile;

	/* Library -> peer. */
	unsigned int lib_sent;
	unsigned int lib_read;
	unsigned int lib_reaped;	/* read, and every CQE handed over */
	bool lib_eof;
	bool lib_reset;			/* the library's reset notice came */

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
uint64_t now_ms(void);
void file_id(struct fz_file *f);
void fz_settle(struct fz *fz);
void fz_verify(struct fz *fz, bool settled);
unsigned int in_u8(struct fz_in *in);
unsigned int in_u16(struct fz_in *in);
unsigned int in_u24(struct fz_in *in);
void fill_pattern(uint8_t *buf, size_t len, unsigned int seed);
bool check_pattern(const uint8_t *buf, size_t len, unsigned int seed);
__attribute__((format(printf, 1, 2), noreturn))
void fz_fail(const char *fmt, ...);
unsigned int pool_pick(const struct fz *fz, unsigned int v);
void pick_fds(struct fz *fz, struct fz_in *in, unsigned int nr, uint8_t *idx);
void loop_dispatch(struct ipcsock_loop *loop, int timeout_ms);

/* fuzz-peer-lib.c */
void fz_local_close(struct fz *fz, bool do_free);
void lib_record(struct fz *fz, const struct ipcsock_payload *p,
		unsigned int seed, const uint8_t *idx);
bool send_state_ok(const struct fz *fz, int ret, unsigned int count);
int recv_one(struct fz *fz);
void fz_set_callbacks(struct fz *fz);
void op_flags(struct fz *fz, struct fz_in *in, unsigned int arg);

/* fuzz-peer-loop.c */
struct fz_loop *fz_loop_get(unsigned int kind, unsigned int size);
void fz_loops_early(void);
void fz_dispatch(struct fz *fz, int timeout_ms);
void fz_wait(struct fz *fz, unsigned int i, uint64_t end);
void fz_ring_turn(struct fz_loop *fl, int wait_ms);
void fz_loop_quiesce(struct fz_loop *fl);
void app_chain_end(struct fz_loop *fl, bool reap_first);
bool chain_refused(const struct fz_loop *fl, int ret);
void op_app(struct fz *fz, struct fz_in *in, unsigned int arg);

/* fuzz-peer-multi.c */
void loop_counted(struct fz_loop *fl);
void loops_burn_to_wrap(void);
bool multi_handle_cqe(struct fz_loop *fl, const struct io_uring_cqe *cqe);
void multi_dispatch(struct fz_loop *fl);
void multi_end(struct fz *fz);
void multi_state(void);
void multi_totals(void);
void op_loops(struct fz *fz, struct fz_in *in, unsigned int arg);

/* fuzz-peer-fork.c */
void fork_reset(void);
void op_fork(struct fz *fz, struct fz_in *in, unsigned int arg);
void fork_totals(void);

/* fuzz-peer-chan.c */
void fz_conv_reset(struct fz *fz);
void fz_chan_open(struct fz *fz, bool create, unsigned int probe);
void fz_rebind(struct fz *fz, unsigned int how, bool in_callback);
void op_rebind(struct fz *fz, struct fz_in *in, unsigned int arg);

/* fuzz-peer-raw.c */
void op_send(struct fz *fz, struct fz_in *in, bool maybe);
void op_burst(struct fz *fz, struct fz_in *in, unsigned int arg);
void op_record(struct fz *fz, struct fz_in *in, unsigned int arg);
void op_nofile(struct fz *fz, struct fz_in *in, unsigned int arg);
void op_sndbuf(struct fz *fz, unsigned int arg);
void op_peer_close(struct fz *fz, unsigned int arg);
int peer_read_one(struct fz *fz);

/* fuzz-peer-send.c */
void op_lib_send(struct fz *fz, struct fz_in *in);

/* fuzz-peer-seeds.c */
void seeds_write(const char *dir);

#endif /* FUZZ_PEER_H */
