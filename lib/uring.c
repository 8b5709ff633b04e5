// SPDX-License-Identifier: MIT
/*
 * The io_uring backend: the ring (setup with the fastest flags the kernel
 * has, submission, waiting, reaping), routing each completion to its
 * channel by user_data, the life of a channel on the ring, and the ops
 * table. Receiving is in uring-rx.c, sending in uring-tx.c.
 */
#include <errno.h>
#include <poll.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "uring.h"

static int uring_submit_sq(struct ipcsock_loop *loop);
static void uring_wake(struct ipcsock_loop *loop);

/*
 * Does the application's last SQE not yet taken by the kernel open a link
 * chain? An SQE of ours behind it would join the chain: cancelled when a
 * link before it fails, held back by a slow one, and ending the chain
 * where the application did not mean it to end. Submitting would cut the
 * chain short as well, at the end of the batch.
 */
static bool uring_sq_link_open(const struct io_uring *ring)
{
	const struct io_uring_sq *sq = &ring->sq;
	unsigned int tail = sq->sqe_tail;
	unsigned int shift = !!(ring->flags & IORING_SETUP_SQE128);
	const struct io_uring_sqe *last;

	if (tail == io_uring_smp_load_acquire(sq->khead))
		return false;
	last = &sq->sqes[((tail - 1) & sq->ring_mask) << shift];
	return last->flags & (IOSQE_IO_LINK | IOSQE_IO_HARDLINK);
}

/*
 * How many SQEs, up to @want, may be taken now in one go (a chain must
 * not span a submit)? When the SQ is full, what waits in it goes to the
 * kernel first, which takes it at once - except an SQPOLL thread, which
 * takes it when it gets to it: wait for that, it is never long. 0 when no
 * SQE can be had now (open link chain, a submit that failed): the caller
 * defers its work.
 */
unsigned int uring_sq_room(struct ipcsock_loop *loop, unsigned int want)
{
	struct uring_loop *ul = to_uring_loop(loop);
	struct io_uring *ring = ul->ring;
	unsigned int room;

	if (ul->shared && uring_sq_link_open(ring))
		return 0;
	room = io_uring_sq_space_left(ring);
	if (room < want) {
		io_uring_submit(ring);
		room = io_uring_sq_space_left(ring);
	}
	if (!room && (ring->flags & IORING_SETUP_SQPOLL)) {
		io_uring_sqring_wait(ring);
		room = io_uring_sq_space_left(ring);
	}
	return room < want ? room : want;
}

struct io_uring_sqe *uring_get_sqe(struct ipcsock_loop *loop)
{
	struct uring_loop *ul = to_uring_loop(loop);
	struct io_uring_sqe *sqe;

	if (!uring_sq_room(loop, 1))
		return NULL;
	sqe = io_uring_get_sqe(ul->ring);
	if (sqe)
		ul->sq_dirty = true;
	return sqe;
}

/*
 * Keep @what for later: the channel lives, and the loop is not idle,
 * until it is done (it counts as an operation in flight).
 */
void uring_defer(struct ipcsock_chan *ch, unsigned int what)
{
	struct uring_loop *ul = to_uring_loop(ch->loop);
	struct uring_chan *uc = to_uring_chan(ch);

	if (!uc->defer) {
		list_add_tail(&uc->defer_node, &ul->deferred);
		uring_op_start(ch, 1);
	}
	uc->defer |= what;
	/* Every public call's submit on its way out retries it. */
	ul->sq_dirty = true;
}

/* @what is not wanted any more. The caller puts the channel. */
void uring_undefer(struct ipcsock_chan *ch, unsigned int what)
{
	struct uring_chan *uc = to_uring_chan(ch);

	if (!(uc->defer & what))
		return;
	uc->defer &= ~what;
	if (!uc->defer) {
		list_del_init(&uc->defer_node);
		uring_op_done(ch);
	}
}

/*
 * Cancel the channel's multishot receive (@op IPCSOCK_OP_RECV), its
 * POLLOUT (IPCSOCK_OP_POLLOUT) or its pidfd poll (IPCSOCK_OP_PIDFD), if
 * it is live; user_data says which.
 */
