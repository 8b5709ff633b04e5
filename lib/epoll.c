// SPDX-License-Identifier: MIT
/*
 * The portable backend: epoll plus sendmsg/recvmmsg, for kernels and
 * sandboxes without io_uring. Same slots, same checks, same semantics.
 *
 * Sends go out synchronously with MSG_DONTWAIT, so ordering is free; only
 * when the socket is full do messages stay queued, with EPOLLOUT interest
 * until it drains. A channel is in the epoll set only while it wants an
 * event: a hung-up socket is always "ready", and one whose receive slots
 * are all taken must not make the loop spin.
 */
#include <errno.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "internal.h"

#define EP_EVENTS	64
#define EP_EVFD_TAG	UINT64_MAX
/* In a channel's tag: the event is its peer's pidfd, not its socket. */
#define EP_PIDFD_TAG	(1ull << 31)

struct epoll_loop {
	struct ipcsock_loop loop;
	int epfd;
};

struct epoll_chan {
	struct ipcsock_chan ch;
	uint32_t events;		/* interest registered, 0: not in set */
	unsigned int rx_next;		/* next receive slot to fill */
	bool tx_need_pollout;		/* the socket was full */
	bool pidfd_in_set;		/* ch.pidfd is in the epoll set */
	struct mmsghdr rx_mmsg[IPCSOCK_EP_RX_BATCH];
	struct iovec rx_iov[IPCSOCK_EP_RX_BATCH];
};

static inline struct epoll_loop *to_epoll_loop(struct ipcsock_loop *loop)
{
	return container_of(loop, struct epoll_loop, loop);
}

static inline struct epoll_chan *to_epoll_chan(struct ipcsock_chan *ch)
{
	return container_of(ch, struct epoll_chan, ch);
}

static uint64_t epoll_tag(const struct ipcsock_chan *ch)
{
	return (uint64_t)ch->gen << 32 | ch->id;
}

static void epoll_update(struct ipcsock_chan *ch)
{
	struct epoll_event ev = { .data.u64 = epoll_tag(ch) };
	struct epoll_chan *ec = to_epoll_chan(ch);
	int op;

	if (ch->sock && !ch->rx_done && chan_rx_busy(ch) < chan_rx_limit(ch))
		ev.events |= EPOLLIN;
	if (ch->sock && ec->tx_need_pollout && !ch->tx_err)
		ev.events |= EPOLLOUT;
	if (ev.events == ec->events)
		return;
	if (!ev.events)
		op = EPOLL_CTL_DEL;
	else if (!ec->events)
		op = EPOLL_CTL_ADD;
	else
		op = EPOLL_CTL_MOD;
	if (!epoll_ctl(to_epoll_loop(ch->loop)->epfd, op, ch->fd, &ev))
		ec->events = ev.events;
}

/*
 * Peer liveness (liveness.c): the pidfd polls readable once the process
 * exited, and for good, so it leaves the set as soon as it fired - and
 * before it is closed, since the set holds the file, which the caller's
 * own pidfd keeps open.
 */
static int epoll_watch_pidfd(struct ipcsock_chan *ch)
{
	struct epoll_event ev = {
		.events = EPOLLIN,
		.data.u64 = epoll_tag(ch) | EP_PIDFD_TAG,
	};

	if (epoll_ctl(to_epoll_loop(ch->loop)->epfd, EPOLL_CTL_ADD, ch->pidfd,
		      &ev))
		return -errno;
	to_epoll_chan(ch)->pidfd_in_set = true;
	return 0;
}

static void epoll_pidfd_remove(struct ipcsock_chan *ch)
{
	struct epoll_chan *ec = to_epoll_chan(ch);

	if (ec->pidfd_in_set)
		epoll_ctl(to_epoll_loop(ch->loop)->epfd, EPOLL_CTL_DEL,
			  ch->pidfd, NULL);
	ec->pidfd_in_set = false;
}

static bool epoll_data_after(struct epoll_chan *ec, unsigned int from,
			  unsigned int n)
{
	for (; from < n; from++)
		if (ec->rx_mmsg[from].msg_len ||
		    ec->rx_mmsg[from].msg_hdr.msg_controllen)
			return true;
	return false;
}

/* Entry @i of the recvmmsg vector receives into slot @slot. */
static void epoll_rx_entry(struct ipcsock_chan *ch, unsigned int i,
			   unsigned int slot)
{
	struct epoll_chan *ec = to_epoll_chan(ch);
	unsigned char *buf = rx_slot_buf(ch, slot);
	struct msghdr *mh = &ec->rx_mmsg[i].msg_hdr;

	ec->rx_iov[i].iov_base = buf + IPCSOCK_RX_HDR_OFF;
	ec->rx_iov[i].iov_len = ch->rx_stride - IPCSOCK_RX_HDR_OFF;
	mh->msg_name = NULL;
	mh->msg_namelen = 0;
	mh->msg_iov = &ec->rx_iov[i];
	mh->msg_iovlen = 1;
	mh->msg_control = buf + IPCSOCK_RX_CTRL_OFF;
	mh->msg_controllen = IPCSOCK_CTRL_LEN;
	mh->msg_flags = 0;
}

