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
#include <stdlib.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "internal.h"

#define EP_RX_BATCH	32u
#define EP_EVENTS	64
#define EP_EVFD_TAG	UINT64_MAX

static uint64_t ep_tag(const struct ipcsock_chan *ch)
{
	return (uint64_t)ch->gen << 32 | ch->id;
}

static void ep_update(struct ipcsock_chan *ch)
{
	struct epoll_event ev = { .data.u64 = ep_tag(ch) };
	int op;

	if (ch->sock && !ch->rx_done && chan_rx_busy(ch) < ch->nr_rx)
		ev.events |= EPOLLIN;
	if (ch->sock && ch->tx_need_pollout && !ch->tx_err)
		ev.events |= EPOLLOUT;
	if (ev.events == ch->ep_events)
		return;
	if (!ev.events)
		op = EPOLL_CTL_DEL;
	else if (!ch->ep_events)
		op = EPOLL_CTL_ADD;
	else
		op = EPOLL_CTL_MOD;
	if (!epoll_ctl(ch->loop->epfd, op, ch->fd, &ev))
		ch->ep_events = ev.events;
}

static bool ep_data_after(struct ipcsock_chan *ch, unsigned int from,
			  unsigned int n)
{
	for (; from < n; from++)
		if (ch->rx_mmsg[from].msg_len ||
		    ch->rx_mmsg[from].msg_hdr.msg_controllen)
			return true;
	return false;
}

static void ep_rx(struct ipcsock_chan *ch)
{
	unsigned int i, k, slot, tail;
	int n;

	while (ch->sock && !ch->rx_done) {
		k = ch->nr_rx - chan_rx_busy(ch);
		if (!k)
			break;
		if (k > EP_RX_BATCH)
			k = EP_RX_BATCH;
		for (i = 0; i < k; i++) {
			unsigned char *buf;
			struct msghdr *mh = &ch->rx_mmsg[i].msg_hdr;

			buf = rx_slot_buf(ch, (ch->rx_next + i) % ch->nr_rx);
			ch->rx_iov[i].iov_base = buf + IPCSOCK_RX_HDR_OFF;
			ch->rx_iov[i].iov_len = ch->rx_stride -
						IPCSOCK_RX_HDR_OFF;
			mh->msg_name = NULL;
			mh->msg_namelen = 0;
			mh->msg_iov = &ch->rx_iov[i];
			mh->msg_iovlen = 1;
			mh->msg_control = buf + IPCSOCK_RX_CTRL_OFF;
			mh->msg_controllen = IPCSOCK_CTRL_LEN;
			mh->msg_flags = 0;
		}
		n = recvmmsg(ch->fd, ch->rx_mmsg, k,
			     MSG_DONTWAIT | MSG_CMSG_CLOEXEC | MSG_TRUNC, NULL);
		if (n < 0) {
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				break;
			chan_rx_error(ch, -errno);
			continue;
		}
		for (i = 0; i < (unsigned int)n; i++) {
			struct msghdr *mh = &ch->rx_mmsg[i].msg_hdr;

			slot = (ch->rx_next) % ch->nr_rx;
			tail = ch->rx_tail;
			/*
			 * recvmmsg already took what follows from the socket:
			 * an empty datagram with data behind it is no EOF.
			 */
			ch->rx_more = ep_data_after(ch, i + 1, n);
			chan_rx_datagram(ch, slot, ch->rx_mmsg[i].msg_len,
					 mh->msg_control, mh->msg_controllen,
					 mh->msg_flags);
			if (ch->rx_tail != tail)
				ch->rx_next++;
		}
		ch->rx_more = false;
		if ((unsigned int)n < k)
			break;
	}
}

static void ep_tx_start(struct ipcsock_chan *ch)
{
	int err;

	if (ch->tx_err || !ch->sock)
		return;
	err = chan_tx_flush_direct(ch);
	ch->tx_need_pollout = err == -EAGAIN;
	if (err && err != -EAGAIN)
		chan_tx_error(ch, err);
	ep_update(ch);
}

static bool ep_tx_direct_ok(struct ipcsock_chan *ch)
{
	return !chan_tx_queued(ch);
}

