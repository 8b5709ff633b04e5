// SPDX-License-Identifier: MIT
/*
 * The receive side: receive slots, checking each datagram against the
 * wire format, the queue of messages waiting for ipcsock_receive(), and
 * the end of the channel (EOF, peer reset, failure) that becomes hangup.
 *
 * The peer may be hostile. A datagram is delivered only when it is exactly
 * one whole message, or a record of whole messages (wire.h): bytes not
 * truncated, every announced fd present, valid headers that add up.
 * Anything else closes the fds that did arrive and fails the channel, so
 * no fd leaks and no partial message is ever seen as whole; of a record,
 * nothing is delivered unless all of it is valid.
 */
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>
#include <linux/sockios.h>

#include "internal.h"
#include "trace.h"

void close_fds(const int *fds, unsigned int n)
{
	while (n--)
		close(*fds++);
}

int chan_rx_alloc(struct ipcsock_chan *ch)
{
	struct ipcsock_loop *loop = ch->loop;
	size_t page = sysconf(_SC_PAGESIZE);
	void *mem;

	ch->nr_rx = loop->recv_buffers;
	ch->rx_cost16 = 16;
	/*
	 * Slots start on a page: the headers and a small message then
	 * touch one page a slot, never two.
	 */
	ch->rx_stride = (IPCSOCK_RX_DATA_OFF + loop->max_msg_size +
			 page - 1) & ~(size_t)(page - 1);
	/* 4 MiB x 4096 buffers does not fit a 32-bit size_t. */
	if (ch->rx_stride > SIZE_MAX / ch->nr_rx)
		return -ENOMEM;
	ch->rx_mem_len = ch->rx_stride * ch->nr_rx;
	/*
	 * Sized for the largest message, but only the pages a message
	 * touches become resident: small messages cost a page or two a slot.
	 */
	mem = mmap(NULL, ch->rx_mem_len, PROT_READ | PROT_WRITE,
		   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (mem == MAP_FAILED)
		return -errno;
	ch->rx_mem = mem;
	ch->rxq = calloc(ch->nr_rx, sizeof(*ch->rxq));
	if (!ch->rxq)
		return -ENOMEM;
	return 0;
}

void chan_rx_free(struct ipcsock_chan *ch)
{
	if (ch->rx_mem)
		munmap(ch->rx_mem, ch->rx_mem_len);
	ch->rx_mem = NULL;
	free(ch->rxq);
	ch->rxq = NULL;
}

/*
 * Slots that hold a datagram: pending ones (a record stays pending until
 * its last message is received) plus the one last handed out.
 */
unsigned int chan_rx_busy(const struct ipcsock_chan *ch)
{
	return ch->rx_tail - ch->rx_head + (ch->rx_held >= 0);
}

/*
 * Messages never received: their fds were ours to close (of a record, the
 * fds of the messages not received yet).
 */
void chan_rx_drop_pending(struct ipcsock_chan *ch)
{
	struct ipcsock_rx_msg *m;

	while (ch->rx_head != ch->rx_tail) {
		m = &ch->rxq[ch->rx_head++ % ch->nr_rx];
		close_fds(m->fds, m->nr_fds);
	}
}

/*
 * Is the application closing with messages of the peer's it never
 * received? Those pending, and those the kernel already took out of the
 * socket for the channel that are not yet turned into messages.
 */
static bool chan_rx_unreceived(struct ipcsock_chan *ch)
{
	const struct ipcsock_backend_ops *ops = ch->loop->ops;

	return chan_rx_pending(ch) || (ops->rx_unreaped &&
				       ops->rx_unreaped(ch));
}

/*
 * The application closes the channel: messages it never received are
 * dropped, their fds closed. The peer's messages are out of the socket
 * then, in our buffers: the kernel sees an empty receive queue and would
 * report an orderly close, so the peer is told by a reset notice.
 */
void chan_rx_close(struct ipcsock_chan *ch)
{
	bool unreceived = chan_rx_unreceived(ch);

	chan_rx_drop_pending(ch);
	if (unreceived)
		chan_tx_reset_notice(ch);
}

/*
 * The channel ends: no message comes after those already queued, the
 * hang-up reports @err after them (0: the peer closed in order), sending
 * is over, and the backend stops receiving. Whatever the source, a
 * receive, a send or a check that failed, every end comes through here.
 *
 * A receive error is no end when it says try again (-EAGAIN, -EINTR) or
 * is our own cancel (-ECANCELED). Nor is -ECONNRESET: the peer closed
 * with messages of ours unread, which AF_UNIX reports once, possibly
 * before messages still queued for us; it is kept for the hang-up, and
 * receiving goes on until EOF (the libcamera mode's datagram channel has
 * no EOF: there it ends the channel).
 */
void chan_end(struct ipcsock_chan *ch, int err)
{
	switch (err) {
	case -EAGAIN:
	case -EINTR:
	case -ECANCELED:
		return;
	case -ECONNRESET:
		/* A datagram channel has no reset to wait for: it failed. */
		if (ch->lc)
			break;
		ch->rx_reset = err;
		return;
	}
	if (ch->rx_done)
		return;
	ch->rx_done = true;
	ch->hup_due = true;
	ch->hup_err = err ? err : ch->rx_reset;
	/* An end of file or the peer's exit is no failure. */
	if (err && err != -ESRCH)
		IPCSOCK_TRACE(fail, ch->sock, err);
	chan_end_send(ch, -EPIPE);
	loop_mark_ready(ch);
	ch->loop->ops->rx_stop(ch);
}

/*
 * The end of file: did the peer close with messages of ours unread? Its
 * close sets our socket's pending error (ECONNRESET) and its shutdown
 * together (unix_release_sock() in net/unix/af_unix.c), and a receive
 * reports the error once, before anything queued: it takes sock_error()
 * first (__skb_try_recv_datagram(), net/core/datagram.c). But a receive
 * that found no error just before the close and the queue empty just
 * after it sees only the shutdown (__unix_dgram_recvmsg() reads it last)
 * and returns EOF, the error left pending. A peer in another process can
 * close in that window, and so can one in this thread while an SQPOLL
 * ring's kernel thread receives; a zero-length datagram taken in before
 * the close ends the same way. Nothing reads the socket after the end:
 * take the error here, or the reset would read as an orderly close.
 */
static void eof_take_reset(struct ipcsock_chan *ch)
{
	socklen_t len = sizeof(int);
	int err = 0;

	if (!getsockopt(ch->fd, SOL_SOCKET, SO_ERROR, &err, &len) &&
	    err == ECONNRESET)
		ch->rx_reset = -ECONNRESET;
}

/*
 * A datagram with no bytes and no fds is what EOF looks like too; a peer
 * that really hung up shows it in poll. Our own peers never send empty
 * datagrams, so one from a live peer is a protocol error. @more: the
 * backend already took data that followed it out of the socket.
 */
static int empty_datagram(struct ipcsock_chan *ch, bool more)
{
	struct pollfd pfd = { .fd = ch->fd, .events = POLLRDHUP };
	int queued = 0;

	if (more)
		return -EPROTO;
	if (poll(&pfd, 1, 0) != 1 || !(pfd.revents & (POLLRDHUP | POLLHUP)))
		return -EPROTO;
	/* Bytes queued behind it: it was a datagram, the EOF comes later. */
	if (!ioctl(ch->fd, SIOCINQ, &queued) && queued > 0)
		return -EPROTO;
	eof_take_reset(ch);
	return 0;
}

/* Find the fds of a datagram; other control messages are protocol errors. */
int chan_rx_parse_ctrl(void *ctrl, size_t ctrl_len, int **fds,
		       unsigned int *nr_fds)
{
	struct msghdr msg = {
		.msg_control = ctrl,
		.msg_controllen = ctrl_len,
	};
	struct cmsghdr *cmsg;
	int err = 0;

	*fds = NULL;
	*nr_fds = 0;
	for (cmsg = CMSG_FIRSTHDR(&msg); cmsg; cmsg = CMSG_NXTHDR(&msg, cmsg)) {
		if (cmsg->cmsg_level == SOL_SOCKET &&
		    cmsg->cmsg_type == SCM_RIGHTS && !*fds) {
			*fds = (int *)CMSG_DATA(cmsg);
			*nr_fds = (cmsg->cmsg_len - CMSG_LEN(0)) / sizeof(int);
			continue;
		}
		/* A second SCM_RIGHTS would need closing too: fail safe. */
		if (cmsg->cmsg_level == SOL_SOCKET &&
		    cmsg->cmsg_type == SCM_RIGHTS)
			close_fds((int *)CMSG_DATA(cmsg),
				  (cmsg->cmsg_len - CMSG_LEN(0)) / sizeof(int));
		err = -EPROTO;
	}
	return err;
}

/*
 * A record of @len bytes at @hdr, its header checked: do its entries add
 * up to exactly its bytes, its message count and its @nr_fds fds? Each
 * entry is a message with bytes or fds, of at most max_msg_size bytes.
 * All 64-bit sums of 32-bit fields: nothing overflows.
 */
static int check_record(struct ipcsock_chan *ch,
			const struct ipcsock_wire_hdr *hdr, size_t len,
			unsigned int nr_fds, unsigned int *nr_msgs)
{
	const struct ipcsock_wire_rec *rec = (const void *)(hdr + 1);
	const unsigned char *at = (const void *)hdr;
	const struct ipcsock_wire_entry *e;
	uint64_t fds = 0, off = IPCSOCK_WIRE_REC_HDR;
	unsigned int n = 0;

	/* As large as a version 1 datagram can be, no more. */
	if (len > ch->loop->max_msg_size + sizeof(*hdr))
		return -EMSGSIZE;
	if (len < IPCSOCK_WIRE_REC_HDR || hdr->flags || rec->zero)
		return -EPROTO;
	while (off < len) {
		if (len - off < sizeof(*e))
			return -EPROTO;
		e = (const void *)(at + off);
		if (e->zero || (!e->len && !e->nr_fds))
			return -EPROTO;
		if (e->len > ch->loop->max_msg_size)
			return -EMSGSIZE;
		if (IPCSOCK_WIRE_ENTRY_SIZE(e->len) > len - off)
			return -EPROTO;
		off += IPCSOCK_WIRE_ENTRY_SIZE(e->len);
		fds += e->nr_fds;
		n++;
	}
	if (!n || n != rec->nr_msgs || fds != nr_fds)
		return -EPROTO;
	*nr_msgs = n;
	return 0;
}

/*
 * What a record costs: receive buffers count messages, and a record fills
 * one buffer as far as its messages would have filled buffers of their
 * own, but it may hold many more of them. Each message alone would have
 * kept at least a page of its buffer resident; a record keeps the pages
 * it fills. So a record of @len bytes and @nr_msgs messages costs one
 * buffer per page, or per message when it has fewer, and a message alone
 * costs one, whatever its size: recv_buffers small messages, or records
 * of as many pages, keep at most recv_buffers pages resident, as before
 * records, while large messages keep their recv_buffers buffers.
 */
#define RX_COST_PAGE	4096u

static void rx_cost_seen(struct ipcsock_chan *ch, size_t len,
			 unsigned int nr_msgs)
{
	unsigned int cost = 1, c16;

	if (nr_msgs) {
		cost = (IPCSOCK_RX_HDR_OFF + len + RX_COST_PAGE - 1) /
		       RX_COST_PAGE;
		if (cost > nr_msgs)
			cost = nr_msgs;
	}
	/*
	 * Buffers the kernel fills are taken before their datagrams are
	 * seen: the limit follows what came lately. Up at once, so that a
	 * burst of records cannot fill every buffer; down slowly, by an
	 * eighth of the way a datagram, so that one message alone among
	 * records does not open every buffer to them again.
	 */
	c16 = cost * 16;
	if (c16 >= ch->rx_cost16)
		ch->rx_cost16 = c16;
	else
		ch->rx_cost16 -= (ch->rx_cost16 - c16 + 63) / 64;
}

/*
 * 0: a message, or a record of *@nr_msgs (else 0); 1: the reset notice;
 * else why the datagram is no message.
 */
static int check_datagram(struct ipcsock_chan *ch, unsigned int slot,
			  size_t len, unsigned int nr_fds, int msg_flags,
			  unsigned int *nr_msgs)
{
	const struct ipcsock_wire_hdr *hdr;

	*nr_msgs = 0;
	/* The kernel closed the fds that did not fit; those that did are ours. */
	if (msg_flags & MSG_CTRUNC)
		return -EMFILE;
	if (msg_flags & MSG_TRUNC)
		return -EMSGSIZE;
	if (len < sizeof(*hdr))
		return -EPROTO;
	hdr = (const void *)(rx_slot_buf(ch, slot) + IPCSOCK_RX_HDR_OFF);
	if (hdr->len != len - sizeof(*hdr) || hdr->nr_fds != nr_fds ||
	    nr_fds > IPCSOCK_MAX_FDS)
		return -EPROTO;
	if (hdr->version == IPCSOCK_WIRE_RECORD)
		return check_record(ch, hdr, len, nr_fds, nr_msgs);
	if (hdr->version != IPCSOCK_WIRE_VERSION)
		return -EPROTO;
	/* The one flag there is, on a header that carries nothing. */
	if (hdr->flags == IPCSOCK_WIRE_F_RESET && !hdr->len && !nr_fds)
		return 1;
	if (hdr->flags)
		return -EPROTO;
	/* The slot may have room to spare; the limit is the option. */
	if (hdr->len > ch->loop->max_msg_size)
		return -EMSGSIZE;
	return 0;
}

/*
 * A datagram that is no message: close the fds that came with it and,
 * unless the channel was over already, fail it. @slot is free again (-1:
 * an epoll header entry of the libcamera mode, which has none).
 */
void chan_rx_reject(struct ipcsock_chan *ch, int slot, const int *fds,
		    unsigned int nr_fds, int err)
{
	close_fds(fds, nr_fds);
	if (err != -ECANCELED)
		chan_end(ch, err);
	if (ch->sock && slot >= 0)
		ch->loop->ops->rx_recycle(ch, slot);
}

/*
 * A whole message in @slot, or a checked record of @nr_msgs messages
 * whose entries start at @data (@len bytes): queue it for
 * ipcsock_receive().
 */
void chan_rx_queue(struct ipcsock_chan *ch, unsigned int slot, void *data,
		   size_t len, int *fds, unsigned int nr_fds,
		   unsigned int nr_msgs)
{
	struct ipcsock_rx_msg *m = &ch->rxq[ch->rx_tail++ % ch->nr_rx];
	const struct ipcsock_wire_entry *e = data;
	unsigned int i;

	m->slot = slot;
	m->data = data;
	m->len = len;
	m->fds = nr_fds ? fds : NULL;
	m->nr_fds = nr_fds;
	m->left = nr_msgs;
	ch->st.rx_msgs += nr_msgs ? nr_msgs : 1;
	ch->st.rx_records += !!nr_msgs;
	ch->st.rx_fds += nr_fds;
	if (!nr_msgs)
		ch->st.rx_bytes += len;
	for (i = 0; i < nr_msgs; i++) {
		ch->st.rx_bytes += e->len;
		e = (const void *)((const unsigned char *)e +
				   IPCSOCK_WIRE_ENTRY_SIZE(e->len));
	}
	if (chan_rx_busy(ch) > ch->st.rx_bufs_max)
		ch->st.rx_bufs_max = chan_rx_busy(ch);
	loop_mark_ready(ch);
}

/*
 * The backend received a datagram into @slot: @len bytes in all (the full
 * length, also when truncated), control data at @ctrl; @more when it
 * already received what followed. Queue it as a message, or close its
 * fds and end the channel.
 */
void chan_rx_datagram(struct ipcsock_chan *ch, unsigned int slot, size_t len,
		      void *ctrl, size_t ctrl_len, int msg_flags, bool more)
{
	unsigned int nr_fds, nr_msgs = 0;
	int *fds, err;

	if (ch->lc) {
		wire_lc_rx(ch, slot, rx_slot_buf(ch, slot) + IPCSOCK_RX_HDR_OFF,
			   len, ctrl, ctrl_len, msg_flags);
		return;
	}
	err = chan_rx_parse_ctrl(ctrl, ctrl_len, &fds, &nr_fds);
	if (!err && (!ch->sock || ch->rx_done))
		err = -ECANCELED;
	if (!err && !len && !nr_fds &&
	    !(msg_flags & (MSG_TRUNC | MSG_CTRUNC))) {
		/* EOF, unless a live peer sent an empty datagram. */
		err = empty_datagram(ch, more);
		ch->st.rx_datagrams += !!err;
		chan_end(ch, err);
		/* After the end: the buffer goes back, no receive is armed. */
		ch->loop->ops->rx_recycle(ch, slot);
		return;
	}
	ch->st.rx_datagrams++;
	/* The peer said it was closing: only the end may follow. */
	if (!err && ch->rx_reset_notice)
		err = -EPROTO;
	if (!err)
		err = check_datagram(ch, slot, len, nr_fds, msg_flags,
				     &nr_msgs);
	if (err > 0) {
		/*
		 * A reset notice: the peer closes with messages of ours its
		 * application never received. Say so at the end of file,
		 * after every message before it, as for the kernel's reset.
		 */
		ch->rx_reset_notice = true;
		ch->rx_reset = -ECONNRESET;
		ch->loop->ops->rx_recycle(ch, slot);
		return;
	}
	if (err) {
		chan_rx_reject(ch, slot, fds, nr_fds, err);
		return;
	}
	rx_cost_seen(ch, len, nr_msgs);
	if (nr_msgs)
		chan_rx_queue(ch, slot, rx_slot_buf(ch, slot) +
			      IPCSOCK_RX_HDR_OFF + IPCSOCK_WIRE_REC_HDR,
			      len - IPCSOCK_WIRE_REC_HDR, fds, nr_fds, nr_msgs);
	else
		chan_rx_queue(ch, slot, rx_slot_buf(ch, slot) +
			      IPCSOCK_RX_DATA_OFF,
			      len - sizeof(struct ipcsock_wire_hdr), fds, nr_fds,
			      0);
}

/* The next message of a record @m: its view, and @m past it. */
static void rx_record_next(struct ipcsock_rx_msg *m,
			   struct ipcsock_payload *payload)
{
	const struct ipcsock_wire_entry *e = m->data;

	payload->data = e + 1;
	payload->len = e->len;
	payload->fds = e->nr_fds ? m->fds : NULL;
	payload->nr_fds = e->nr_fds;
	m->data = (unsigned char *)m->data + IPCSOCK_WIRE_ENTRY_SIZE(e->len);
	/* A record without fds has none: NULL + 0 is undefined in C. */
	if (e->nr_fds) {
		m->fds += e->nr_fds;
		m->nr_fds -= e->nr_fds;
	}
	m->left--;
}

int ipcsock_receive(struct ipcsock *sock, struct ipcsock_payload *payload)
{
	struct ipcsock_chan *ch;
	struct ipcsock_rx_msg *m;
	int err;

	if (!sock || !payload)
		return -EINVAL;
	err = sock_chan(sock, &ch);
	if (err)
		return err;
	if (ch->rx_held >= 0) {
		unsigned int slot = ch->rx_held;

		ch->rx_held = -1;
		ch->loop->ops->rx_recycle(ch, slot);
		loop_submit_if_outside(ch->loop);
		/* Recycling can receive more, or fail the channel. */
		loop_wake_if_pending(ch->loop);
	}
	if (!chan_rx_pending(ch))
		return -EAGAIN;
	m = &ch->rxq[ch->rx_head % ch->nr_rx];
	if (m->left) {
		rx_record_next(m, payload);
	} else {
		payload->data = m->data;
		payload->len = m->len;
		payload->fds = m->fds;
		payload->nr_fds = m->nr_fds;
	}
	/* The buffer is the caller's to read until the next receive. */
	if (!m->left) {
		ch->rx_head++;
		ch->rx_held = m->slot;
	}
	IPCSOCK_TRACE(receive, sock, payload->len, payload->nr_fds);
	return 0;
}