void uring_cancel(struct ipcsock_chan *ch, enum ipcsock_op op)
{
	struct uring_chan *uc = to_uring_chan(ch);
	enum ipcsock_op cancel_op;
	struct io_uring_sqe *sqe;
	unsigned int defer;
	bool live;

	switch (op) {
	case IPCSOCK_OP_RECV:
		live = uc->rx_armed;
		cancel_op = IPCSOCK_OP_CANCEL_RECV;
		defer = URING_DEFER_RX_CANCEL;
		break;
	case IPCSOCK_OP_PIDFD:
		live = uc->pidfd_armed;
		cancel_op = IPCSOCK_OP_CANCEL_PIDFD;
		defer = URING_DEFER_PIDFD_CANCEL;
		break;
	default:
		live = uc->tx_chain_poll;
		cancel_op = IPCSOCK_OP_CANCEL_POLLOUT;
		defer = URING_DEFER_TX_CANCEL;
		break;
	}
	if (!live)
		return;
	sqe = uring_get_sqe(ch->loop);
	if (!sqe) {
		uring_defer(ch, defer);
		return;
	}
	io_uring_prep_cancel64(sqe, ipcsock_ud(ch, op), 0);
	io_uring_sqe_set_data64(sqe, ipcsock_ud(ch, cancel_op));
	uring_op_start(ch, 1);
}

/*
 * A cancel of ours came back. -ECANCELED means it never ran: it was
 * cancelled itself (a link chain it got caught in failed). Its request
 * would then live on - a receive holding the socket open after close -
 * so cancel again while that request is still there.
 */
static void uring_cancel_cqe(struct ipcsock_chan *ch, enum ipcsock_op op,
			     int res)
{
	struct uring_chan *uc = to_uring_chan(ch);

	/*
	 * The receive a dead peer's channel waits on missed its cancel:
	 * the next peer check sends another (uring_rx_drained()).
	 */
	if (op == IPCSOCK_OP_CANCEL_RECV && res && uc->rx_armed)
		uc->rx_cancelled = false;
	if (res != -ECANCELED)
		return;
	if (op == IPCSOCK_OP_CANCEL_RECV && (!ch->sock || ch->rx_done))
		uring_cancel(ch, IPCSOCK_OP_RECV);
	else if (op == IPCSOCK_OP_CANCEL_POLLOUT && !ch->sock)
		uring_cancel(ch, IPCSOCK_OP_POLLOUT);
	else if (op == IPCSOCK_OP_CANCEL_PIDFD && (!ch->sock || ch->rx_done))
		uring_cancel(ch, IPCSOCK_OP_PIDFD);
}

/*
 * Peer liveness (liveness.c): a oneshot POLL_ADD on the channel's pidfd,
 * which polls readable once, for good, when the process exits. rx_stop
 * cancels it. The pidfd is closed only with the channel, after the poll
 * completed, so no SQE can name a closed number.
 */
int uring_watch_pidfd(struct ipcsock_chan *ch)
{
	struct uring_chan *uc = to_uring_chan(ch);
	struct io_uring_sqe *sqe;

	if (uc->pidfd_armed || ch->pidfd < 0 || ch->rx_done || !ch->sock)
		return 0;
	sqe = uring_get_sqe(ch->loop);
	if (!sqe) {
		uring_defer(ch, URING_DEFER_PIDFD);
		return 0;
	}
	io_uring_prep_poll_add(sqe, ch->pidfd, POLLIN);
	io_uring_sqe_set_data64(sqe, ipcsock_ud(ch, IPCSOCK_OP_PIDFD));
	uc->pidfd_armed = true;
	uring_op_start(ch, 1);
	return 0;
}

static void uring_pidfd_cqe(struct ipcsock_chan *ch, int res)
{
	to_uring_chan(ch)->pidfd_armed = false;
	uring_op_done(ch);
	/* Otherwise cancelled: the channel ended or closed. */
	if (res > 0)
		chan_peer_exited(ch);
}

/*
 * Is an SQE naming the channel's fd still in the SQ, not yet taken by the
 * kernel? Its position is known (uc->sq_seq); the kernel has taken
 * everything before its head. Free-running counters: the window
 * [head, tail) is at most the SQ long, so a long-gone position never
 * falls in it.
 */