/*
 * Lay out one recvmmsg batch: one entry per free slot, in slot order. In
 * the libcamera mode every other entry is a header, which needs no slot.
 */
static unsigned int epoll_rx_layout(struct ipcsock_chan *ch,
				    unsigned int room)
{
	struct epoll_chan *ec = to_epoll_chan(ch);
	unsigned int i, used = 0;

	if (ch->lc)
		wire_lc_ep_batch(ch);
	for (i = 0; i < IPCSOCK_EP_RX_BATCH && used < room; i++) {
		if (ch->lc && wire_lc_ep_is_hdr(ch, i))
			wire_lc_ep_hdr_entry(ch, i, &ec->rx_mmsg[i].msg_hdr,
					     &ec->rx_iov[i]);
		else
			epoll_rx_entry(ch, i, (ec->rx_next + used++) %
					      ch->nr_rx);
	}
	return i;
}

static void epoll_rx(struct ipcsock_chan *ch)
{
	struct epoll_chan *ec = to_epoll_chan(ch);
	unsigned int i, k, slot, tail;
	int n;

	while (ch->sock && !ch->rx_done) {
		/*
		 * Slots fill and empty in order: with none busy, start
		 * again at slot 0, so that only as many slots as messages
		 * ever waited at once cost resident memory.
		 */
		if (!chan_rx_busy(ch))
			ec->rx_next = 0;
		k = chan_rx_limit(ch);
		if (k <= chan_rx_busy(ch))
			break;
		k = epoll_rx_layout(ch, k - chan_rx_busy(ch));
		n = recvmmsg(ch->fd, ec->rx_mmsg, k,
			     MSG_DONTWAIT | MSG_CMSG_CLOEXEC | MSG_TRUNC, NULL);
		if (n < 0) {
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				break;
			chan_end(ch, -errno);
			continue;
		}
		for (i = 0; i < (unsigned int)n; i++) {
			struct msghdr *mh = &ec->rx_mmsg[i].msg_hdr;

			if (ch->lc && wire_lc_ep_is_hdr(ch, i)) {
				wire_lc_rx(ch, -1, mh->msg_iov->iov_base,
					   ec->rx_mmsg[i].msg_len,
					   mh->msg_control, mh->msg_controllen,
					   mh->msg_flags);
				continue;
			}
			slot = ec->rx_next % ch->nr_rx;
			tail = ch->rx_tail;
			/*
			 * recvmmsg already took what follows from the socket:
			 * an empty datagram with data behind it is no EOF.
			 */
			chan_rx_datagram(ch, slot, ec->rx_mmsg[i].msg_len,
					 mh->msg_control, mh->msg_controllen,
					 mh->msg_flags,
					 epoll_data_after(ec, i + 1, n));
			if (ch->rx_tail != tail)
				ec->rx_next++;
		}
		if ((unsigned int)n < k)
			break;
	}
}

static void epoll_tx_start(struct ipcsock_chan *ch)
{
	int err;

	if (ch->tx_err || !ch->sock)
		return;
	err = chan_tx_flush_direct(ch);
	to_epoll_chan(ch)->tx_need_pollout = err == -EAGAIN;
	if (err && err != -EAGAIN)
		chan_end_send(ch, err);
	epoll_update(ch);
}

static bool epoll_tx_direct_ok(struct ipcsock_chan *ch, unsigned int count)
{
	(void)count;
	return !chan_tx_queued(ch);
}

