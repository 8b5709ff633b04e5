// SPDX-License-Identifier: MIT
/*
 * io_uring backend, send side, for what could not go out at once (the
 * direct path in tx.c takes a send when nothing is queued before it).
 *
 * By default the queue drains with sendmmsg from user space as far as the
 * socket takes it, and a POLL_ADD(POLLOUT) on the ring resumes it when the
 * peer makes room: the syscall floor for a batch, with the ring doing the
 * waiting. A lone libcamera message is a ring chain (uring_tx_lc_pair()).
 *
 * With IPCSOCK_LOOP_RING_SENDS every datagram is an IORING_OP_SENDMSG (a
 * message is one, or two in the libcamera wire mode: see chan_tx_msg()).
 * Several SENDMSGs in flight on one socket reorder once the socket buffer
 * fills (poll waiters wake in LIFO order and new requests overtake parked
 * ones), so a channel has one IOSQE_IO_LINK chain in flight at a time.
 * Every send carries MSG_DONTWAIT: on a full socket it fails with -EAGAIN
 * instead of parking, the rest of the chain comes back -ECANCELED, and a
 * POLL_ADD(POLLOUT) alone waits for room; the next chain, from the first
 * unsent message, follows its completion.
 */
#include <errno.h>
#include <poll.h>

#include "uring.h"

/*
 * Long chains waste work when the socket fills: everything after the
 * -EAGAIN comes back cancelled and is sent again.
 */
#define TX_CHAIN_MAX	64u
/*
 * An SQPOLL thread that serves several rings (any ring it was attached to
 * with IORING_SETUP_ATTACH_WQ, including the first, whose flags do not
 * say so) takes at most 8 SQEs of a ring per round, and a chain ends with
 * the round: the rest of a longer one would run unlinked, and could
 * overtake a send that found the socket full.
 */
#define TX_CHAIN_MAX_SQPOLL	8u

/* Wake the send side when the socket has room again. */
static void uring_arm_pollout(struct ipcsock_chan *ch)
{
	struct uring_chan *uc = to_uring_chan(ch);
	struct io_uring_sqe *sqe = uring_get_sqe(ch->loop);

	if (!sqe) {
		uring_defer(ch, URING_DEFER_TX);
		return;
	}
	io_uring_prep_poll_add(sqe, ch->fd, POLLOUT);
	io_uring_sqe_set_data64(sqe, ipcsock_ud(ch, IPCSOCK_OP_POLLOUT));
	uring_sqe_names_fd(ch);
	uc->tx_chain = 1;
	uc->tx_chain_poll = true;
	uc->tx_chain_sends = 0;
	uring_op_start(ch, 1);
}

/* The default drain (see above). A closed channel does not wait. */
static void uring_tx_flush(struct ipcsock_chan *ch)
{
	int err = chan_tx_flush_direct(ch);

	if (err == -EAGAIN) {
		if (ch->sock)
			uring_arm_pollout(ch);
	} else if (err) {
		chan_end_send(ch, err);
	}
}

/*
 * A lone libcamera message on our own ring: its two datagrams go as one
 * chain, not by sendmmsg. The header wakes the peer, and sendmmsg may
 * reschedule between its datagrams: with the peer on this CPU it then
 * wakes on the header alone and sleeps again for the payload, two more
 * context switches per message. Submitting an SQE chain has no such
 * point, so the peer wakes once to both. Batches keep sendmmsg: there the
 * peer is seldom asleep, and a chain costs more per datagram.
 */
static bool uring_tx_lc_pair(struct ipcsock_chan *ch, unsigned int datagrams)
{
	return ch->lc && datagrams <= 2 && !to_uring_loop(ch->loop)->shared;
}

/*
 * Inside dispatch nothing submits and reaps chain after chain (see
 * uring_tx_start()): what of the queue waits behind a chain of sends is
 * for dispatch end to drive (uring_tx_drive()).
 */
static void uring_tx_note_behind(struct ipcsock_chan *ch)
{
	struct uring_chan *uc = to_uring_chan(ch);

	if (ch->loop->dispatching && uc->tx_chain && !uc->tx_chain_poll &&
	    chan_tx_datagrams(ch) > uc->tx_chain_sends)
		to_uring_loop(ch->loop)->tx_behind = true;
}

