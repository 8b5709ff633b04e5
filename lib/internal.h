/* SPDX-License-Identifier: MIT */
/*
 * Internal structures shared by the channel logic (loop.c, sock.c, tx.c,
 * rx.c) and the two backends (uring.c, epoll.c). A backend's own state is
 * in its own structs, which embed these (uring.h, epoll.c): the generic
 * code reaches it only through struct ipcsock_backend_ops.
 *
 * A struct ipcsock is the caller's handle. While bound it owns one
 * struct ipcsock_chan, which holds the socket fd and every buffer the
 * kernel may touch. close() detaches the channel from the handle; the
 * channel itself lives on until the kernel has finished with its buffers
 * (io_uring completions can arrive after close), so that the handle can be
 * rebound or freed at once.
 */
#ifndef IPCSOCK_INTERNAL_H
#define IPCSOCK_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include "ipcsock.h"
#include "list.h"
#include "wire.h"

/*
 * Control buffer for IPCSOCK_MAX_FDS fds. CMSG_SPACE pads it by 4 bytes,
 * room for a 254th fd that can never come: the kernel refuses more than
 * SCM_MAX_FD (253) fds in one sendmsg, and rx.c rejects any count that
 * differs from the wire header's. The padding keeps the payload that
 * follows 16-byte aligned.
 */
#define IPCSOCK_CTRL_LEN	CMSG_SPACE(IPCSOCK_MAX_FDS * sizeof(int))

#define ARRAY_SIZE(a)	(sizeof(a) / sizeof((a)[0]))

/* Datagrams one sendmmsg of the direct send path carries. */
#define IPCSOCK_TX_DIRECT_BATCH	32
/* Messages those datagrams carry at most, in records (tx.c). */
#define IPCSOCK_TX_DIRECT_MSGS	256

/* Datagrams one recvmmsg of the epoll backend takes. */
#define IPCSOCK_EP_RX_BATCH	32u

struct ipcsock_chan;
struct wire_lc;

/*
 * A backend keeps its state in structs of its own that embed struct
 * ipcsock_loop and struct ipcsock_chan first (see container_of); the
 * generic code allocates them by the sizes given here.
 */
struct ipcsock_backend_ops {
	enum ipcsock_backend id;
	size_t loop_size;
	size_t chan_size;
	int (*loop_init)(struct ipcsock_loop *loop, struct io_uring *shared);
	/*
	 * True when the kernel's operations ended with the loop (its own
	 * ring, epoll); false when they may still complete (a shared ring).
	 */
	bool (*loop_exit)(struct ipcsock_loop *loop);
	/*
	 * In the child of a fork(): drop this process's copies of the
	 * loop's kernel objects, changing nothing the parent still uses.
	 */
	void (*loop_orphan)(struct ipcsock_loop *loop);
	/* Make loop->evfd pollable alongside the backend's own events. */
	int (*loop_attach_evfd)(struct ipcsock_loop *loop);
	/* The fd ipcsock_loop_fd() hands out, once loop->evfd is attached. */
	int (*loop_fd)(struct ipcsock_loop *loop);
	/*
	 * Submit what is queued, wait up to @timeout_ms for events and turn
	 * them into channel state. Runs no callback. Returns 0 or -errno, or
	 * 1 when it cannot wait at all (a shared ring's completions come
	 * from the application).
	 */
	int (*poll)(struct ipcsock_loop *loop, int timeout_ms);
	/* Hand everything prepared to the kernel now. */
	int (*submit)(struct ipcsock_loop *loop);
	/* Optional: the same, only if anything was prepared since. */
	void (*submit_prepared)(struct ipcsock_loop *loop);
	/*
	 * Optional: dispatch is about to return. Turn what the kernel
	 * holds for the loop into channel state, or leave loop->evfd
	 * signalled, wherever the eventfd alone would not say so.
	 */
	void (*dispatch_end)(struct ipcsock_loop *loop);
	int (*chan_open)(struct ipcsock_chan *ch);
	/* Detached from its handle: flush, cancel, release when idle. */
	void (*chan_close)(struct ipcsock_chan *ch);
	/* Free backend resources; called once nothing is in flight. */
	void (*chan_destroy)(struct ipcsock_chan *ch);
	/* Start sending queued messages, if not already under way. */
	void (*tx_start)(struct ipcsock_chan *ch);
	/*
	 * May a message bypass the queue and go out with a plain syscall
	 * now? Only when no send of this channel is queued or in flight.
	 * @count: messages in the send.
	 */
	bool (*tx_direct_ok)(struct ipcsock_chan *ch, unsigned int count);
	/*
	 * Optional: how many of the oldest queued messages the kernel holds
	 * (they come back through their completions, not to be dropped).
	 */
	unsigned int (*tx_inflight)(struct ipcsock_chan *ch);
	/* Receive buffer @slot is free again. */
	void (*rx_recycle)(struct ipcsock_chan *ch, unsigned int slot);
	/*
	 * Optional: has the kernel received messages for the channel that
	 * are not yet turned into channel state?
	 */
	bool (*rx_unreaped)(struct ipcsock_chan *ch);
	/*
	 * Optional: the peer exited; has every message it sent become
	 * channel state? May start what makes it so, and is asked again
	 * after each poll until it says yes. Without it: is the socket's
	 * receive queue empty?
	 */
	bool (*rx_drained)(struct ipcsock_chan *ch);
	/* The channel ended (chan_end()): stop receiving. */
	void (*rx_stop)(struct ipcsock_chan *ch);
	/* Optional: make the owner of the loop call dispatch again. */
	void (*wake)(struct ipcsock_loop *loop);
	/*
	 * Wait for ch->pidfd to poll readable (the peer process exited) and
	 * then call chan_peer_exited(); stop waiting in rx_stop and
	 * chan_close. 0 or -errno.
	 */
	int (*watch_pidfd)(struct ipcsock_chan *ch);
};

