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

/* backend-uring.c */
struct io_uring_sqe *uring_get_sqe(struct ipcsock_loop *loop);
int uring_submit(struct ipcsock_loop *loop);
void uring_reap(struct ipcsock_loop *loop);
void uring_cancel(struct ipcsock_chan *ch, enum ipcsock_op op);

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
void uring_tx_cqe(struct ipcsock_chan *ch, int op, int res);

#endif /* IPCSOCK_URING_H */
