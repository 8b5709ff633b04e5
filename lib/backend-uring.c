// SPDX-License-Identifier: MIT
/*
 * The io_uring backend.
 *
 * Receive: one multishot IORING_OP_RECVMSG per channel over a provided
 * buffer ring of the channel's own, so a channel whose messages are not
 * being received runs out of buffers and stops, throttling only its peer.
 * The multishot request ends on EOF, errors, CQ overflow and running out
 * of buffers; it is re-armed for as long as the channel lives.
 *
 * Send: several SENDMSGs in flight on one socket reorder once the socket
 * buffer fills (poll waiters wake in LIFO order and new requests overtake
 * parked ones), so a channel has one IOSQE_IO_LINK chain in flight at a
 * time. Every send carries MSG_DONTWAIT: on a full socket it fails with
 * -EAGAIN instead of parking, the rest of the chain comes back -ECANCELED,
 * and the next chain starts with a POLL_ADD(POLLOUT) link head from the
 * first unsent message.
 */
#include <errno.h>
#include <poll.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "internal.h"

/* Long chains waste work when the socket fills: everything after the
 * -EAGAIN comes back cancelled and is sent again.
 */
#define TX_CHAIN_MAX	64u

static void op_start(struct ipcsock_chan *ch, unsigned int n)
{
	ch->inflight += n;
	ch->loop->inflight += n;
}

static void op_done(struct ipcsock_chan *ch)
{
	ch->inflight--;
	ch->loop->inflight--;
}

static struct io_uring_sqe *get_sqe(struct ipcsock_loop *loop)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(loop->ring);

	if (!sqe) {
		io_uring_submit(loop->ring);
		sqe = io_uring_get_sqe(loop->ring);
	}
	if (sqe)
		loop->sq_dirty = true;
	return sqe;
}