static bool uring_fd_in_sq(struct ipcsock_chan *ch)
{
	struct uring_loop *ul = to_uring_loop(ch->loop);
	struct uring_chan *uc = to_uring_chan(ch);
	const struct io_uring_sq *sq = &ul->ring->sq;
	unsigned int head = io_uring_smp_load_acquire(sq->khead);

	return uc->sq_seq - 1 - head < sq->sqe_tail - head;
}

/*
 * The kernel looks an SQE's fd number up when it takes the SQE: on an
 * SQPOLL ring some time after submit, behind an open link chain of the
 * application's not before the chain is submitted. Closing the fd before
 * then would let the request act on whatever file the application opens
 * next under that number (a receive of ours taking its messages). So the
 * fd is closed once the kernel has taken every SQE naming it, later if
 * need be: each such SQE completes, and its completion retries.
 */
void uring_close_fd(struct ipcsock_chan *ch)
{
	if (ch->fd < 0)
		return;
	if (uring_fd_in_sq(ch)) {
		/*
		 * Not uring_submit(): deferred work run from here could put
		 * and free a channel a completion is being handled for.
		 */
		uring_submit_sq(ch->loop);
		if (uring_fd_in_sq(ch)) {
			uring_defer(ch, URING_DEFER_CLOSE);
			return;
		}
	}
	uring_undefer(ch, URING_DEFER_CLOSE);
	close(ch->fd);
	ch->fd = -1;
}

/*
 * Retry what found no SQE: at every submit, after every completion the
 * application hands over, and before our own ring waits. The list is
 * taken whole; work that still finds no SQE defers itself again.
 */
static void uring_defer_run(struct ipcsock_loop *loop)
{
	struct uring_loop *ul = to_uring_loop(loop);
	struct list_head todo = LIST_HEAD_INIT(todo);
	struct ipcsock_chan *ch;
	struct uring_chan *uc;
	unsigned int what;

	if (ul->defer_running)
		return;
	ul->defer_running = true;
	if (ul->wake_deferred) {
		ul->wake_deferred = false;
		uring_wake(loop);
	}
	list_splice_tail_init(&ul->deferred, &todo);
	while (!list_empty(&todo)) {
		uc = list_first_entry(&todo, struct uring_chan, defer_node);
		ch = &uc->ch;
		list_del_init(&uc->defer_node);
		what = uc->defer;
		uc->defer = 0;
		if (what & URING_DEFER_RX_CANCEL)
			uring_cancel(ch, IPCSOCK_OP_RECV);
		if (what & URING_DEFER_TX_CANCEL)
			uring_cancel(ch, IPCSOCK_OP_POLLOUT);
		if (what & URING_DEFER_PIDFD_CANCEL)
			uring_cancel(ch, IPCSOCK_OP_PIDFD);
		if (what & URING_DEFER_PIDFD)
			uring_watch_pidfd(ch);
		if (what & URING_DEFER_RX_ARM)
			uring_rx_arm(ch);
		if (what & URING_DEFER_TX)
			uring_tx_resume(ch);
		if (what & URING_DEFER_CLOSE)
			uring_close_fd(ch);
		/* The operation uring_defer() counted. */
		uring_op_done(ch);
		chan_put(ch);
	}
	ul->defer_running = false;
}

static inline bool uring_deferred(struct ipcsock_loop *loop)
{
	struct uring_loop *ul = to_uring_loop(loop);

	return !list_empty(&ul->deferred) || ul->wake_deferred;
}

/* IPCSOCK_OP_SEND completions posted and not yet reaped. */
static unsigned int uring_nowait_posted(struct ipcsock_loop *loop)
{
	struct uring_loop *ul = to_uring_loop(loop);
	struct io_uring_cqe *cqe;
	unsigned int head, n = 0;

	io_uring_for_each_cqe(ul->ring, head, cqe)
		if (ipcsock_ud_of(loop, cqe->user_data) &&
		    ipcsock_ud_op(cqe->user_data) == IPCSOCK_OP_SEND)
			n++;
	return n;
}

/*
 * Under DEFER_TASKRUN each link after a chain's head is issued as task
 * work, which runs only inside io_uring_enter and one hop per run: a
 * chain of n sends would need n syscalls (measured on 6.18). Waiting for
 * the chain's completions keeps the kernel running hops within a single
 * enter. MSG_DONTWAIT sends never park, so the wait is short; it is
 * bounded all the same.
 */
