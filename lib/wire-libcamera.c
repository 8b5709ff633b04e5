// SPDX-License-Identifier: MIT
/*
 * The libcamera wire mode (IPCSOCK_WIRE_LIBCAMERA): libcamera's
 * IPCUnixSocket format (see wire.h) on a SOCK_DGRAM channel, two datagrams
 * per message, with the checks libcamera leaves out.
 *
 * Send side: a queued message is one send slot, as in the native mode,
 * that yields two datagrams, its header and its payload; the backends walk
 * the queue datagram by datagram (chan_tx_msg(), chan_tx_sent()). tx_half
 * says that the head slot's header went out and its payload did not (the
 * socket filled between the two): that payload is then the next datagram
 * of the queue, so nothing can go between the two halves of a message on
 * any path, and nothing goes before it.
 *
 * Receive side: each datagram is checked against what the previous one
 * left: a header is awaited, or the payload a header announced. Anything
 * else fails the channel with the fds that came closed; a message is
 * queued only once its payload matched its header.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

/* One header datagram of a send slot: sent on its own, no fds. */
struct wire_lc_tx {
	struct msghdr msg;
	struct iovec iov;
};

/* epoll: a header datagram lands here, not in a receive slot. */
struct wire_lc_ep_hdr {
	struct ipcsock_wire_lc_hdr hdr;
	/* A hostile header may carry fds: they must be seen to be closed. */
	unsigned char ctrl[IPCSOCK_CTRL_LEN] __attribute__((aligned(8)));
};

#define WIRE_LC_EP_HDRS	(IPCSOCK_EP_RX_BATCH / 2)

struct wire_lc {
	/* Receive: a header came, its payload of this size is next. */
	bool rx_hdr;
	uint32_t rx_len;
	unsigned int rx_nr_fds;
	bool ep_phase;			/* rx_hdr when the epoll batch began */

	/* Send: the head slot's header is out, its payload is not. */
	bool tx_half;
	struct wire_lc_tx *tx;		/* one per send slot */

	struct wire_lc_ep_hdr *ep_hdr;	/* epoll only */
};

int wire_lc_alloc(struct ipcsock_chan *ch)
{
	struct ipcsock_loop *loop = ch->loop;
	struct wire_lc *lc;

	lc = calloc(1, sizeof(*lc));
	if (!lc)
		return -ENOMEM;
	ch->lc = lc;
	lc->tx = calloc(loop->tx_slots, sizeof(*lc->tx));
	if (!lc->tx)
		return -ENOMEM;
	if (loop->ops == &ipcsock_epoll_ops) {
		lc->ep_hdr = calloc(WIRE_LC_EP_HDRS, sizeof(*lc->ep_hdr));
		if (!lc->ep_hdr)
			return -ENOMEM;
	}
	return 0;
}

void wire_lc_free(struct ipcsock_chan *ch)
{
	if (!ch->lc)
		return;
	free(ch->lc->tx);
	free(ch->lc->ep_hdr);
	free(ch->lc);
	ch->lc = NULL;
}

/*
 * slot_fill() laid the slot out as [control][8-byte header][bytes]: make
 * the header libcamera's, a datagram of its own, and the payload datagram
 * the bytes alone with the control message. @seq is the slot's place in
 * the queue, which the header datagram's own msghdr follows.
 */
void wire_lc_slot_fill(struct ipcsock_chan *ch, unsigned int seq,
		       struct ipcsock_tx_slot *slot, void *hdr_at, uint32_t len,
		       unsigned int nr_fds)
{
	struct wire_lc_tx *t = &ch->lc->tx[seq & (ch->loop->tx_slots - 1)];
	struct ipcsock_wire_lc_hdr *hdr = hdr_at;

	memset(hdr, 0, sizeof(*hdr));
	hdr->data = len;
	hdr->fds = nr_fds;
	slot->iov.iov_base = hdr + 1;
	slot->iov.iov_len = len;
	memset(&t->msg, 0, sizeof(t->msg));
	t->iov.iov_base = hdr;
	t->iov.iov_len = sizeof(*hdr);
	t->msg.msg_iov = &t->iov;
	t->msg.msg_iovlen = 1;
}

unsigned int wire_lc_tx_datagrams(const struct ipcsock_chan *ch)
{
	return 2 * chan_tx_queued(ch) - ch->lc->tx_half;
}

/* Datagram @i of the queue, counted from the next one to go. */
struct msghdr *wire_lc_tx_msg(struct ipcsock_chan *ch, unsigned int i)
{
	unsigned int d = ch->lc->tx_half + i;
	unsigned int seq = ch->tx_head + d / 2;

	if (d & 1)
		return &chan_tx_slot(ch, seq)->msg;
	return &ch->lc->tx[seq & (ch->loop->tx_slots - 1)].msg;
}

/* The next @n datagrams of the queue went out (or are given up on). */
void wire_lc_tx_sent(struct ipcsock_chan *ch, unsigned int n)
{
	unsigned int d = ch->lc->tx_half + n;

	ch->lc->tx_half = d & 1;
	chan_tx_release(ch, d / 2);
	if (d & 1)
		ch->loop->tx_progress = true;
}

bool wire_lc_tx_half(const struct ipcsock_chan *ch)
{
	return ch->lc->tx_half;
}

/* Slots that hold the next @sends datagrams. */
unsigned int wire_lc_tx_slots(const struct ipcsock_chan *ch,
			      unsigned int sends)
{
	return sends ? (sends + ch->lc->tx_half + 1) / 2 : 0;
}

void wire_lc_tx_dropped(struct ipcsock_chan *ch)
{
	if (!chan_tx_queued(ch))
		ch->lc->tx_half = false;
}