static int epoll_poll(struct ipcsock_loop *loop, int timeout_ms)
{
	struct epoll_event evs[EP_EVENTS];
	int i, n, epfd = to_epoll_loop(loop)->epfd;
	struct ipcsock_chan *ch;
	uint64_t start, spin = 0, end;
	bool spun = false;

	n = 0;
	if (timeout_ms)
		spin = loop_wait_begin(loop, &start);
	if (spin) {
		end = start + spin;
		/* Low-latency mode: spin instead of sleeping, for a while. */
		do {
			n = epoll_wait(epfd, evs, EP_EVENTS, 0);
		} while (!n && loop_now_ns() < end);
		if (!n)
			loop_wait_spun(loop, start, false);
	}
	if (spin && n > 0) {
		/* Judged once the events are handled, see loop_wait_spun(). */
		spun = true;
	} else if (!n) {
		n = epoll_wait(epfd, evs, EP_EVENTS, timeout_ms);
		if (timeout_ms)
			loop_wait_slept(loop);
	}
	if (n < 0)
		return -errno;
	for (i = 0; i < n; i++) {
		/*
		 * A send that reaps for room gets here too: reading the
		 * eventfd then would leave the loop fd quiet with callbacks
		 * due. Inside dispatch, a wait that found it set would spin.
		 */
		if (evs[i].data.u64 == EP_EVFD_TAG) {
			if (loop->dispatching)
				loop_evfd_drain(loop);
			continue;
		}
		ch = loop_chan_lookup(loop, (uint32_t)(evs[i].data.u64 &
						      ~EP_PIDFD_TAG),
				      evs[i].data.u64 >> 32);
		if (!ch || !ch->sock)
			continue;
		if (evs[i].data.u64 & EP_PIDFD_TAG) {
			epoll_pidfd_remove(ch);
			chan_peer_exited(ch);
			continue;
		}
		if ((to_epoll_chan(ch)->events & EPOLLOUT) &&
		    (evs[i].events & (EPOLLOUT | EPOLLERR | EPOLLHUP)))
			epoll_tx_start(ch);
		if ((to_epoll_chan(ch)->events & EPOLLIN) &&
		    (evs[i].events & (EPOLLIN | EPOLLERR | EPOLLHUP)))
			epoll_rx(ch);
		epoll_update(ch);
	}
	if (spun)
		loop_wait_spun(loop, start, true);
	return 0;
}

static int epoll_submit(struct ipcsock_loop *loop)
{
	(void)loop;
	return 0;
}

static int epoll_chan_open(struct ipcsock_chan *ch)
{
	epoll_update(ch);
	return to_epoll_chan(ch)->events ? 0 : -errno;
}

/* Out of the epoll set; the fd stays open. Also the first step of close. */
static void epoll_chan_destroy(struct ipcsock_chan *ch)
{
	struct epoll_chan *ec = to_epoll_chan(ch);

	if (ec->events && ch->fd >= 0)
		epoll_ctl(to_epoll_loop(ch->loop)->epfd, EPOLL_CTL_DEL, ch->fd,
			  NULL);
	ec->events = 0;
	epoll_pidfd_remove(ch);
}

static void epoll_chan_close(struct ipcsock_chan *ch)
{
	if (!ch->tx_err)
		chan_tx_flush_direct(ch);
	chan_tx_drop(ch, 0);
	epoll_chan_destroy(ch);
	close(ch->fd);
	ch->fd = -1;
}

static void epoll_rx_recycle(struct ipcsock_chan *ch, unsigned int slot)
{
	(void)slot;
	epoll_update(ch);
}

/* A failed channel wants no EPOLLIN any more, nor its peer's exit. */
static void epoll_rx_stop(struct ipcsock_chan *ch)
{
	epoll_update(ch);
	epoll_pidfd_remove(ch);
}

static int epoll_loop_init(struct ipcsock_loop *loop, struct io_uring *shared)
{
	struct epoll_loop *el = to_epoll_loop(loop);

	if (shared)
		return -EINVAL;
	el->epfd = epoll_create1(EPOLL_CLOEXEC);
	return el->epfd < 0 ? -errno : 0;
}

static bool epoll_loop_exit(struct ipcsock_loop *loop)
{
	struct epoll_loop *el = to_epoll_loop(loop);

	if (el->epfd >= 0)
		close(el->epfd);
	el->epfd = -1;
	return true;
}

/* The parent's epoll set: no channel of ours is in it as far as we know. */
static void epoll_loop_orphan(struct ipcsock_loop *loop)
{
	unsigned int i;

	for (i = 0; i < loop->nr_chans; i++)
		if (loop->chans[i]) {
			to_epoll_chan(loop->chans[i])->events = 0;
			to_epoll_chan(loop->chans[i])->pidfd_in_set = false;
		}
	epoll_loop_exit(loop);
}

static int epoll_loop_fd(struct ipcsock_loop *loop)
{
	return to_epoll_loop(loop)->epfd;
}

static int epoll_loop_attach_evfd(struct ipcsock_loop *loop)
{
	struct epoll_event ev = {
		.events = EPOLLIN,
		.data.u64 = EP_EVFD_TAG,
	};

	if (epoll_ctl(to_epoll_loop(loop)->epfd, EPOLL_CTL_ADD, loop->evfd,
		      &ev))
		return -errno;
	return 0;
}

const struct ipcsock_backend_ops ipcsock_epoll_ops = {
	.id = IPCSOCK_BACKEND_EPOLL,
	IPCSOCK_BACKEND_OPS(epoll),
};
