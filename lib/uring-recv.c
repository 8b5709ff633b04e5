// SPDX-License-Identifier: MIT
/*
 * io_uring backend, receive side: one multishot IORING_OP_RECVMSG per
 * channel over a provided buffer ring of the channel's own, so a channel
 * whose messages are not being received runs out of buffers and stops,
 * throttling only its own peer. The multishot request ends on EOF,
 * errors, CQ overflow and running out of buffers; it is re-armed for as
 * long as the channel lives and has a free buffer.
 */
#include <errno.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "uring.h"

/* Register the channel's buffer ring and hand it every receive slot. */
int uring_rx_open(struct ipcsock_chan *ch)
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

	/* Only the layout matters to multishot: no name, room for 253 fds. */
	memset(&ch->rx_tmpl, 0, sizeof(ch->rx_tmpl));
	ch->rx_tmpl.msg_controllen = IPCSOCK_CTRL_LEN;
	uring_rx_arm(ch);
	return 0;
}

/* Called once nothing is in flight: the kernel no longer writes here. */
void uring_rx_destroy(struct ipcsock_chan *ch)
{
	if (!ch->br)
		return;
	if (ch->loop->ring)
		io_uring_unregister_buf_ring(ch->loop->ring, ch->bgid);
	munmap(ch->br, ch->br_len);
	ch->br = NULL;
}

void uring_rx_arm(struct ipcsock_chan *ch)
{
	struct io_uring_sqe *sqe;

	if (ch->rx_armed || ch->rx_done || !ch->sock ||
	    chan_rx_busy(ch) >= ch->nr_rx)
		return;
	sqe = uring_get_sqe(ch->loop);
	if (!sqe) {
		uring_defer(ch, URING_DEFER_RX_ARM);
		return;
	}
	io_uring_prep_recvmsg_multishot(sqe, ch->fd, &ch->rx_tmpl,
					MSG_CMSG_CLOEXEC | MSG_TRUNC);
	sqe->flags |= IOSQE_BUFFER_SELECT;
	sqe->buf_group = ch->bgid;
	io_uring_sqe_set_data64(sqe, ipcsock_ud(ch, IPCSOCK_OP_RECV));
	uring_sqe_names_fd(ch);
	ch->rx_armed = true;
	uring_op_start(ch, 1);
}

void uring_rx_recycle(struct ipcsock_chan *ch, unsigned int slot)
{
	io_uring_buf_ring_add(ch->br, rx_slot_buf(ch, slot), ch->rx_stride,
			      slot, io_uring_buf_ring_mask(ch->nr_rx), 0);
	io_uring_buf_ring_advance(ch->br, 1);
	uring_rx_arm(ch);
}

void uring_rx_stop(struct ipcsock_chan *ch)
{
	/* A receive still waiting for an SQE is simply never armed. */
	uring_undefer(ch, URING_DEFER_RX_ARM);
	if (ch->rx_armed)
		uring_cancel(ch, IPCSOCK_OP_RECV);
}

void uring_rx_cqe(struct ipcsock_chan *ch,
			 const struct io_uring_cqe *cqe)
{
	unsigned int slot;
	unsigned char *buf;
	struct io_uring_recvmsg_out *out;

	if (!(cqe->flags & IORING_CQE_F_MORE)) {
		ch->rx_armed = false;
		uring_op_done(ch);
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
				 out->flags, false);
	} else if (cqe->res < 0 && cqe->res != -ENOBUFS) {
		chan_rx_error(ch, cqe->res);
	}
	/* Ended for want of buffers, CQ overflow or a reset: go on. */
	uring_rx_arm(ch);
}