/*
 * Message @i of the direct path's sendmmsg vector (at most half the
 * scratch) is two entries: its header, then its payload, pointing at the
 * caller's bytes. Returns the payload's msghdr, for the caller to attach
 * the fds to.
 */
struct msghdr *wire_lc_direct_msg(struct ipcsock_loop *loop,
				  const struct ipcsock_payload *p,
				  unsigned int i)
{
	struct ipcsock_wire_lc_hdr *hdr = &loop->tx_lc_hdr[i];
	struct iovec *iov = &loop->tx_iov[2 * i];
	struct msghdr *mh = &loop->tx_mmsg[2 * i].msg_hdr;

	memset(hdr, 0, sizeof(*hdr));
	hdr->data = p->len;
	hdr->fds = p->nr_fds;
	iov[0].iov_base = hdr;
	iov[0].iov_len = sizeof(*hdr);
	memset(mh, 0, sizeof(*mh));
	mh->msg_iov = &iov[0];
	mh->msg_iovlen = 1;

	iov[1].iov_base = (void *)p->data; /* sendmsg only reads */
	iov[1].iov_len = p->len;
	mh = &loop->tx_mmsg[2 * i + 1].msg_hdr;
	memset(mh, 0, sizeof(*mh));
	mh->msg_iov = &iov[1];
	mh->msg_iovlen = 1;
	return mh;
}

/* A header datagram: nothing queued yet, the payload it announces is next. */
static int rx_header(struct ipcsock_chan *ch, const void *data, size_t len,
		     unsigned int nr_fds, int msg_flags)
{
	struct ipcsock_wire_lc_hdr hdr;

	/*
	 * Exactly a header and no fds: a lone payload, or one after a lost
	 * header, shows here, unless it happens to look like a header.
	 */
	if (len != sizeof(hdr) || nr_fds)
		return -EPROTO;
	if (msg_flags & (MSG_TRUNC | MSG_CTRUNC))
		return -EPROTO;
	memcpy(&hdr, data, sizeof(hdr));
	/* libcamera refuses to send an empty message, so do we. */
	if ((!hdr.data && !hdr.fds) || hdr.fds > IPCSOCK_MAX_FDS)
		return -EPROTO;
	if (hdr.data > ch->loop->max_msg_size)
		return -EMSGSIZE;
	ch->lc->rx_hdr = true;
	ch->lc->rx_len = hdr.data;
	ch->lc->rx_nr_fds = hdr.fds;
	return 0;
}

/* A payload datagram must be exactly what its header announced. */
static int rx_payload(struct ipcsock_chan *ch, int slot, size_t len,
		      unsigned int nr_fds, int msg_flags)
{
	struct wire_lc *lc = ch->lc;

	lc->rx_hdr = false;
	if (slot < 0 || len != lc->rx_len)
		return -EPROTO;
	/* The kernel closed the fds that did not fit; those that did are ours. */
	if (msg_flags & MSG_CTRUNC)
		return -EMFILE;
	if (msg_flags & MSG_TRUNC)
		return -EMSGSIZE;
	if (nr_fds != lc->rx_nr_fds)
		return -EPROTO;
	return 0;
}

/*
 * The backend received a datagram of @len bytes (the full length, also
 * when truncated) at @data, into receive slot @slot, or -1 when it is an
 * epoll header entry, which has no slot. Expected header or payload, it is
 * checked as such; a payload that matches its header becomes a message.
 */
void wire_lc_rx(struct ipcsock_chan *ch, int slot, const void *data,
		size_t len, void *ctrl, size_t ctrl_len, int msg_flags)
{
	unsigned int nr_fds;
	int *fds, err;

	/* A datagram socket has no end of file: every one counts. */
	ch->st.rx_datagrams++;
	err = chan_rx_parse_ctrl(ctrl, ctrl_len, &fds, &nr_fds);
	if (!err && (!ch->sock || ch->rx_done))
		err = -ECANCELED;
	if (!err && !ch->lc->rx_hdr) {
		err = rx_header(ch, data, len, nr_fds, msg_flags);
		if (!err) {
			if (slot >= 0)
				ch->loop->ops->rx_recycle(ch, slot);
			return;
		}
	} else if (!err) {
		err = rx_payload(ch, slot, len, nr_fds, msg_flags);
	}
	if (err) {
		chan_rx_reject(ch, slot, fds, nr_fds, err);
		return;
	}
	chan_rx_queue(ch, slot, (void *)data, len, fds, nr_fds, 0);
}

/* epoll: which entries of the next batch are headers (see ep_rx()). */
void wire_lc_ep_batch(struct ipcsock_chan *ch)
{
	ch->lc->ep_phase = ch->lc->rx_hdr;
}

bool wire_lc_ep_is_hdr(const struct ipcsock_chan *ch, unsigned int i)
{
	return !((i + ch->lc->ep_phase) & 1);
}

/* A header entry of the batch: 8 bytes of scratch and room for fds. */
void wire_lc_ep_hdr_entry(struct ipcsock_chan *ch, unsigned int i,
			  struct msghdr *mh, struct iovec *iov)
{
	struct wire_lc_ep_hdr *e = &ch->lc->ep_hdr[i / 2];

	iov->iov_base = &e->hdr;
	iov->iov_len = sizeof(e->hdr);
	mh->msg_name = NULL;
	mh->msg_namelen = 0;
	mh->msg_iov = iov;
	mh->msg_iovlen = 1;
	mh->msg_control = e->ctrl;
	mh->msg_controllen = sizeof(e->ctrl);
	mh->msg_flags = 0;
}