static int uring_drive_chains(struct ipcsock_loop *loop, unsigned int nowait)
{
	struct uring_loop *ul = to_uring_loop(loop);
	struct io_uring *ring = ul->ring;
	struct __kernel_timespec ts = { .tv_nsec = 100 * 1000 * 1000 };
	uint64_t end = loop_now_us() + 100 * 1000;
	unsigned int posted, ready, want;
	struct io_uring_cqe *cqe;
	int ret = 0;

	for (;;) {
		posted = uring_nowait_posted(loop);
		if (posted >= nowait)
			break;
		/*
		 * The kernel stopped at an SQE it refused (an application's,
		 * on a ring without IORING_SETUP_SUBMIT_ALL): ours behind it
		 * were not submitted and cannot complete now.
		 */
		if (io_uring_sq_ready(ring))
			break;
		/*
		 * The kernel ends a wait that timed out with 0, not -ETIME,
		 * while any CQE (the application's, say) is posted: the
		 * bound must be ours.
		 */
		if (loop_now_us() >= end)
			break;
		ready = io_uring_cq_ready(ring);
		want = nowait - posted;
		if (ready + want > ring->cq.ring_entries)
			want = ring->cq.ring_entries - ready;
		if (!want)
			break;
		ret = io_uring_wait_cqes(ring, &cqe, ready + want, &ts, NULL);
		if (ret < 0)
			break;
	}
	return ret == -ETIME ? 0 : ret;
}

/* Hand the SQ to the kernel; see uring_submit(). */
static int uring_submit_sq(struct ipcsock_loop *loop)
{
	struct uring_loop *ul = to_uring_loop(loop);
	bool drive = ul->defer_taskrun;
	int ret;

	if (!ul->sq_dirty && !(drive && ul->tx_nowait))
		return 0;
	/* Ours go with the application's chain, once it is closed. */
	if (ul->shared && uring_sq_link_open(ul->ring))
		return 0;
	ul->sq_dirty = uring_deferred(loop);
	if (drive)
		ret = io_uring_submit_and_get_events(ul->ring);
	else
		ret = io_uring_submit(ul->ring);
	if (ret < 0) {
		ul->sq_dirty = true;
		return ret;
	}
	if (drive && ul->tx_nowait)
		return uring_drive_chains(loop, ul->tx_nowait);
	return 0;
}

/* Retry deferred work first, so that it goes in the same submit. */
int uring_submit(struct ipcsock_loop *loop)
{
	if (uring_deferred(loop))
		uring_defer_run(loop);
	return uring_submit_sq(loop);
}

int uring_process_cqe(struct ipcsock_loop *loop,
		      const struct io_uring_cqe *cqe)
{
	struct uring_loop *ul = to_uring_loop(loop);
	uint64_t ud = cqe->user_data;
	enum ipcsock_op op = ipcsock_ud_op(ud);
	struct ipcsock_chan *ch;

	if (!ipcsock_ud_of(loop, ud))
		return 0;
	if (op == IPCSOCK_OP_WAKE) {
		ul->wake_armed = false;
		loop->inflight--;
		return 1;
	}
	if (op == IPCSOCK_OP_SEND)
		ul->tx_nowait--;
	ch = loop_chan_lookup(loop, ud & 0xffff, (ud >> 32) & 0xff);
	if (!ch)
		return 1;
	switch (op) {
	case IPCSOCK_OP_RECV:
		uring_rx_cqe(ch, cqe);
		break;
	case IPCSOCK_OP_SEND:
	case IPCSOCK_OP_SEND_POLLED:
	case IPCSOCK_OP_POLLOUT:
		uring_op_done(ch);
		uring_tx_cqe(ch, op, cqe->res);
		break;
	case IPCSOCK_OP_PIDFD:
		uring_pidfd_cqe(ch, cqe->res);
		break;
	case IPCSOCK_OP_CANCEL_RECV:
	case IPCSOCK_OP_CANCEL_POLLOUT:
	case IPCSOCK_OP_CANCEL_PIDFD:
		uring_op_done(ch);
		uring_cancel_cqe(ch, op, cqe->res);
		break;
	case IPCSOCK_OP_WAKE:	/* handled above */
		break;
	}
	chan_put(ch);
	return 1;
}

