/* SPDX-License-Identifier: MIT */
/*
 * What the three files of the io_uring backend share: uring.c
 * (the ring: setup, submission, completion routing, channel life),
 * uring-rx.c (multishot receive over a provided buffer ring) and
 * uring-tx.c (draining the send queue, or SENDMSG chains).
 */
#ifndef IPCSOCK_URING_H
#define IPCSOCK_URING_H

#include <liburing.h>

#include "internal.h"

/* Newer than liburing 2.3's header: the kernel's numbers (Linux 6.18). */
#ifndef IORING_SETUP_NO_MMAP
#define IORING_SETUP_NO_MMAP		(1U << 14)
#endif
#ifndef IORING_SETUP_REGISTERED_FD_ONLY
#define IORING_SETUP_REGISTERED_FD_ONLY	(1U << 15)
#endif
#ifndef IORING_SETUP_NO_SQARRAY
#define IORING_SETUP_NO_SQARRAY		(1U << 16)
#endif
#ifndef IORING_SETUP_HYBRID_IOPOLL
#define IORING_SETUP_HYBRID_IOPOLL	(1U << 17)
#endif
#ifndef IORING_SETUP_CQE_MIXED
#define IORING_SETUP_CQE_MIXED		(1U << 18)
#endif

/* The io_uring backend's loop: struct ipcsock_loop and the ring. */
struct uring_loop {
	struct ipcsock_loop loop;
	struct io_uring *ring;
	struct io_uring own_ring;
	bool shared;
	bool defer_taskrun;	/* completions need io_uring_get_events */
	bool wake_armed;	/* shared ring: a wake NOP is in flight */
	bool sq_dirty;		/* SQEs prepared and not yet submitted */
	bool reaping;		/* inside the CQE loop: do not recurse */
	bool rx_rearmed;	/* a receive that ended on data re-armed */
	unsigned int tx_nowait;	/* IPCSOCK_OP_SEND CQEs not yet reaped */
	/*
	 * Inside dispatch a chain was issued with more of its channel's
	 * queue behind it: dispatch end drives it (uring_tx_drive()).
	 */
	bool tx_behind;

	/*
	 * Channels with work that found no SQE free (a full SQ, or an open
	 * link chain of the application's), retried wherever SQEs can be
	 * had again; see uring_defer_run().
	 */
	struct list_head deferred;
	bool wake_deferred;	/* a wake NOP is due */
	bool defer_running;
};

/* The io_uring backend's channel. */
struct uring_chan {
	struct ipcsock_chan ch;

	unsigned int tx_chain;		/* SQEs of the chain in flight */
	unsigned int tx_chain_sends;	/* sends in that chain */
	bool tx_chain_poll;		/* chain waits for POLLOUT */
	bool tx_need_pollout;		/* the socket was full */

	bool rx_armed;			/* multishot RECVMSG live */
	bool rx_cancelled;		/* and a cancel of it sent */
	struct io_uring_buf_ring *br;
	size_t br_len;
	unsigned int bgid;
	unsigned int rx_provided;	/* buffers in the ring */
	unsigned int rx_credit;		/* those and the busy ones, at most */
	uint16_t *rx_free;		/* free buffers not in it: a stack */
	unsigned int rx_nr_free;
	struct msghdr rx_tmpl;

	unsigned int defer;		/* URING_DEFER_*: waiting for an SQE */
	struct list_head defer_node;	/* on uring_loop->deferred */
	unsigned int sq_seq;		/* SQ tail after the last SQE naming fd */
	bool pidfd_armed;		/* POLL_ADD on ch.pidfd live */
};

static inline struct uring_loop *to_uring_loop(struct ipcsock_loop *loop)
{
	return container_of(loop, struct uring_loop, loop);
}

static inline struct uring_chan *to_uring_chan(struct ipcsock_chan *ch)
{
	return container_of(ch, struct uring_chan, ch);
}

/*
 * user_data layout: [63:48] tag, [47:40] op, [39:32] generation, [31:16]
 * loop, [15:0] channel id. The loop number keeps apart the completions of
 * several loops on one shared ring, and those of a loop freed before it
 * was idle; an io_uring channel's id fits in 16 bits, since its buffer
 * group id, bgid_base + id, must.
 */
enum ipcsock_op {
	IPCSOCK_OP_RECV = 1,
	IPCSOCK_OP_SEND,		/* completes at once: MSG_DONTWAIT */
	IPCSOCK_OP_SEND_POLLED,		/* waits behind a POLLOUT head */
	IPCSOCK_OP_POLLOUT,
	IPCSOCK_OP_CANCEL_RECV,		/* cancels the multishot receive */
	IPCSOCK_OP_WAKE,
	IPCSOCK_OP_CANCEL_POLLOUT,	/* cancels a POLLOUT */
	IPCSOCK_OP_PIDFD,		/* the peer's pidfd polled */
	IPCSOCK_OP_CANCEL_PIDFD,	/* cancels that poll */
};