/*
 * The ops every backend has, for its table: each op is implemented by the
 * backend's function of the same name after its prefix (uring_poll,
 * epoll_poll), its state is struct <prefix>_loop and <prefix>_chan. The
 * optional ops a backend has follow, named the same way.
 */
#define IPCSOCK_OP(prefix, op)	.op = prefix##_##op
#define IPCSOCK_BACKEND_OPS(prefix)					\
	.loop_size = sizeof(struct prefix##_loop),			\
	.chan_size = sizeof(struct prefix##_chan),			\
	IPCSOCK_OP(prefix, loop_init), IPCSOCK_OP(prefix, loop_exit),	\
	IPCSOCK_OP(prefix, loop_orphan), IPCSOCK_OP(prefix, loop_fd),	\
	IPCSOCK_OP(prefix, loop_attach_evfd),				\
	IPCSOCK_OP(prefix, poll), IPCSOCK_OP(prefix, submit),		\
	IPCSOCK_OP(prefix, chan_open), IPCSOCK_OP(prefix, chan_close),	\
	IPCSOCK_OP(prefix, chan_destroy),				\
	IPCSOCK_OP(prefix, tx_start), IPCSOCK_OP(prefix, tx_direct_ok),	\
	IPCSOCK_OP(prefix, rx_recycle), IPCSOCK_OP(prefix, rx_stop),	\
	IPCSOCK_OP(prefix, watch_pidfd)

extern const struct ipcsock_backend_ops ipcsock_uring_ops;
extern const struct ipcsock_backend_ops ipcsock_epoll_ops;

/*
 * The wait policy's state (wait.c): the fixed busy_poll_us budget or the
 * adaptive one of IPCSOCK_LOOP_ADAPTIVE_WAIT, and the counters of
 * ipcsock_loop_get_stats().
 */
struct loop_wait {
	bool adaptive;
	bool one_cpu;			/* the thread may run on one CPU only */
	uint64_t cpus_checked_ns;	/* when one_cpu was last looked up */
	uint64_t cap_ns;		/* most one adaptive poll may last */
	uint64_t ttc_ns;		/* average time to completion */
	unsigned int misses;		/* polls in a row that found nothing */
	unsigned int skip;		/* waits left to sleep without polling */
	unsigned int backoff;		/* skip after the next give-up */
	struct ipcsock_loop_stats st;
};

struct ipcsock_loop {
	const struct ipcsock_backend_ops *ops;
	unsigned int max_msg_size;
	unsigned int send_queue_len;
	unsigned int tx_slots;		/* send_queue_len up to a power of 2 */
	unsigned int recv_buffers;
	unsigned int ring_entries;
	unsigned int bgid_base;
	unsigned int busy_poll_us;
	unsigned int flags;

	/* Scratch of the direct send path (a loop is single-threaded). */
	struct mmsghdr tx_mmsg[IPCSOCK_TX_DIRECT_BATCH];
	struct iovec tx_iov[2 * IPCSOCK_TX_DIRECT_BATCH];
	union {
		struct ipcsock_wire_hdr tx_hdr[IPCSOCK_TX_DIRECT_BATCH];
		struct ipcsock_wire_lc_hdr tx_lc_hdr[IPCSOCK_TX_DIRECT_BATCH];
	};
	unsigned char *tx_ctrl;
	size_t tx_ctrl_cap;
	struct tx_scratch *tx_scratch;	/* native mode's, on first use */
	/*
	 * Channels whose sends made in this dispatch's callbacks wait for
	 * its end, to go out as records (tx.c, tx_hold()).
	 */
	struct list_head tx_held;
	unsigned int dispatch_gen;	/* dispatches begun */

	/* eventfd behind ipcsock_loop_fd(), made on first request */
	int evfd;
	bool evfd_signalled;	/* written by us since dispatch read it */

	uint16_t uid;			/* shared: unique among live loops */
	unsigned int fork_gen;		/* loop_fork_gen when it was made */
	bool orphaned;			/* child of fork: our copies are gone */
	bool dispatching;		/* inside ipcsock_loop_dispatch() */
	bool wake_pending;		/* callbacks became due outside it */
	bool tx_progress;		/* a send queue shrank */
	struct list_head ready;		/* channels with callbacks due */
	struct list_head socks;		/* every handle, for loop_free */
	struct list_head dead;		/* channels freed at dispatch's end */
	struct list_head peer_exited;	/* peer gone, socket not yet drained */

	/* Channel table: user_data and epoll data carry an index into it. */
	struct ipcsock_chan **chans;
	unsigned int nr_chans;
	unsigned int next_gen;
	unsigned int inflight;		/* operations the kernel still holds */
	struct loop_wait wait;
};

struct ipcsock {
	struct ipcsock_loop *loop;
	enum ipcsock_wire wire;		/* what every binding speaks */
	struct ipcsock_chan *ch;	/* NULL while unbound */
	struct list_head node;		/* on loop->socks */
	ipcsock_ready_read_fn ready_read;
	void *ready_read_arg;
	ipcsock_hangup_fn hangup;
	void *hangup_arg;
};

/*
 * One queued outgoing message. buf holds the control message (with the
 * library's own dup of every fd) followed by the wire header and a copy
 * of the bytes, so the caller's memory and fds are free once send returns.
 * buf starts in the channel's slot arena and moves to the heap only for a
 * message larger than that; it is reused, so there is no allocation per
 * message in steady state.
 */
struct ipcsock_tx_slot {
	struct msghdr msg;
	struct iovec iov;
	unsigned char *buf;
	size_t cap;
	unsigned int nr_fds;
	/*
	 * A slot is one datagram: one message, or a record of several
	 * (wire.h) when messages were queued behind it. buf holds the
	 * control message in its first ctrl_cap bytes, then the record
	 * header, then the entries: @len bytes, each entry's padding
	 * included; a lone message goes out as a version 1 datagram from
	 * its entry, whose header is laid out as the version 1 header.
	 */
	unsigned int ctrl_cap;
	unsigned int nr_msgs;		/* 0: the reset notice */
	size_t len;
};

/*
 * One received datagram waiting for ipcsock_receive(): a message, or a
 * record (@left > 0) whose next entry is at @data, with @fds its fds
 * not yet received and @nr_fds their count. The slot is recycled once
 * its last message has been received.
 */
struct ipcsock_rx_msg {
	void *data;
	uint32_t len;
	uint16_t nr_fds;
	uint16_t slot;
	int *fds;
	uint32_t left;			/* messages of a record not received */
};

struct ipcsock_chan {
	struct ipcsock_loop *loop;
	struct ipcsock *sock;		/* NULL once closed */
	int fd;
	struct wire_lc *lc;		/* libcamera wire mode, else NULL */
	unsigned int id;		/* index in loop->chans */
	unsigned int gen;		/* tells a reused index apart */
	unsigned int inflight;		/* this channel's kernel operations */

	/*
	 * Send queue: slots [tx_head, tx_tail), free-running counters, in
	 * chunks of 1 << tx_chunk_shift slots allocated on first use.
	 */
	struct ipcsock_tx_slot **tx;
	unsigned int tx_chunk_shift;
	/*
	 * Buffers belong to the queue, not to a slot: a slot takes one when
	 * a message comes to it and gives it back when sent (tx.c).
	 */
	unsigned char *tx_arena;	/* TX_SLOT_INLINE bytes per slot */
	size_t tx_arena_len;
	size_t tx_arena_next;		/* bytes of it ever handed out */
	void *tx_inline_free;		/* arena pieces given back, LIFO */
	void *tx_heap_free;		/* larger buffers kept, LIFO */
	unsigned int tx_head;
	unsigned int tx_tail;
	int tx_err;			/* sticky send error, e.g. -EPIPE */
	unsigned int tx_msgs;		/* messages in the queued slots */
	size_t tx_rec_max;		/* bytes a record may have */
	/* loop->dispatch_gen of its last send inside a dispatch */
	unsigned int tx_gen;
	struct list_head tx_node;	/* on loop->tx_held */

	/*
	 * Receive buffers: nr_rx slots of rx_stride bytes, each laid out as
	 * [io_uring_recvmsg_out][control][wire hdr][payload], the
	 * layout multishot RECVMSG writes; epoll uses the same offsets.
	 */
	unsigned char *rx_mem;
	size_t rx_mem_len;
	size_t rx_stride;
	unsigned int nr_rx;
	/*
	 * What a datagram recently cost, in 1/16 units (chan_rx_limit()):
	 * 16 for a message alone, more for a record.
	 */
	unsigned int rx_cost16;
	struct ipcsock_rx_msg *rxq;	/* pending: [rx_head, rx_tail) */
	unsigned int rx_head;
	unsigned int rx_tail;
	int rx_held;			/* slot last handed out, or -1 */
	bool rx_done;			/* EOF or failure seen: no more */
	int rx_reset;			/* -ECONNRESET seen before EOF */
	bool rx_reset_notice;		/* the peer's reset notice came */
	int hup_err;
	bool hup_due;
	bool hup_done;

	bool closing;			/* inside ipcsock_close: keep it */

	/*
	 * ipcsock_get_stats() (stats.c): plain counters, the loop is
	 * single-threaded; rx_bufs, ended and hangup_err are read off the
	 * channel's state when asked for.
	 */
	struct ipcsock_stats st;

	/* Peer liveness (liveness.c): the watched process, or -1. */
	int pidfd;
	bool peer_exited;		/* pidfd polled readable */
	struct list_head peer_node;	/* on loop->peer_exited */
	/*
	 * Open, on loop->ready while callbacks are due (empty: not due).
	 * Closed (sock NULL), on loop->dead while dispatch keeps it alive.
	 */
	struct list_head node;
};

/*
 * Offsets inside one receive slot; no peer name is asked for. The slot
 * starts with the io_uring_recvmsg_out that multishot RECVMSG writes
 * (uring-rx.c checks the size); epoll leaves it unused.
 */
#define IPCSOCK_RX_CTRL_OFF	16u
#define IPCSOCK_RX_HDR_OFF	(IPCSOCK_RX_CTRL_OFF + IPCSOCK_CTRL_LEN)
#define IPCSOCK_RX_DATA_OFF	(IPCSOCK_RX_HDR_OFF + \
				 sizeof(struct ipcsock_wire_hdr))

static inline unsigned char *rx_slot_buf(struct ipcsock_chan *ch,
					 unsigned int slot)
{
	return ch->rx_mem + (size_t)slot * ch->rx_stride;
}

/* loop.c */
extern unsigned int loop_fork_gen;

/*
 * Made before a fork() of which this process is the child: its epoll set,
 * ring and sockets are the parent's too, and any epoll_ctl, submission,
 * reap or send would change what the parent sees. Public calls refuse
 * such a loop (-ECHILD); freeing it only drops the child's copies.
 */
static inline bool loop_inherited(const struct ipcsock_loop *loop)
{
	return loop->fork_gen != loop_fork_gen;
}

static inline bool sock_inherited(const struct ipcsock *sock)
{
	return sock->loop && loop_inherited(sock->loop);
}

/* The channel a public call on @sock works on: 0, or why there is none. */
static inline int sock_chan(const struct ipcsock *sock,
			    struct ipcsock_chan **ch)
{
	if (sock_inherited(sock))
		return -ECHILD;
	*ch = sock->ch;
	return *ch ? 0 : -ENOTCONN;
}

uint64_t loop_now_us(void);
uint64_t loop_now_ns(void);
void loop_wait_init(struct ipcsock_loop *loop);
uint64_t loop_wait_begin(struct ipcsock_loop *loop, uint64_t *start);
void loop_wait_spun(struct ipcsock_loop *loop, uint64_t start, bool found);
void loop_wait_slept(struct ipcsock_loop *loop);
void loop_chan_forget(struct ipcsock_chan *ch);
struct ipcsock_chan *loop_chan_lookup(struct ipcsock_loop *loop,
				      uint32_t id, unsigned int gen);
int loop_chan_add(struct ipcsock_loop *loop, struct ipcsock_chan *ch);
void loop_mark_ready(struct ipcsock_chan *ch);
void loop_wake(struct ipcsock_loop *loop);
void loop_evfd_drain(struct ipcsock_loop *loop);
void loop_wake_if_pending(struct ipcsock_loop *loop);
void loop_submit_if_outside(struct ipcsock_loop *loop);

/* liveness.c */
void chan_peer_exited(struct ipcsock_chan *ch);
void chan_peer_forget(struct ipcsock_chan *ch);
void loop_peer_check(struct ipcsock_loop *loop);
bool chan_sock_queued(struct ipcsock_chan *ch);

/* sock.c */
void chan_put(struct ipcsock_chan *ch);
void chan_destroy(struct ipcsock_chan *ch);

/* wire-libcamera.c: IPCSOCK_WIRE_LIBCAMERA, called where ch->lc is set */
int wire_lc_alloc(struct ipcsock_chan *ch);
void wire_lc_free(struct ipcsock_chan *ch);
void wire_lc_slot_fill(struct ipcsock_chan *ch, unsigned int seq,
		       struct ipcsock_tx_slot *slot, void *hdr_at, uint32_t len,
		       unsigned int nr_fds);
unsigned int wire_lc_tx_datagrams(const struct ipcsock_chan *ch);
struct msghdr *wire_lc_tx_msg(struct ipcsock_chan *ch, unsigned int i);
void wire_lc_tx_sent(struct ipcsock_chan *ch, unsigned int n);
bool wire_lc_tx_half(const struct ipcsock_chan *ch);
unsigned int wire_lc_tx_slots(const struct ipcsock_chan *ch,
			      unsigned int sends);
void wire_lc_tx_dropped(struct ipcsock_chan *ch);
struct msghdr *wire_lc_direct_msg(struct ipcsock_loop *loop,
				  const struct ipcsock_payload *p,
				  unsigned int i);
void wire_lc_rx(struct ipcsock_chan *ch, int slot, const void *data,
		size_t len, void *ctrl, size_t ctrl_len, int msg_flags);
void wire_lc_ep_batch(struct ipcsock_chan *ch);
bool wire_lc_ep_is_hdr(const struct ipcsock_chan *ch, unsigned int i);
void wire_lc_ep_hdr_entry(struct ipcsock_chan *ch, unsigned int i,
			  struct msghdr *mh, struct iovec *iov);

/* tx.c */
int chan_tx_alloc(struct ipcsock_chan *ch, int sndbuf);
void loop_tx_release_held(struct ipcsock_loop *loop);
void chan_tx_free(struct ipcsock_chan *ch);
void chan_tx_release(struct ipcsock_chan *ch, unsigned int n);
void chan_tx_drop(struct ipcsock_chan *ch, unsigned int keep);
void chan_end_send(struct ipcsock_chan *ch, int err);
int chan_tx_flush_direct(struct ipcsock_chan *ch);
void chan_tx_reset_notice(struct ipcsock_chan *ch);
void chan_tx_count_sent(struct ipcsock_chan *ch, unsigned int n);

static inline unsigned int chan_tx_queued(const struct ipcsock_chan *ch)
{
	return ch->tx_tail - ch->tx_head;
}

static inline struct ipcsock_tx_slot *chan_tx_slot(struct ipcsock_chan *ch,
						   unsigned int seq)
{
	/*
	 * The counters run free and wrap at 2^32: only a power-of-two
	 * count of slots keeps seq and seq + queued apart across the wrap.
	 */
	unsigned int idx = seq & (ch->loop->tx_slots - 1);

	return &ch->tx[idx >> ch->tx_chunk_shift]
		      [idx & ((1u << ch->tx_chunk_shift) - 1)];
}

/* Datagrams the send queue holds (libcamera: two per message). */
static inline unsigned int chan_tx_datagrams(const struct ipcsock_chan *ch)
{
	return ch->lc ? wire_lc_tx_datagrams(ch) : chan_tx_queued(ch);
}

/* Datagram @i of the send queue, from the next one to go. */
static inline struct msghdr *chan_tx_msg(struct ipcsock_chan *ch,
					 unsigned int i)
{
	if (ch->lc)
		return wire_lc_tx_msg(ch, i);
	return &chan_tx_slot(ch, ch->tx_head + i)->msg;
}

/* The next @n datagrams of the send queue went out, or are given up on. */
static inline void chan_tx_sent(struct ipcsock_chan *ch, unsigned int n)
{
	if (ch->lc)
		wire_lc_tx_sent(ch, n);
	else
		chan_tx_release(ch, n);
}

/* The kernel refused the next @n datagrams: count their messages lost. */
static inline void chan_tx_given_up(struct ipcsock_chan *ch, unsigned int n)
{
	unsigned int before = ch->tx_msgs;

	chan_tx_sent(ch, n);
	ch->st.tx_dropped += before - ch->tx_msgs;
}

/* rx.c */
int chan_rx_alloc(struct ipcsock_chan *ch);
void chan_rx_free(struct ipcsock_chan *ch);
void chan_rx_datagram(struct ipcsock_chan *ch, unsigned int slot,
		      size_t len, void *ctrl, size_t ctrl_len, int msg_flags,
		      bool more);
void chan_end(struct ipcsock_chan *ch, int err);
void chan_rx_drop_pending(struct ipcsock_chan *ch);
void chan_rx_close(struct ipcsock_chan *ch);
unsigned int chan_rx_busy(const struct ipcsock_chan *ch);
void close_fds(const int *fds, unsigned int n);
int chan_rx_parse_ctrl(void *ctrl, size_t ctrl_len, int **fds,
		       unsigned int *nr_fds);
void chan_rx_reject(struct ipcsock_chan *ch, int slot, const int *fds,
		    unsigned int nr_fds, int err);
void chan_rx_queue(struct ipcsock_chan *ch, unsigned int slot, void *data,
		   size_t len, int *fds, unsigned int nr_fds,
		   unsigned int nr_msgs);

static inline bool chan_rx_pending(const struct ipcsock_chan *ch)
{
	return ch->rx_tail != ch->rx_head;
}

/*
 * How many receive slots may hold or wait for a datagram: recv_buffers
 * when messages come alone, fewer when they come in records (rx.c).
 */
static inline unsigned int chan_rx_limit(const struct ipcsock_chan *ch)
{
	unsigned int n = ch->nr_rx * 16 / ch->rx_cost16;

	return n ? n : 1;
}

#endif /* IPCSOCK_INTERNAL_H */