/*
 * Receives that ended on a datagram of 0 bytes (see uring_rx_cqe) were
 * re-armed: submit them now, so that the messages behind come in the
 * same dispatch. The re-armed receive runs inline in the submit and
 * posts what the socket holds at once. On our own ring reap that and go
 * on, for a bounded number of rounds (a flood of such messages is left to
 * the next dispatch, its re-arm submitted at the end of this one). On a
 * shared ring the CQEs go to the application, which hands them over in
 * the batch it is reaping (liburing's io_uring_for_each_cqe reads the
 * tail anew each step) or its next.
 */
#define URING_REARM_ROUNDS	64

static void uring_rx_rearm_now(struct ipcsock_loop *loop)
{
	struct uring_loop *ul = to_uring_loop(loop);
	unsigned int round;

	for (round = 0; ul->rx_rearmed && round < URING_REARM_ROUNDS;
	     round++) {
		ul->rx_rearmed = false;
		/* Under DEFER_TASKRUN this submit runs the task work too. */
		if (uring_submit_sq(loop) < 0 || ul->shared)
			break;
		uring_reap(loop);
	}
	ul->rx_rearmed = false;
}

static void uring_submit_prepared(struct ipcsock_loop *loop)
{
	if (to_uring_loop(loop)->sq_dirty)
		uring_submit(loop);
}

int ipcsock_loop_handle_cqe(struct ipcsock_loop *loop,
			    const struct io_uring_cqe *cqe)
{
	int ret;

	if (!loop || !cqe || loop->ops != &ipcsock_uring_ops ||
	    loop_inherited(loop))
		return 0;
	ret = uring_process_cqe(loop, cqe);
	/* Any completion may make room, or close the application's chain. */
	if (uring_deferred(loop))
		uring_defer_run(loop);
	uring_rx_rearm_now(loop);
	/* The application dispatches after its batch: no wake needed. */
	loop->wake_pending = false;
	return ret;
}

/* Turn the CQEs already posted into channel state; no syscall. */
void uring_reap(struct ipcsock_loop *loop)
{
	struct uring_loop *ul = to_uring_loop(loop);
	struct io_uring_cqe *cqe;
	unsigned int head, n = 0;

	if (ul->reaping)
		return;
	ul->reaping = true;
	io_uring_for_each_cqe(ul->ring, head, cqe) {
		uring_process_cqe(loop, cqe);
		n++;
	}
	io_uring_cq_advance(ul->ring, n);
	ul->reaping = false;
}

/*
 * Completions the CQ had no room for wait in the kernel's overflow list,
 * where no look at the CQ sees them. Turn the posted ones into channel
 * state and pull the rest in until none is left behind: close must know
 * of every message the kernel already took out of the socket for us.
 */
void uring_cq_flush(struct ipcsock_loop *loop)
{
	struct uring_loop *ul = to_uring_loop(loop);
	unsigned int tries;

	for (tries = 0; tries < 64 && io_uring_cq_has_overflow(ul->ring);
	     tries++) {
		uring_reap(loop);
		io_uring_get_events(ul->ring);
	}
	uring_reap(loop);
}

/*
 * Low-latency mode: fetch completions without sleeping for a while. Each
 * round is one io_uring_enter that runs pending task work (the receive
 * completing), so a message is seen about one syscall after it lands,
 * with no scheduler wake-up in the way. True when something completed.
 */
static bool uring_busy_poll(struct ipcsock_loop *loop, uint64_t end)
{
	struct uring_loop *ul = to_uring_loop(loop);

	do {
		if (io_uring_submit_and_get_events(ul->ring) < 0)
			return false;
		if (io_uring_cq_ready(ul->ring)) {
			uring_reap(loop);
			return true;
		}
	} while (loop_now_ns() < end);
	return false;
}