static int ep_poll(struct ipcsock_loop *loop, int timeout_ms)
{
	struct epoll_event evs[EP_EVENTS];
	struct ipcsock_chan *ch;
	int i, n;

	n = 0;
	if (timeout_ms && loop->busy_poll_us) {
		uint64_t end = loop_now_us() + loop->busy_poll_us;

		/* Low-latency mode: spin instead of sleeping, for a while. */
		do {
			n = epoll_wait(loop->epfd, evs, EP_EVENTS, 0);
		} while (!n && loop_now_us() < end);
	}
	if (!n)
		n = epoll_wait(loop->epfd, evs, EP_EVENTS, timeout_ms);
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
		ch = loop_chan_lookup(loop, (uint32_t)evs[i].data.u64,
				      evs[i].data.u64 >> 32);
		if (!ch || !ch->sock)
			continue;
		if ((ch->ep_events & EPOLLOUT) &&
		    (evs[i].events & (EPOLLOUT | EPOLLERR | EPOLLHUP)))
			ep_tx_start(ch);
		if ((ch->ep_events & EPOLLIN) &&
		    (evs[i].events & (EPOLLIN | EPOLLERR | EPOLLHUP)))
			ep_rx(ch);
		ep_update(ch);
	}
	return 0;
}

static int ep_submit(struct ipcsock_loop *loop)
{
	(void)loop;
	return 0;
}

static int ep_chan_open(struct ipcsock_chan *ch)
{
	ch->rx_mmsg = calloc(EP_RX_BATCH, sizeof(*ch->rx_mmsg));
	ch->rx_iov = calloc(EP_RX_BATCH, sizeof(*ch->rx_iov));
	if (!ch->rx_mmsg || !ch->rx_iov)
		return -ENOMEM;
	ep_update(ch);
	return ch->ep_events ? 0 : -errno;
}

static void ep_chan_close(struct ipcsock_chan *ch)
{
	if (!ch->tx_err)
		chan_tx_flush_direct(ch);
	chan_tx_drop(ch, 0);
	if (ch->ep_events)
		epoll_ctl(ch->loop->epfd, EPOLL_CTL_DEL, ch->fd, NULL);
	ch->ep_events = 0;
	close(ch->fd);
	ch->fd = -1;
}

static void ep_chan_destroy(struct ipcsock_chan *ch)
{
	if (ch->ep_events && ch->fd >= 0)
		epoll_ctl(ch->loop->epfd, EPOLL_CTL_DEL, ch->fd, NULL);
	ch->ep_events = 0;
	free(ch->rx_mmsg);
	free(ch->rx_iov);
	ch->rx_mmsg = NULL;
	ch->rx_iov = NULL;
}

static void ep_rx_recycle(struct ipcsock_chan *ch, unsigned int slot)
{
	(void)slot;
	ep_update(ch);
}

static int ep_loop_init(struct ipcsock_loop *loop, struct io_uring *shared)
{
	if (shared)
		return -EINVAL;
	loop->epfd = epoll_create1(EPOLL_CLOEXEC);
	return loop->epfd < 0 ? -errno : 0;
}

static void ep_loop_exit(struct ipcsock_loop *loop)
{
	if (loop->epfd >= 0)
		close(loop->epfd);
	loop->epfd = -1;
}

static int ep_attach_evfd(struct ipcsock_loop *loop)
{
	struct epoll_event ev = {
		.events = EPOLLIN,
		.data.u64 = EP_EVFD_TAG,
	};

	return epoll_ctl(loop->epfd, EPOLL_CTL_ADD, loop->evfd, &ev) ?
	       -errno : 0;
}

const struct ipcsock_backend_ops ipcsock_epoll_ops = {
	.id = IPCSOCK_BACKEND_EPOLL,
	.loop_init = ep_loop_init,
	.loop_exit = ep_loop_exit,
	.loop_attach_evfd = ep_attach_evfd,
	.poll = ep_poll,
	.submit = ep_submit,
	.chan_open = ep_chan_open,
	.chan_close = ep_chan_close,
	.chan_destroy = ep_chan_destroy,
	.tx_start = ep_tx_start,
	.tx_direct_ok = ep_tx_direct_ok,
	.rx_recycle = ep_rx_recycle,
	.rx_stop = ep_update,
};