/*
 * With IPCSOCK_LOOP_RING_SENDS, one IOSQE_IO_LINK chain of SENDMSGs at a
 * time, each MSG_DONTWAIT, behind a POLL_ADD(POLLOUT) head after -EAGAIN.
 */
static void uring_tx_issue(struct ipcsock_chan *ch)
{
	struct uring_loop *ul = to_uring_loop(ch->loop);
	struct uring_chan *uc = to_uring_chan(ch);
	struct ipcsock_loop *loop = ch->loop;
	unsigned int i, n, room, head = uc->tx_need_pollout;
	unsigned int max = TX_CHAIN_MAX;
	struct io_uring_sqe *sqe;

	if (uc->tx_chain || ch->tx_err || !chan_tx_queued(ch))
		return;
	if (!(loop->flags & IPCSOCK_LOOP_RING_SENDS) &&
	    !uring_tx_lc_pair(ch, chan_tx_datagrams(ch))) {
		uring_tx_flush(ch);
		return;
	}
	if (ul->ring->flags & IORING_SETUP_SQPOLL)
		max = TX_CHAIN_MAX_SQPOLL;
	n = chan_tx_datagrams(ch);
	if (n > max)
		n = max;
	/* A chain must sit whole in the SQ: it ends at the end of a submit. */
	room = uring_sq_room(loop, n + head);
	if (!room) {
		uring_defer(ch, URING_DEFER_TX);
		return;
	}
	/*
	 * Room for the POLLOUT only: the sends follow once it completes.
	 * After -EAGAIN they always do: while the POLLOUT waits, what is
	 * queued is not the kernel's, and messages sent meanwhile join the
	 * last slot as records (tx.c) instead of each waiting in a SENDMSG
	 * of its own.
	 */
	n = head ? 0 : room;
	if (head) {
		sqe = io_uring_get_sqe(ul->ring);
		io_uring_prep_poll_add(sqe, ch->fd, POLLOUT);
		if (n)
			sqe->flags |= IOSQE_IO_LINK;
		io_uring_sqe_set_data64(sqe, ipcsock_ud(ch, IPCSOCK_OP_POLLOUT));
	}
	for (i = 0; i < n; i++) {
		sqe = io_uring_get_sqe(ul->ring);
		io_uring_prep_sendmsg(sqe, ch->fd,
				      chan_tx_msg(ch, i),
				      MSG_DONTWAIT | MSG_NOSIGNAL);
		if (i + 1 < n)
			sqe->flags |= IOSQE_IO_LINK;
		io_uring_sqe_set_data64(sqe, ipcsock_ud(ch, head ?
					IPCSOCK_OP_SEND_POLLED :
					IPCSOCK_OP_SEND));
	}
	uring_sqe_names_fd(ch);
	ul->sq_dirty = true;
	if (!head)
		ul->tx_nowait += n;
	uc->tx_need_pollout = false;
	uc->tx_chain_poll = head;
	uc->tx_chain = n + head;
	uc->tx_chain_sends = n;
	uring_op_start(ch, n + head);
	uring_tx_note_behind(ch);
}

/*
 * Carry on sending, after a chain or after waiting for an SQE. A closed
 * channel still hands its queue to the kernel as far as the socket takes
 * it, without waiting for room; then its fd goes, which is when the peer
 * sees the hang-up.
 */
void uring_tx_resume(struct ipcsock_chan *ch)
{
	struct uring_chan *uc = to_uring_chan(ch);

	if (ch->sock) {
		uring_tx_issue(ch);
		return;
	}
	if (uc->tx_chain)
		return;
	if (!uc->tx_need_pollout && !ch->tx_err)
		uring_tx_issue(ch);
	/* A chain, or one that waits for an SQE, goes before the fd. */
	if (uc->tx_chain || (uc->defer & URING_DEFER_TX))
		return;
	chan_tx_drop(ch, 0);
	uring_close_fd(ch);
}

/*
 * The channel was closed: waiting for room is not ours to do any more,
 * but what the socket takes now still goes.
 */
void uring_tx_close(struct ipcsock_chan *ch)
{
	/* A POLLOUT still waiting for an SQE is not wanted now. */
	uring_undefer(ch, URING_DEFER_TX);
	uring_cancel(ch, IPCSOCK_OP_POLLOUT);
	uring_tx_resume(ch);
}