static int uring_poll(struct ipcsock_loop *loop, int timeout_ms)
{
	struct uring_loop *ul = to_uring_loop(loop);
	struct io_uring *ring = ul->ring;
	struct io_uring_cqe *cqe;
	uint64_t start, spin = 0;
	bool hit;
	int ret = 0;

	/* A shared ring's completions are the application's to reap. */
	if (ul->shared) {
		ret = uring_submit(loop);
		return ret ? ret : 1;
	}
	if (uring_deferred(loop))
		uring_defer_run(loop);
	ul->sq_dirty = uring_deferred(loop);
	if (timeout_ms)
		spin = loop_wait_begin(loop, &start);
	if (spin) {
		hit = uring_busy_poll(loop, start + spin);
		loop_wait_spun(loop, start, hit);
		if (hit)
			return 0;
	}
	if (timeout_ms < 0) {
		ret = io_uring_submit_and_wait(ring, 1);
	} else if (timeout_ms > 0) {
		struct __kernel_timespec ts = {
			.tv_sec = timeout_ms / 1000,
			.tv_nsec = (timeout_ms % 1000) * 1000000L,
		};

		ret = io_uring_submit_and_wait_timeout(ring, &cqe, 1, &ts,
						       NULL);
	} else if (ul->defer_taskrun) {
		ret = io_uring_submit_and_get_events(ring);
	} else {
		ret = io_uring_submit(ring);
	}
	/* Out of resources for now: the SQEs stay for the next submit. */
	if (ret == -EAGAIN || ret == -EBUSY)
		ul->sq_dirty = true;
	if (ret < 0 && ret != -ETIME && ret != -EINTR && ret != -EAGAIN &&
	    ret != -EBUSY)
		return ret;
	if (timeout_ms)
		loop_wait_slept(loop);
	uring_reap(loop);
	uring_rx_rearm_now(loop);
	return ret == -EINTR ? ret : 0;
}

/*
 * A DEFER_TASKRUN ring runs at most so many task work items per enter (20
 * on 6.18) and keeps the rest for the next one, yet it signals the eventfd
 * only when new work arrives on an empty list: what it kept signals
 * nothing. Dispatch has read the eventfd, so the loop fd would stay quiet
 * with messages due. When the loop fd is in use, enter until a round
 * completes nothing. A flood that does not let up is left to the next
 * dispatch, with the loop fd readable.
 */
#define URING_DISPATCH_END_ROUNDS	16

static void uring_dispatch_end(struct ipcsock_loop *loop)
{
	struct uring_loop *ul = to_uring_loop(loop);
	unsigned int round;

	uring_tx_drive(loop);
	if (ul->shared || !ul->defer_taskrun || loop->evfd < 0)
		return;
	for (round = 0; round < URING_DISPATCH_END_ROUNDS; round++) {
		if (io_uring_get_events(ul->ring) < 0)
			break;
		if (!io_uring_cq_ready(ul->ring))
			return;
		uring_reap(loop);
	}
	loop_wake(loop);
}

static int uring_chan_open(struct ipcsock_chan *ch)
{
	struct uring_chan *uc = to_uring_chan(ch);
	int err;

	INIT_LIST_HEAD(&uc->defer_node);
	err = uring_rx_open(ch);

	if (!err)
		loop_submit_if_outside(ch->loop);
	return err;
}

/*
 * Stop receiving, let queued messages go as far as the socket takes them,
 * close the fd once no send is left. On our own ring wait for all that,
 * so that the channel's fds and buffers are gone when close returns; on a
 * shared ring the application's reaping of our CQEs finishes the job.
 */
static void uring_chan_close(struct ipcsock_chan *ch)
{
	struct uring_loop *ul = to_uring_loop(ch->loop);
	struct ipcsock_loop *loop = ch->loop;
	int tries;

	uring_rx_stop(ch);
	uring_tx_close(ch);
	uring_submit(loop);
	for (tries = 0; !ul->shared && ch->inflight && tries < 500; tries++)
		uring_poll(loop, tries ? 10 : 0);
}

static void uring_chan_destroy(struct ipcsock_chan *ch)
{
	struct uring_chan *uc = to_uring_chan(ch);

	/* Our own ring went with its loop, and with it the deferred work. */
	if (uc->defer)
		list_del_init(&uc->defer_node);
	uc->defer = 0;
	uring_rx_destroy(ch);
}

/* A NOP with our tag wakes a shared ring's owner into dispatch. */
static void uring_wake(struct ipcsock_loop *loop)
{
	struct uring_loop *ul = to_uring_loop(loop);
	struct io_uring_sqe *sqe;

	if (!ul->shared || ul->wake_armed)
		return;
	sqe = uring_get_sqe(loop);
	if (!sqe) {
		ul->wake_deferred = true;
		ul->sq_dirty = true;
		return;
	}
	io_uring_prep_nop(sqe);
	io_uring_sqe_set_data64(sqe, ipcsock_ud_make(loop, IPCSOCK_OP_WAKE,
						     0, 0));
	ul->wake_armed = true;
	loop->inflight++;
	uring_submit(loop);
}

