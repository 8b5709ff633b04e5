/* SPDX-License-Identifier: MIT */
/*
 * What the three files of the io_uring backend share: backend-uring.c
 * (the ring: setup, submission, completion routing, channel life),
 * uring-recv.c (multishot receive over a provided buffer ring) and
 * uring-send.c (draining the send queue, or SENDMSG chains).
 */
#ifndef IPCSOCK_URING_H
#define IPCSOCK_URING_H

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

/*
 * Work of a channel that found no SQE to go in, kept in ch->uring_defer
 * until uring_defer_run() finds one: nothing the channel needs is ever
 * dropped for want of an SQE.
 */
enum {
	URING_DEFER_RX_ARM	= 1 << 0,	/* arm the multishot receive */
	URING_DEFER_RX_CANCEL	= 1 << 1,	/* cancel it */
	URING_DEFER_TX		= 1 << 2,	/* uring_tx_start() */
	URING_DEFER_TX_CANCEL	= 1 << 3,	/* cancel the POLLOUT */
	URING_DEFER_CLOSE	= 1 << 4,	/* close fd: see uring_close_fd */
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
	ch->sq_seq = ch->loop->ring->sq.sqe_tail;
}

/* backend-uring.c */
unsigned int uring_sq_room(struct ipcsock_loop *loop, unsigned int want);
struct io_uring_sqe *uring_get_sqe(struct ipcsock_loop *loop);
int uring_submit(struct ipcsock_loop *loop);
void uring_reap(struct ipcsock_loop *loop);
void uring_cancel(struct ipcsock_chan *ch, enum ipcsock_op op);
void uring_defer(struct ipcsock_chan *ch, unsigned int what);
void uring_undefer(struct ipcsock_chan *ch, unsigned int what);
void uring_close_fd(struct ipcsock_chan *ch);

/* uring-recv.c */
int uring_rx_open(struct ipcsock_chan *ch);
void uring_rx_destroy(struct ipcsock_chan *ch);
void uring_rx_arm(struct ipcsock_chan *ch);
void uring_rx_recycle(struct ipcsock_chan *ch, unsigned int slot);
void uring_rx_stop(struct ipcsock_chan *ch);
void uring_rx_cqe(struct ipcsock_chan *ch, const struct io_uring_cqe *cqe);

/* uring-send.c */
void uring_tx_kick(struct ipcsock_chan *ch);
bool uring_tx_direct_ok(struct ipcsock_chan *ch);
void uring_tx_close(struct ipcsock_chan *ch);
void uring_tx_linger(struct ipcsock_chan *ch);
void uring_tx_resume(struct ipcsock_chan *ch);
void uring_tx_cqe(struct ipcsock_chan *ch, int op, int res);

#endif /* IPCSOCK_URING_H */