static inline uint64_t ipcsock_ud_make(const struct ipcsock_loop *loop,
				       enum ipcsock_op op, unsigned int gen,
				       unsigned int id)
{
	return IPCSOCK_USER_DATA_TAG << 48 | (uint64_t)op << 40 |
	       (uint64_t)(gen & 0xff) << 32 | (uint64_t)loop->uid << 16 |
	       (id & 0xffff);
}

static inline enum ipcsock_op ipcsock_ud_op(uint64_t ud)
{
	return (ud >> 40) & 0xff;
}

/* Is @ud a completion of @loop's? */
static inline bool ipcsock_ud_of(const struct ipcsock_loop *loop,
				 uint64_t ud)
{
	return IPCSOCK_USER_DATA_IS_OURS(ud) &&
	       ((ud >> 16) & 0xffff) == loop->uid;
}

static inline uint64_t ipcsock_ud(const struct ipcsock_chan *ch,
				  enum ipcsock_op op)
{
	return ipcsock_ud_make(ch->loop, op, ch->gen, ch->id);
}

/*
 * Work of a channel that found no SQE to go in, kept in uring_chan->defer
 * until uring_defer_run() finds one: nothing the channel needs is ever
 * dropped for want of an SQE.
 */
enum {
	URING_DEFER_RX_ARM	= 1 << 0,	/* arm the multishot receive */
	URING_DEFER_RX_CANCEL	= 1 << 1,	/* cancel it */
	URING_DEFER_TX		= 1 << 2,	/* uring_tx_issue() */
	URING_DEFER_TX_CANCEL	= 1 << 3,	/* cancel the POLLOUT */
	URING_DEFER_CLOSE	= 1 << 4,	/* close fd: see uring_close_fd */
	URING_DEFER_PIDFD	= 1 << 5,	/* poll the peer's pidfd */
	URING_DEFER_PIDFD_CANCEL = 1 << 6,	/* cancel that poll */
};

/* Operations the kernel holds for a channel: it lives until they end. */
static inline void uring_op_start(struct ipcsock_chan *ch, unsigned int n)
{
	ch->inflight += n;
	ch->loop->inflight += n;
}

static inline void uring_op_done(struct ipcsock_chan *ch)
{
	ch->inflight--;
	ch->loop->inflight--;
}

/* An SQE naming ch->fd was just taken: see uring_close_fd(). */
static inline void uring_sqe_names_fd(struct ipcsock_chan *ch)
{
	to_uring_chan(ch)->sq_seq = to_uring_loop(ch->loop)->ring->sq.sqe_tail;
}

/* uring.c */
unsigned int uring_sq_room(struct ipcsock_loop *loop, unsigned int want);
struct io_uring_sqe *uring_get_sqe(struct ipcsock_loop *loop);
int uring_submit(struct ipcsock_loop *loop);
void uring_reap(struct ipcsock_loop *loop);
void uring_cq_flush(struct ipcsock_loop *loop);
int uring_process_cqe(struct ipcsock_loop *loop,
		      const struct io_uring_cqe *cqe);
void uring_cancel(struct ipcsock_chan *ch, enum ipcsock_op op);
void uring_defer(struct ipcsock_chan *ch, unsigned int what);
void uring_undefer(struct ipcsock_chan *ch, unsigned int what);
void uring_close_fd(struct ipcsock_chan *ch);
int uring_watch_pidfd(struct ipcsock_chan *ch);

/* uring-rx.c */
int uring_rx_open(struct ipcsock_chan *ch);
void uring_rx_destroy(struct ipcsock_chan *ch);
void uring_rx_arm(struct ipcsock_chan *ch);
void uring_rx_recycle(struct ipcsock_chan *ch, unsigned int slot);
void uring_rx_stop(struct ipcsock_chan *ch);
void uring_rx_cqe(struct ipcsock_chan *ch, const struct io_uring_cqe *cqe);
bool uring_rx_unreaped(struct ipcsock_chan *ch);
bool uring_rx_drained(struct ipcsock_chan *ch);

/* uring-tx.c */
void uring_tx_start(struct ipcsock_chan *ch);
bool uring_tx_direct_ok(struct ipcsock_chan *ch, unsigned int count);
void uring_tx_close(struct ipcsock_chan *ch);
void uring_tx_resume(struct ipcsock_chan *ch);
void uring_tx_drive(struct ipcsock_loop *loop);
void uring_tx_cqe(struct ipcsock_chan *ch, int op, int res);
unsigned int uring_tx_inflight(struct ipcsock_chan *ch);

#endif /* IPCSOCK_URING_H */