/* IPCSOCK_OP_SEND completions posted and not yet reaped. */
static unsigned int uring_nowait_posted(struct io_uring *ring)
{
	struct io_uring_cqe *cqe;
	unsigned int head, n = 0;

	io_uring_for_each_cqe(ring, head, cqe)
		if (IPCSOCK_USER_DATA_IS_OURS(cqe->user_data) &&
		    ((cqe->user_data >> 40) & 0xff) == IPCSOCK_OP_SEND)
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
static int uring_drive_chains(struct io_uring *ring, unsigned int nowait)
{
	struct __kernel_timespec ts = { .tv_nsec = 100 * 1000 * 1000 };
	unsigned int posted, ready, want;
	struct io_uring_cqe *cqe;
	int ret = 0;

	for (;;) {
		posted = uring_nowait_posted(ring);
		if (posted >= nowait)
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

static int uring_submit(struct ipcsock_loop *loop)
{
	bool drive = loop->defer_taskrun && !loop->shared;
	int ret;

	if (!loop->sq_dirty && !(drive && loop->tx_nowait))
		return 0;
	loop->sq_dirty = false;
	if (drive)
		ret = io_uring_submit_and_get_events(loop->ring);
	else
		ret = io_uring_submit(loop->ring);
	if (ret < 0) {
		loop->sq_dirty = true;
		return ret;
	}
	if (drive && loop->tx_nowait)
		return uring_drive_chains(loop->ring, loop->tx_nowait);
	return 0;
}

static void uring_rx_arm(struct ipcsock_chan *ch)
{
	struct io_uring_sqe *sqe;

	if (ch->rx_armed || ch->rx_done || !ch->sock ||
	    chan_rx_busy(ch) >= ch->nr_rx)
		return;
	sqe = get_sqe(ch->loop);
	if (!sqe)
		return;	/* the SQ is full of ours: rearmed on a later CQE */
	io_uring_prep_recvmsg_multishot(sqe, ch->fd, &ch->rx_tmpl,
					MSG_CMSG_CLOEXEC | MSG_TRUNC);
	sqe->flags |= IOSQE_BUFFER_SELECT;
	sqe->buf_group = ch->bgid;
	io_uring_sqe_set_data64(sqe, ipcsock_ud(ch, IPCSOCK_OP_RECV));
	ch->rx_armed = true;
	op_start(ch, 1);
}

static void uring_rx_recycle(struct ipcsock_chan *ch, unsigned int slot)
{
	io_uring_buf_ring_add(ch->br, rx_slot_buf(ch, slot), ch->rx_stride,
			      slot, io_uring_buf_ring_mask(ch->nr_rx), 0);
	io_uring_buf_ring_advance(ch->br, 1);
	uring_rx_arm(ch);
}

static void uring_rx_stop(struct ipcsock_chan *ch)
{
	struct io_uring_sqe *sqe;

	if (!ch->rx_armed)
		return;
	sqe = get_sqe(ch->loop);
	if (!sqe)
		return;
	io_uring_prep_cancel64(sqe, ipcsock_ud(ch, IPCSOCK_OP_RECV), 0);
	io_uring_sqe_set_data64(sqe, ipcsock_ud(ch, IPCSOCK_OP_CANCEL));
	op_start(ch, 1);
}

/* Wake the send side when the socket has room again. */
static void uring_arm_pollout(struct ipcsock_chan *ch)
{
	struct io_uring_sqe *sqe = get_sqe(ch->loop);

	if (!sqe)
		return;
	io_uring_prep_poll_add(sqe, ch->fd, POLLOUT);
	io_uring_sqe_set_data64(sqe, ipcsock_ud(ch, IPCSOCK_OP_POLLOUT));
	ch->tx_chain = 1;
	ch->tx_chain_poll = true;
	ch->tx_chain_sends = 0;
	op_start(ch, 1);
}

/*
 * Send what is queued. By default with sendmmsg from here, as far as the
 * socket takes it, and a POLL_ADD(POLLOUT) on the ring to continue when it
 * has room: the syscall floor for a batch, and the ring still does the
 * waiting. A closed channel does not wait.
 */
static void uring_tx_flush(struct ipcsock_chan *ch)
{
	int err = chan_tx_flush_direct(ch);

	if (err == -EAGAIN) {
		if (ch->sock)
			uring_arm_pollout(ch);
	} else if (err) {
		chan_tx_error(ch, err);
	}
}

/*
 * With IPCSOCK_LOOP_RING_SENDS, one IOSQE_IO_LINK chain of SENDMSGs at a
 * time, each MSG_DONTWAIT, behind a POLL_ADD(POLLOUT) head after -EAGAIN.
 */
static void uring_tx_start(struct ipcsock_chan *ch)
{
	struct ipcsock_loop *loop = ch->loop;
	unsigned int i, n, head = ch->tx_need_pollout;
	struct io_uring_sqe *sqe;

	if (ch->tx_chain || ch->tx_err || !chan_tx_queued(ch))
		return;
	if (!(loop->flags & IPCSOCK_LOOP_RING_SENDS)) {
		uring_tx_flush(ch);
		return;
	}
	n = chan_tx_queued(ch);
	if (n > TX_CHAIN_MAX)
		n = TX_CHAIN_MAX;
	/* A chain must sit whole in the SQ: it ends at the end of a submit. */
	if (io_uring_sq_space_left(loop->ring) < n + head)
		io_uring_submit(loop->ring);
	if (io_uring_sq_space_left(loop->ring) < n + head)
		n = io_uring_sq_space_left(loop->ring) - head;
	if ((int)n <= 0)
		return;
	if (head) {
		sqe = get_sqe(loop);
		io_uring_prep_poll_add(sqe, ch->fd, POLLOUT);
		sqe->flags |= IOSQE_IO_LINK;
		io_uring_sqe_set_data64(sqe, ipcsock_ud(ch, IPCSOCK_OP_POLLOUT));
	}
	for (i = 0; i < n; i++) {
		sqe = get_sqe(loop);
		io_uring_prep_sendmsg(sqe, ch->fd,
				      &chan_tx_slot(ch, ch->tx_head + i)->msg,
				      MSG_DONTWAIT | MSG_NOSIGNAL);
		if (i + 1 < n)
			sqe->flags |= IOSQE_IO_LINK;
		io_uring_sqe_set_data64(sqe, ipcsock_ud(ch, head ?
					IPCSOCK_OP_SEND_POLLED :
					IPCSOCK_OP_SEND));
	}
	if (!head)
		loop->tx_nowait += n;
	ch->tx_need_pollout = false;
	ch->tx_chain_poll = head;
	ch->tx_chain = n + head;
	ch->tx_chain_sends = n;
	op_start(ch, n + head);
}

/*
 * A closed channel still hands its queue to the kernel as far as the
 * socket takes it, without waiting for room; then its fd goes, which is
 * when the peer sees the hang-up.
 */
static void uring_tx_linger(struct ipcsock_chan *ch)
{
	if (ch->tx_chain)
		return;
	if (!ch->tx_need_pollout && !ch->tx_err)
		uring_tx_start(ch);
	if (ch->tx_chain)
		return;
	chan_tx_drop(ch, 0);
	if (ch->fd >= 0) {
		/* SQEs naming the fd number must reach the kernel first. */
		uring_submit(ch->loop);
		close(ch->fd);
		ch->fd = -1;
	}
}

/* Completions of a chain arrive in chain order. */
static void uring_tx_cqe(struct ipcsock_chan *ch, int op, int res)
{
	ch->tx_chain--;
	if (op != IPCSOCK_OP_POLLOUT) {
		ch->tx_chain_sends--;
		if (res >= 0 || ch->tx_err) {
			chan_tx_release(ch, 1);
		} else if (res == -EAGAIN) {
			ch->tx_need_pollout = true;
		} else if (res != -ECANCELED) {
			/* Includes this message: it cannot be sent. */
			chan_tx_release(ch, 1);
			chan_tx_error(ch, res);
		}
	}
	if (ch->tx_chain)
		return;
	ch->tx_chain_poll = false;
	if (ch->sock)
		uring_tx_start(ch);
	else
		uring_tx_linger(ch);
}

static void uring_rx_cqe(struct ipcsock_chan *ch,
			 const struct io_uring_cqe *cqe)
{
	unsigned int slot;
	unsigned char *buf;
	struct io_uring_recvmsg_out *out;

	if (!(cqe->flags & IORING_CQE_F_MORE)) {
		ch->rx_armed = false;
		op_done(ch);
	}
	if (cqe->flags & IORING_CQE_F_BUFFER) {
		slot = cqe->flags >> IORING_CQE_BUFFER_SHIFT;
		buf = rx_slot_buf(ch, slot);
		out = io_uring_recvmsg_validate(buf, cqe->res, &ch->rx_tmpl);
		if (slot >= ch->nr_rx || !out) {
			chan_fail(ch, -EPROTO);
			return;
		}
		chan_rx_datagram(ch, slot, out->payloadlen,
				 buf + IPCSOCK_RX_CTRL_OFF, out->controllen,
				 out->flags);
	} else if (cqe->res < 0 && cqe->res != -ENOBUFS) {
		chan_rx_error(ch, cqe->res);
	}
	/* Ended for want of buffers, CQ overflow or a reset: go on. */
	uring_rx_arm(ch);
}

int uring_process_cqe(struct ipcsock_loop *loop,
		      const struct io_uring_cqe *cqe)
{
	uint64_t ud = cqe->user_data;
	unsigned int op = (ud >> 40) & 0xff;
	struct ipcsock_chan *ch;

	if (!IPCSOCK_USER_DATA_IS_OURS(ud))
		return 0;
	if (op == IPCSOCK_OP_WAKE) {
		loop->wake_armed = false;
		loop->inflight--;
		return 1;
	}
	if (op == IPCSOCK_OP_SEND)
		loop->tx_nowait--;
	ch = loop_chan_lookup(loop, (uint32_t)ud, (ud >> 32) & 0xff);
	if (!ch)
		return 1;
	switch (op) {
	case IPCSOCK_OP_RECV:
		uring_rx_cqe(ch, cqe);
		break;
	case IPCSOCK_OP_SEND:
	case IPCSOCK_OP_SEND_POLLED:
	case IPCSOCK_OP_POLLOUT:
		op_done(ch);
		uring_tx_cqe(ch, op, cqe->res);
		break;
	case IPCSOCK_OP_CANCEL:
		op_done(ch);
		break;
	}
	chan_put(ch);
	return 1;
}

int ipcsock_loop_handle_cqe(struct ipcsock_loop *loop,
			    const struct io_uring_cqe *cqe)
{
	if (!loop || !cqe || loop->ops != &ipcsock_uring_ops)
		return 0;
	return uring_process_cqe(loop, cqe);
}

/* Turn the CQEs already posted into channel state; no syscall. */
static void uring_reap(struct ipcsock_loop *loop)
{
	struct io_uring_cqe *cqe;
	unsigned int head, n = 0;

	if (loop->reaping)
		return;
	loop->reaping = true;
	io_uring_for_each_cqe(loop->ring, head, cqe) {
		uring_process_cqe(loop, cqe);
		n++;
	}
	io_uring_cq_advance(loop->ring, n);
	loop->reaping = false;
}

/*
 * Low-latency mode: fetch completions without sleeping for a while. Each
 * round is one io_uring_enter that runs pending task work (the receive
 * completing), so a message is seen about one syscall after it lands,
 * with no scheduler wake-up in the way. True when something completed.
 */
static bool uring_busy_poll(struct ipcsock_loop *loop)
{
	uint64_t end = loop_now_us() + loop->busy_poll_us;

	do {
		if (io_uring_submit_and_get_events(loop->ring) < 0)
			return false;
		if (io_uring_cq_ready(loop->ring)) {
			uring_reap(loop);
			return true;
		}
	} while (loop_now_us() < end);
	return false;
}

static int uring_poll(struct ipcsock_loop *loop, int timeout_ms)
{
	struct io_uring *ring = loop->ring;
	struct io_uring_cqe *cqe;
	int ret = 0;

	/* A shared ring's completions are the application's to reap. */
	if (loop->shared)
		return uring_submit(loop);
	loop->sq_dirty = false;
	if (timeout_ms && loop->busy_poll_us && uring_busy_poll(loop))
		return 0;
	if (timeout_ms < 0) {
		ret = io_uring_submit_and_wait(ring, 1);
	} else if (timeout_ms > 0) {
		struct __kernel_timespec ts = {
			.tv_sec = timeout_ms / 1000,
			.tv_nsec = (timeout_ms % 1000) * 1000000L,
		};

		ret = io_uring_submit_and_wait_timeout(ring, &cqe, 1, &ts,
						       NULL);
	} else if (loop->defer_taskrun) {
		ret = io_uring_submit_and_get_events(ring);
	} else {
		ret = io_uring_submit(ring);
	}
	if (ret < 0 && ret != -ETIME && ret != -EINTR && ret != -EAGAIN &&
	    ret != -EBUSY)
		return ret;
	uring_reap(loop);
	return 0;
}

/*
 * send() on a channel: a chain still in flight blocks the next one, but
 * often it has completed already and only its CQEs wait in the CQ (sends
 * run inline at submit). Reaping them lets this message go out before
 * send returns instead of at the next dispatch. A shared ring's CQEs are
 * the application's to reap, so there the message waits for them.
 */
static void uring_tx_kick(struct ipcsock_chan *ch)
{
	struct ipcsock_loop *loop = ch->loop;
	unsigned int head;

	if (loop->shared) {
		uring_tx_start(ch);
		return;
	}
	if (ch->tx_chain)
		uring_reap(loop);
	uring_tx_start(ch);
	/*
	 * A queue longer than one chain goes out chain after chain while the
	 * socket takes it; stop at the first chain that does not complete at
	 * once (the socket is full: it waits for POLLOUT in the kernel).
	 */
	while (!loop->in_dispatch && ch->tx_chain && !ch->tx_chain_poll &&
	       chan_tx_queued(ch) > ch->tx_chain_sends) {
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
static bool uring_tx_direct_ok(struct ipcsock_chan *ch)
{
	if (ch->tx_chain && !ch->loop->shared)
		uring_reap(ch->loop);
	return !ch->tx_chain && !chan_tx_queued(ch);
}

static int uring_chan_open(struct ipcsock_chan *ch)
{
	struct ipcsock_loop *loop = ch->loop;
	struct io_uring_buf_reg reg = { 0 };
	unsigned int i, mask = io_uring_buf_ring_mask(ch->nr_rx);
	long page = sysconf(_SC_PAGESIZE);
	void *mem;
	int err;

	if (loop->bgid_base + ch->id > 0xffff)
		return -EMFILE;
	ch->bgid = loop->bgid_base + ch->id;
	ch->br_len = (ch->nr_rx * sizeof(struct io_uring_buf) + page - 1) &
		     ~(page - 1);
	mem = mmap(NULL, ch->br_len, PROT_READ | PROT_WRITE,
		   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (mem == MAP_FAILED)
		return -errno;
	ch->br = mem;
	reg.ring_addr = (unsigned long)mem;
	reg.ring_entries = ch->nr_rx;
	reg.bgid = ch->bgid;
	err = io_uring_register_buf_ring(loop->ring, &reg, 0);
	if (err) {
		munmap(mem, ch->br_len);
		ch->br = NULL;
		return err;
	}
	io_uring_buf_ring_init(ch->br);
	for (i = 0; i < ch->nr_rx; i++)
		io_uring_buf_ring_add(ch->br, rx_slot_buf(ch, i), ch->rx_stride,
				      i, mask, i);
	io_uring_buf_ring_advance(ch->br, ch->nr_rx);

	memset(&ch->rx_tmpl, 0, sizeof(ch->rx_tmpl));
	ch->rx_tmpl.msg_controllen = IPCSOCK_CTRL_LEN;
	uring_rx_arm(ch);
	loop_submit_if_outside(loop);
	return 0;
}

/*
 * Stop receiving, let queued messages go as far as the socket takes them,
 * close the fd once no send is left. On our own ring wait for all that,
 * so that the channel's fds and buffers are gone when close returns; on a
 * shared ring the application's reaping of our CQEs finishes the job.
 */
static void uring_chan_close(struct ipcsock_chan *ch)
{
	struct ipcsock_loop *loop = ch->loop;
	struct io_uring_sqe *sqe;
	int tries;

	uring_rx_stop(ch);
	if (ch->tx_chain_poll) {
		/* Waiting for room is not ours to do any more. */
		sqe = get_sqe(loop);
		if (sqe) {
			io_uring_prep_cancel64(sqe,
					       ipcsock_ud(ch, IPCSOCK_OP_POLLOUT),
					       0);
			io_uring_sqe_set_data64(sqe,
						ipcsock_ud(ch, IPCSOCK_OP_CANCEL));
			op_start(ch, 1);
		}
	}
	uring_tx_linger(ch);
	uring_submit(loop);
	for (tries = 0; !loop->shared && ch->inflight && tries < 500; tries++)
		uring_poll(loop, tries ? 10 : 0);
}

static void uring_chan_destroy(struct ipcsock_chan *ch)
{
	if (ch->br) {
		if (ch->loop->ring)
			io_uring_unregister_buf_ring(ch->loop->ring, ch->bgid);
		munmap(ch->br, ch->br_len);
		ch->br = NULL;
	}
}

/* A NOP with our tag wakes a shared ring's owner into dispatch. */
static void uring_wake(struct ipcsock_loop *loop)
{
	struct io_uring_sqe *sqe;

	if (!loop->shared || loop->wake_armed)
		return;
	sqe = get_sqe(loop);
	if (!sqe)
		return;
	io_uring_prep_nop(sqe);
	io_uring_sqe_set_data64(sqe, IPCSOCK_USER_DATA_TAG << 48 |
				(uint64_t)IPCSOCK_OP_WAKE << 40);
	loop->wake_armed = true;
	loop->inflight++;
	uring_submit(loop);
}

static int uring_setup(struct ipcsock_loop *loop)
{
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
						 &loop->own_ring, &p);
		if (err != -EINVAL)
			break;
	}
	if (err)
		return err;
	/* Without NODROP an overflowing CQ loses completions. */
	if (!(p.features & IORING_FEAT_NODROP)) {
		io_uring_queue_exit(&loop->own_ring);
		return -EOPNOTSUPP;
	}
	loop->defer_taskrun = p.flags & IORING_SETUP_DEFER_TASKRUN;
	loop->ring = &loop->own_ring;
	return 0;
}

static int uring_loop_init(struct ipcsock_loop *loop, struct io_uring *shared)
{
	if (shared) {
		loop->ring = shared;
		loop->shared = true;
		return 0;
	}
	return uring_setup(loop);
}

static void uring_loop_exit(struct ipcsock_loop *loop)
{
	if (!loop->shared && loop->ring) {
		io_uring_queue_exit(loop->ring);
		loop->ring = NULL;
	}
}

static int uring_attach_evfd(struct ipcsock_loop *loop)
{
	int err;

	/* On a shared ring the eventfd only flags callbacks due. */
	if (loop->shared)
		return 0;
	err = io_uring_register_eventfd(loop->ring, loop->evfd);
	/* What completed before there was an eventfd would never signal. */
	if (!err)
		err = uring_poll(loop, 0);
	return err;
}

const struct ipcsock_backend_ops ipcsock_uring_ops = {
	.id = IPCSOCK_BACKEND_URING,
	.loop_init = uring_loop_init,
	.loop_exit = uring_loop_exit,
	.loop_attach_evfd = uring_attach_evfd,
	.poll = uring_poll,
	.submit = uring_submit,
	.chan_open = uring_chan_open,
	.chan_close = uring_chan_close,
	.chan_destroy = uring_chan_destroy,
	.tx_start = uring_tx_kick,
	.tx_direct_ok = uring_tx_direct_ok,
	.rx_recycle = uring_rx_recycle,
	.rx_stop = uring_rx_stop,
	.wake = uring_wake,
};