/* Completions of a chain arrive in chain order. */
void uring_tx_cqe(struct ipcsock_chan *ch, int op, int res)
{
	struct uring_chan *uc = to_uring_chan(ch);

	uc->tx_chain--;
	if (op != IPCSOCK_OP_POLLOUT) {
		uc->tx_chain_sends--;
		if (res >= 0) {
			chan_tx_count_sent(ch, 1);
			ch->st.tx_ring++;
		}
		if (res >= 0) {
			chan_tx_sent(ch, 1);
		} else if (ch->tx_err) {
			chan_tx_given_up(ch, 1);
		} else if (res == -EAGAIN) {
			uc->tx_need_pollout = true;
		} else if (res != -ECANCELED) {
			/* Includes this message: it cannot be sent. */
			chan_tx_given_up(ch, 1);
			chan_end_send(ch, res);
		}
	}
	if (uc->tx_chain)
		return;
	uc->tx_chain_poll = false;
	uring_tx_resume(ch);
}

/*
 * send() on a channel: a chain still in flight blocks the next one, but
 * often it has completed already and only its CQEs wait in the CQ (sends
 * run inline at submit). Reaping them lets this message go out before
 * send returns instead of at the next dispatch. A shared ring's CQEs are
 * the application's to reap, so there the message waits for them.
 */
void uring_tx_start(struct ipcsock_chan *ch)
{
	struct uring_loop *ul = to_uring_loop(ch->loop);
	struct uring_chan *uc = to_uring_chan(ch);
	struct ipcsock_loop *loop = ch->loop;
	unsigned int head;

	if (ul->shared) {
		uring_tx_issue(ch);
		return;
	}
	if (uc->tx_chain)
		uring_reap(loop);
	uring_tx_issue(ch);
	/* One queued behind a chain issued earlier in this dispatch. */
	uring_tx_note_behind(ch);
	/*
	 * A queue longer than one chain goes out chain after chain while the
	 * socket takes it; stop at the first chain that does not complete at
	 * once (the socket is full: it waits for POLLOUT in the kernel).
	 */
	while (!loop->dispatching && uc->tx_chain && !uc->tx_chain_poll &&
	       chan_tx_datagrams(ch) > uc->tx_chain_sends) {
		head = ch->tx_head;
		uring_submit(loop);
		uring_reap(loop);
		if (ch->tx_head == head)
			break;
	}
}

/*
 * The direct path must not overtake a chain: one that already completed
 * only has its CQEs waiting, so reap those first (own ring; a shared
 * ring's CQEs are the application's, there the message queues).
 */
bool uring_tx_direct_ok(struct ipcsock_chan *ch, unsigned int count)
{
	struct uring_loop *ul = to_uring_loop(ch->loop);
	struct uring_chan *uc = to_uring_chan(ch);

	if (uc->tx_chain && !ul->shared)
		uring_reap(ch->loop);
	if (count == 1 && uring_tx_lc_pair(ch, 2))
		return false;
	return !uc->tx_chain && !chan_tx_queued(ch);
}

/*
 * Dispatch ends, its SQEs submitted: the chains issued inside it with
 * more of their queue behind them (a libcamera message sent as a ring
 * pair and others sent after it in the same dispatch, a ring-sends queue
 * longer than one chain) completed at submit, but only reaping their
 * CQEs issues what follows, and nothing reaps before the next dispatch:
 * the messages dispatch end promises to send would wait for it. Reap and
 * submit until no chain leaves anything behind; a full socket ends it
 * with a POLLOUT, which carries no sends. Our own ring only: a shared
 * ring's CQEs are the application's.
 */
void uring_tx_drive(struct ipcsock_loop *loop)
{
	struct uring_loop *ul = to_uring_loop(loop);

	while (ul->tx_behind && !ul->shared) {
		ul->tx_behind = false;
		uring_reap(loop);
		if (uring_submit(loop) < 0)
			break;
	}
	ul->tx_behind = false;
}

unsigned int uring_tx_inflight(struct ipcsock_chan *ch)
{
	return to_uring_chan(ch)->tx_chain_sends;
}
