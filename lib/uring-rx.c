// SPDX-License-Identifier: MIT
/*
 * io_uring backend, receive side: one multishot IORING_OP_RECVMSG per
 * channel over a provided buffer ring of the channel's own, so a channel
 * whose messages are not being received runs out of buffers and stops,
 * throttling only its own peer. The multishot request ends on EOF,
 * errors, CQ overflow and running out of buffers; it is re-armed for as
 * long as the channel lives and has a free buffer.
 *
 * Not every free buffer is in the ring: the kernel takes them in the order
 * they were added, so a ring holding all of them would cycle through every
 * buffer and fault a page of each in. The ring and the buffers holding
 * messages come to a credit, the rest wait in a stack that hands out the
 * buffer freed last, so a channel whose messages come a few at a time
 * keeps reusing the same few pages. A multishot receive that ran dry while
 * the stack still held buffers raises the credit by one: a channel that
 * gets bursts ends up with every buffer in the ring, as if there were no
 * credit. The kernel picks a buffer before it looks for data, so the
 * credit settles one above the most messages that come at once.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "uring.h"

/* The receive slot's layout (internal.h) holds the kernel's header. */
_Static_assert(sizeof(struct io_uring_recvmsg_out) == IPCSOCK_RX_CTRL_OFF,
	       "IPCSOCK_RX_CTRL_OFF is not the size of io_uring_recvmsg_out");

/*
 * The credit to begin with: a burst of up to 11 messages, and the buffer
 * the kernel picks before it finds the socket empty, run no receive dry.
 * Running dry costs a re-arm, and many channels running dry at once can
 * overflow a shared ring's CQ, so it is not set lower.
 */
#define URING_RX_CREDIT	12u

static void uring_rx_provide(struct ipcsock_chan *ch, unsigned int slot)
{
	struct uring_chan *uc = to_uring_chan(ch);

	io_uring_buf_ring_add(uc->br, rx_slot_buf(ch, slot), ch->rx_stride,
			      slot, io_uring_buf_ring_mask(ch->nr_rx), 0);
	io_uring_buf_ring_advance(uc->br, 1);
	uc->rx_provided++;
}

/*
 * Top the ring up from the stack of free buffers, so that it and the
 * buffers holding messages come to the credit.
 */
static void uring_rx_refill(struct ipcsock_chan *ch)
{
	struct uring_chan *uc = to_uring_chan(ch);

	unsigned int limit = chan_rx_limit(ch);

	if (limit > uc->rx_credit)
		limit = uc->rx_credit;
	while (uc->rx_provided + chan_rx_busy(ch) < limit && uc->rx_nr_free)
		uring_rx_provide(ch, uc->rx_free[--uc->rx_nr_free]);
}