static int uring_setup(struct ipcsock_loop *loop)
{
	struct uring_loop *ul = to_uring_loop(loop);

	/* Fastest first; each older kernel refuses the newer flags. */
	static const unsigned int tries[] = {
		IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN,
		IORING_SETUP_COOP_TASKRUN,
		0,
	};
	struct io_uring_params p;
	unsigned int i;
	int err = -EINVAL;

	for (i = 0; i < ARRAY_SIZE(tries); i++) {
		memset(&p, 0, sizeof(p));
		p.flags = tries[i] | IORING_SETUP_CQSIZE |
			  IORING_SETUP_SUBMIT_ALL;
		p.cq_entries = 4 * loop->ring_entries;
		err = io_uring_queue_init_params(loop->ring_entries,
						 &ul->own_ring, &p);
		if (err != -EINVAL)
			break;
	}
	if (err)
		return err;
	/* Without NODROP an overflowing CQ loses completions. */
	if (!(p.features & IORING_FEAT_NODROP)) {
		io_uring_queue_exit(&ul->own_ring);
		return -EOPNOTSUPP;
	}
	ul->defer_taskrun = p.flags & IORING_SETUP_DEFER_TASKRUN;
	ul->ring = &ul->own_ring;
	return 0;
}

/* Forget the deferred work, unrun. */
static void uring_drop_deferred(struct ipcsock_loop *loop)
{
	struct uring_loop *ul = to_uring_loop(loop);
	struct uring_chan *uc;

	while (!list_empty(&ul->deferred)) {
		uc = list_first_entry(&ul->deferred, struct uring_chan,
				      defer_node);
		list_del_init(&uc->defer_node);
		uc->defer = 0;
	}
	ul->wake_deferred = false;
}

/*
 * A shared loop freed before it was idle: nothing will retry its deferred
 * work. What can go now goes; an fd still named by an SQE the SQPOLL
 * thread has not taken yet is given a moment; one behind the application's
 * open link chain stays open (the manual says to free the loop once idle).
 */
static void uring_shared_exit(struct ipcsock_loop *loop)
{
	struct uring_loop *ul = to_uring_loop(loop);
	struct timespec ts = { .tv_nsec = 100 * 1000 };
	int tries;

	uring_submit(loop);
	for (tries = 0; tries < 1000 && uring_deferred(loop) &&
	     (ul->ring->flags & IORING_SETUP_SQPOLL); tries++) {
		nanosleep(&ts, NULL);
		uring_defer_run(loop);
	}
	uring_drop_deferred(loop);
}

static bool uring_loop_exit(struct ipcsock_loop *loop)
{
	struct uring_loop *ul = to_uring_loop(loop);

	if (ul->shared && ul->ring)
		uring_shared_exit(loop);
	if (!ul->shared && ul->ring) {
		io_uring_queue_exit(ul->ring);
		ul->ring = NULL;
	}
	return !ul->shared;
}

/*
 * A ring can be set up on kernels that lack what this backend needs: 5.18
 * and 5.19 take the flags above but have no multishot RECVMSG, which has no
 * feature bit of its own. IORING_OP_SEND_ZC came in the same release
 * (6.0), so the opcode probe dates the kernel. A ring that cannot say what
 * it supports is taken to be too old.
 */
static int uring_check_ops(struct io_uring *ring)
{
	static const unsigned char needed[] = {
		IORING_OP_NOP, IORING_OP_POLL_ADD, IORING_OP_ASYNC_CANCEL,
		IORING_OP_SENDMSG, IORING_OP_RECVMSG, IORING_OP_SEND_ZC,
	};
	struct io_uring_probe *probe = io_uring_get_probe_ring(ring);
	unsigned int i;
	int err = 0;

	if (!probe)
		return -EOPNOTSUPP;
	for (i = 0; i < ARRAY_SIZE(needed); i++)
		if (!io_uring_opcode_supported(probe, needed[i]))
			err = -EOPNOTSUPP;
	io_uring_free_probe(probe);
	return err;
}

/*
 * Ring setups the library cannot work on. IOPOLL rings (and HYBRID_IOPOLL,
 * which needs IOPOLL) take only requests that can be polled for
 * completion: every socket request fails with EINVAL. A ring still
 * disabled (R_DISABLED, not yet enabled) takes no submission at all. A
 * ring whose fd is registered only cannot register buffer rings through
 * liburing 2.3, which has no way to say so. And a flag this version does
 * not know may change how the SQ works (IORING_SETUP_SQ_REWIND would).
 * Everything else works: SQPOLL, SQE128, CQE32, CQE_MIXED (all of our
 * CQEs are 16 bytes), NO_MMAP, NO_SQARRAY, the task-run and issuer modes.
 */
static int uring_shared_usable(struct io_uring *ring)
{
	unsigned int known = (IORING_SETUP_CQE_MIXED << 1) - 1;
	unsigned int flags = ring->flags;

	if (flags & ~known)
		return -EINVAL;
	if (flags & (IORING_SETUP_IOPOLL | IORING_SETUP_HYBRID_IOPOLL |
		     IORING_SETUP_REGISTERED_FD_ONLY))
		return -EINVAL;
	/* An enter that asks for nothing fails only on a disabled ring. */
	if ((flags & IORING_SETUP_R_DISABLED) &&
	    io_uring_enter(ring->ring_fd, 0, 0, 0, NULL) == -EBADFD)
		return -EINVAL;
	return 0;
}

static int uring_loop_init(struct ipcsock_loop *loop, struct io_uring *shared)
{
	struct uring_loop *ul = to_uring_loop(loop);
	int err;

	INIT_LIST_HEAD(&ul->deferred);
	if (shared) {
		err = uring_shared_usable(shared);
		if (err)
			return err;
		err = uring_check_ops(shared);
		if (err)
			return err;
		ul->ring = shared;
		ul->shared = true;
		/*
		 * Such a ring runs its task work only when someone enters
		 * for completions, so the library's submits do (see
		 * uring_submit). Were they plain, an application whose wait
		 * found one of our wake NOPs already posted would never
		 * enter, and nothing on the ring would progress.
		 */
		ul->defer_taskrun = shared->flags &
				      IORING_SETUP_DEFER_TASKRUN;
		return 0;
	}
	err = uring_setup(loop);
	if (err)
		return err;
	err = uring_check_ops(ul->ring);
	if (err)
		uring_loop_exit(loop);
	return err;
}

/*
 * An own ring is unmapped and its fd closed, as by loop_exit; with no
 * ring left, releasing a channel unregisters no buffer ring.
 *
 * A shared ring is the application's, and its SQ and CQ pages are mapped
 * shared, so the parent's: the child must not even write an SQE, let
 * alone submit (uring_shared_exit would). A library SQE the parent
 * prepared and had not yet submitted, submitted here, would run as the
 * child's request and be cancelled when the child exits, failing the
 * parent's channel. The deferred work is dropped unrun; the parent still
 * holds its own copy of it.
 */
static void uring_loop_orphan(struct ipcsock_loop *loop)
{
	struct uring_loop *ul = to_uring_loop(loop);

	if (ul->shared)
		uring_drop_deferred(loop);
	else
		uring_loop_exit(loop);
	ul->sq_dirty = false;
	ul->ring = NULL;
}

static int uring_loop_fd(struct ipcsock_loop *loop)
{
	return loop->evfd;
}

static int uring_loop_attach_evfd(struct ipcsock_loop *loop)
{
	struct uring_loop *ul = to_uring_loop(loop);
	int err;

	/* On a shared ring the eventfd only flags callbacks due. */
	if (ul->shared)
		return 0;
	err = io_uring_register_eventfd(ul->ring, loop->evfd);
	/* What completed before there was an eventfd would never signal. */
	if (!err)
		uring_poll(loop, 0);
	return err;
}

const struct ipcsock_backend_ops ipcsock_uring_ops = {
	.id = IPCSOCK_BACKEND_URING,
	IPCSOCK_BACKEND_OPS(uring),
	IPCSOCK_OP(uring, submit_prepared),
	IPCSOCK_OP(uring, dispatch_end),
	IPCSOCK_OP(uring, tx_inflight),
	IPCSOCK_OP(uring, rx_unreaped),
	IPCSOCK_OP(uring, rx_drained),
	IPCSOCK_OP(uring, wake),
};