/* Register the channel's buffer ring and hand it its first buffers. */
int uring_rx_open(struct ipcsock_chan *ch)
{
	struct uring_loop *ul = to_uring_loop(ch->loop);
	struct uring_chan *uc = to_uring_chan(ch);
	struct ipcsock_loop *loop = ch->loop;
	struct io_uring_buf_reg reg = { 0 };
	unsigned int i;
	long page = sysconf(_SC_PAGESIZE);
	void *mem;
	int err;

	if (loop->bgid_base + ch->id > 0xffff)
		return -EMFILE;
	uc->bgid = loop->bgid_base + ch->id;
	/* recv_buffers is at most 4096: a buffer id fits 16 bits. */
	uc->rx_free = malloc(ch->nr_rx * sizeof(*uc->rx_free));
	if (!uc->rx_free)
		return -ENOMEM;
	uc->br_len = (ch->nr_rx * sizeof(struct io_uring_buf) + page - 1) &
		     ~(page - 1);
	mem = mmap(NULL, uc->br_len, PROT_READ | PROT_WRITE,
		   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (mem == MAP_FAILED)
		return -errno;
	uc->br = mem;
	reg.ring_addr = (unsigned long)mem;
	reg.ring_entries = ch->nr_rx;
	reg.bgid = uc->bgid;
	err = io_uring_register_buf_ring(ul->ring, &reg, 0);
	if (err) {
		munmap(mem, uc->br_len);
		uc->br = NULL;
		return err;
	}
	io_uring_buf_ring_init(uc->br);
	/* Slot 0 on top of the stack. */
	for (i = 0; i < ch->nr_rx; i++)
		uc->rx_free[i] = ch->nr_rx - 1 - i;
	uc->rx_nr_free = ch->nr_rx;
	uc->rx_provided = 0;
	uc->rx_credit = ch->nr_rx < URING_RX_CREDIT ? ch->nr_rx :
			URING_RX_CREDIT;
	uring_rx_refill(ch);

	/* Only the layout matters to multishot: no name, room for 253 fds. */
	memset(&uc->rx_tmpl, 0, sizeof(uc->rx_tmpl));
	uc->rx_tmpl.msg_controllen = IPCSOCK_CTRL_LEN;
	uring_rx_arm(ch);
	return 0;
}

/* Called once nothing is in flight: the kernel no longer writes here. */
void uring_rx_destroy(struct ipcsock_chan *ch)
{
	struct uring_loop *ul = to_uring_loop(ch->loop);
	struct uring_chan *uc = to_uring_chan(ch);

	free(uc->rx_free);
	uc->rx_free = NULL;
	if (!uc->br)
		return;
	if (ul->ring)
		io_uring_unregister_buf_ring(ul->ring, uc->bgid);
	munmap(uc->br, uc->br_len);
	uc->br = NULL;
}

void uring_rx_arm(struct ipcsock_chan *ch)
{
	struct uring_chan *uc = to_uring_chan(ch);
	struct io_uring_sqe *sqe;

	/*
	 * With no buffer in the ring, a receive would only run dry: unless
	 * that is to raise the credit, the next recycle arms it.
	 */
	if (uc->rx_armed || ch->rx_done || !ch->sock ||
	    (!uc->rx_provided && chan_rx_busy(ch) >= chan_rx_limit(ch)))
		return;
	/* The peer exited: only to take what the socket still holds. */
	if (ch->peer_exited && !chan_sock_queued(ch))
		return;
	sqe = uring_get_sqe(ch->loop);
	if (!sqe) {
		uring_defer(ch, URING_DEFER_RX_ARM);
		return;
	}
	io_uring_prep_recvmsg_multishot(sqe, ch->fd, &uc->rx_tmpl,
					MSG_CMSG_CLOEXEC | MSG_TRUNC);
	sqe->flags |= IOSQE_BUFFER_SELECT;
	sqe->buf_group = uc->bgid;
	io_uring_sqe_set_data64(sqe, ipcsock_ud(ch, IPCSOCK_OP_RECV));
	uring_sqe_names_fd(ch);
	uc->rx_armed = true;
	uc->rx_cancelled = false;
	uring_op_start(ch, 1);
	/* Behind it in the same submit: it takes what is there, and ends. */
	if (ch->peer_exited)
		uring_rx_drained(ch);
}

void uring_rx_recycle(struct ipcsock_chan *ch, unsigned int slot)
{
	struct uring_chan *uc = to_uring_chan(ch);

	uc->rx_free[uc->rx_nr_free++] = slot;
	uring_rx_refill(ch);
	uring_rx_arm(ch);
}

/* The channel ended or closes: no more receiving, no peer to watch. */
void uring_rx_stop(struct ipcsock_chan *ch)
{
	/* What still waits for an SQE is simply never armed. */
	uring_undefer(ch, URING_DEFER_RX_ARM | URING_DEFER_PIDFD);
	uring_cancel(ch, IPCSOCK_OP_RECV);
	uring_cancel(ch, IPCSOCK_OP_PIDFD);
}

void uring_rx_cqe(struct ipcsock_chan *ch,
			 const struct io_uring_cqe *cqe)
{
	struct uring_chan *uc = to_uring_chan(ch);
	bool ended = !(cqe->flags & IORING_CQE_F_MORE);
	unsigned int slot;
	unsigned char *buf;
	struct io_uring_recvmsg_out *out;

	if (ended) {
		uc->rx_armed = false;
		uc->rx_cancelled = false;
		uring_op_done(ch);
	}
	if (cqe->flags & IORING_CQE_F_BUFFER) {
		uc->rx_provided--;
		slot = cqe->flags >> IORING_CQE_BUFFER_SHIFT;
		buf = rx_slot_buf(ch, slot);
		out = io_uring_recvmsg_validate(buf, cqe->res, &uc->rx_tmpl);
		if (slot >= ch->nr_rx || !out) {
			chan_end(ch, -EPROTO);
			return;
		}
		chan_rx_datagram(ch, slot, out->payloadlen,
				 buf + IPCSOCK_RX_CTRL_OFF, out->controllen,
				 out->flags, false);
	} else if (cqe->res == -ENOBUFS) {
		/* Dry for want of credit, not of free buffers: more. */
		if (uc->rx_nr_free && uc->rx_credit < ch->nr_rx)
			uc->rx_credit++;
	} else if (cqe->res < 0) {
		chan_end(ch, cqe->res);
	}
	/* Ended for want of buffers, CQ overflow or a reset: go on. */
	uring_rx_refill(ch);
	uring_rx_arm(ch);
	/*
	 * A datagram of 0 bytes (a libcamera-mode message of fds alone)
	 * ends the receive as the end of file does: the kernel's multishot
	 * RECVMSG stops once recvmsg returns <= 0 (io_recvmsg_multishot(),
	 * io_uring/net.c), whatever control data came with it. A burst of
	 * such messages would come one per re-arm, and so one per dispatch:
	 * ask for the re-arm to be submitted at once (uring_rx_rearm_now).
	 */
	if (ended && (cqe->flags & IORING_CQE_F_BUFFER) && uc->rx_armed)
		to_uring_loop(ch->loop)->rx_rearmed = true;
}

/*
 * Messages posted and not yet reaped (see chan_rx_unreceived()), on the
 * loop's own ring: a submit that waits for completions (ring sends under
 * DEFER_TASKRUN), or any syscall on a ring without it, lets the receive
 * take messages in with nobody reaping them. A shared ring's completions
 * are the application's to hand over, and which of those still in its
 * ring it already handed over, the library cannot tell: there only what
 * was handed over counts.
 */
bool uring_rx_unreaped(struct ipcsock_chan *ch)
{
	struct uring_loop *ul = to_uring_loop(ch->loop);
	struct uring_chan *uc = to_uring_chan(ch);
	struct io_uring_recvmsg_out *out;
	struct io_uring_cqe *cqe;
	unsigned int head, slot;
	uint64_t ud;

	if (ul->shared || !uc->br)
		return false;
	if (io_uring_cq_has_overflow(ul->ring)) {
		uring_cq_flush(ch->loop);
		if (chan_rx_pending(ch))
			return true;
	}
	ud = ipcsock_ud(ch, IPCSOCK_OP_RECV);
	io_uring_for_each_cqe(ul->ring, head, cqe) {
		if (cqe->user_data != ud || !(cqe->flags & IORING_CQE_F_BUFFER))
			continue;
		slot = cqe->flags >> IORING_CQE_BUFFER_SHIFT;
		if (slot >= ch->nr_rx)
			continue;
		out = io_uring_recvmsg_validate(rx_slot_buf(ch, slot), cqe->res,
						&uc->rx_tmpl);
		/* Not the end of file, which carries nothing. */
		if (out && (out->payloadlen || out->controllen))
			return true;
	}
	return false;
}

/*
 * The peer exited (liveness.c): has every message it sent become channel
 * state? The socket may be empty already while messages the multishot
 * receive took out of it are not: their completions wait in task work
 * not yet run, in the SQPOLL thread, or in a shared ring's CQ for the
 * application to hand over (once our own submit ran the task work that
 * posted them, after the application reaped). So the receive is
 * cancelled, and its last completion, which the kernel posts after all
 * of its others, tells that they were all turned into messages. What is
 * left in the socket then is taken by a receive armed again with a
 * cancel behind it (uring_rx_arm()), as long as buffers are free.
 */
bool uring_rx_drained(struct ipcsock_chan *ch)
{
	struct uring_chan *uc = to_uring_chan(ch);

	if (uc->rx_armed) {
		if (!uc->rx_cancelled) {
			uc->rx_cancelled = true;
			uring_cancel(ch, IPCSOCK_OP_RECV);
		}
		return false;
	}
	if (uc->defer & URING_DEFER_RX_ARM)
		return false;
	if (!chan_sock_queued(ch))
		return true;
	/* Does nothing while every buffer holds a message. */
	uring_rx_arm(ch);
	return false;
}
