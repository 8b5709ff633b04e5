// SPDX-License-Identifier: MIT
/*
 * floor-uring: the fanin server on io_uring without the library, to tell
 * what io_uring's own mechanism costs: one ring (DEFER_TASKRUN where the
 * kernel has it), a multishot RECVMSG per channel drawing on one provided
 * buffer ring that every channel shares, and each echo a SEND SQE straight
 * from the buffer it arrived in, which goes back to the ring when the send
 * completes. A turn's sends go to the kernel together, with the wait.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include <liburing.h>

#include "ipcsock.h"
#include "fanin.h"

#define FU_BGID		1
/* The recvmsg_out header, the wire header and the payload, rounded up. */
#define FU_BUF_LEN	128u
#define FU_MAX_BUFS	32768u		/* a buffer ring's limit */

enum { FU_RECV = 1, FU_SEND };

struct fu_srv {
	struct io_uring ring;
	bool have_ring;
	int *fds;
	struct io_uring_buf_ring *br;
	size_t br_len;
	unsigned char *bufs;
	size_t bufs_len;
	unsigned int nr_bufs;
	struct msghdr tmpl;		/* multishot RECVMSG's layout */
};

static uint64_t fu_ud(unsigned int type, unsigned int chan, unsigned int bid)
{
	return (uint64_t)type << 56 | (uint64_t)bid << 24 | chan;
}

static struct io_uring_sqe *fu_sqe(struct fu_srv *p)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(&p->ring);

	if (!sqe) {
		io_uring_submit(&p->ring);
		sqe = io_uring_get_sqe(&p->ring);
	}
	return sqe;
}

static int fu_arm(struct fu_srv *p, unsigned int chan)
{
	struct io_uring_sqe *sqe = fu_sqe(p);

	if (!sqe)
		return -EBUSY;
	io_uring_prep_recvmsg_multishot(sqe, p->fds[chan], &p->tmpl, 0);
	sqe->flags |= IOSQE_BUFFER_SELECT;
	sqe->buf_group = FU_BGID;
	io_uring_sqe_set_data64(sqe, fu_ud(FU_RECV, chan, 0));
	return 0;
}

static void fu_recycle(struct fu_srv *p, unsigned int bid)
{
	io_uring_buf_ring_add(p->br, p->bufs + (size_t)bid * FU_BUF_LEN,
			      FU_BUF_LEN, bid,
			      io_uring_buf_ring_mask(p->nr_bufs), 0);
	io_uring_buf_ring_advance(p->br, 1);
}

static void fu_close(struct fanin_srv *s)
{
	struct fu_srv *p = s->priv;
	unsigned int i;

	if (!p)
		return;
	/* Closing the ring cancels what is in flight. */
	if (p->have_ring)
		io_uring_queue_exit(&p->ring);
	for (i = 0; p->fds && i < s->nr; i++)
		if (p->fds[i] >= 0)
			close(p->fds[i]);
	if (p->br)
		munmap(p->br, p->br_len);
	if (p->bufs)
		munmap(p->bufs, p->bufs_len);
	free(p->fds);
	free(p);
	s->priv = NULL;
}

static int fu_setup_bufs(struct fu_srv *p, unsigned int want)
{
	struct io_uring_buf_reg reg = { .bgid = FU_BGID };
	unsigned int i;

	p->nr_bufs = 1;
	while (p->nr_bufs < want && p->nr_bufs < FU_MAX_BUFS)
		p->nr_bufs <<= 1;
	p->br_len = p->nr_bufs * sizeof(struct io_uring_buf);
	p->br = mmap(NULL, p->br_len, PROT_READ | PROT_WRITE,
		     MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	p->bufs_len = (size_t)p->nr_bufs * FU_BUF_LEN;
	p->bufs = mmap(NULL, p->bufs_len, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p->br == MAP_FAILED || p->bufs == MAP_FAILED) {
		p->br = p->br == MAP_FAILED ? NULL : p->br;
		p->bufs = p->bufs == MAP_FAILED ? NULL : p->bufs;
		return -ENOMEM;
	}
	reg.ring_addr = (unsigned long)p->br;
	reg.ring_entries = p->nr_bufs;
	if (io_uring_register_buf_ring(&p->ring, &reg, 0))
		return -EOPNOTSUPP;
	io_uring_buf_ring_init(p->br);
	for (i = 0; i < p->nr_bufs; i++)
		fu_recycle(p, i);
	return 0;
}

static int fu_open(struct fanin_srv *s, const int *fds)
{
	/* Room for a completion of every message in flight, and its echo. */
	struct io_uring_params params = {
		.flags = IORING_SETUP_SINGLE_ISSUER |
			 IORING_SETUP_DEFER_TASKRUN | IORING_SETUP_CQSIZE |
			 IORING_SETUP_CLAMP,
		.cq_entries = 2 * s->nr * s->window,
	};
	struct fu_srv *p;
	unsigned int i;
	int err;

	/* At least the submission queue's twice, as the kernel wants. */
	if (params.cq_entries < 2 * IPCSOCK_DEFAULT_RING_ENTRIES)
		params.cq_entries = 2 * IPCSOCK_DEFAULT_RING_ENTRIES;
	p = calloc(1, sizeof(*p));
	if (!p)
		return -ENOMEM;
	s->priv = p;
	p->fds = malloc(s->nr * sizeof(*p->fds));
	if (!p->fds) {
		fu_close(s);
		return -ENOMEM;
	}
	for (i = 0; i < s->nr; i++)
		p->fds[i] = fds[i];
	err = io_uring_queue_init_params(IPCSOCK_DEFAULT_RING_ENTRIES, &p->ring,
					 &params);
	if (err) {
		fu_close(s);
		return err == -ENOMEM ? err : -EOPNOTSUPP;
	}
	p->have_ring = true;
	/* Every message in flight holds a buffer until its echo is sent. */
	err = fu_setup_bufs(p, s->nr * s->window);
	p->tmpl.msg_controllen = 0;
	for (i = 0; !err && i < s->nr; i++)
		err = fu_arm(p, i);
	if (err)
		fu_close(s);
	return err;
}

/* A received datagram: check it, echo it from its buffer. */
static int fu_recv(struct fanin_srv *s, struct io_uring_cqe *cqe,
		   unsigned int chan)
{
	struct fu_srv *p = s->priv;
	unsigned int bid = cqe->flags >> IORING_CQE_BUFFER_SHIFT;
	struct io_uring_recvmsg_out *o;
	const struct fanin_wire *w;
	struct io_uring_sqe *sqe;
	unsigned int len;

	o = io_uring_recvmsg_validate(p->bufs + (size_t)bid * FU_BUF_LEN,
				      cqe->res, &p->tmpl);
	len = o ? io_uring_recvmsg_payload_length(o, cqe->res, &p->tmpl) : 0;
	if (!len) {
		/* End of file: clients never send an empty datagram. */
		fu_recycle(p, bid);
		close(p->fds[chan]);
		p->fds[chan] = -1;
		fanin_srv_hangup(s);
		return 0;
	}
	w = io_uring_recvmsg_payload(o, &p->tmpl);
	if (len != FANIN_DGRAM_LEN || (o->flags & MSG_TRUNC) ||
	    fanin_srv_check(s, chan, w + 1, w->len))
		return -EPROTO;
	sqe = fu_sqe(p);
	if (!sqe)
		return -EBUSY;
	io_uring_prep_send(sqe, p->fds[chan], w, len, MSG_DONTWAIT);
	io_uring_sqe_set_data64(sqe, fu_ud(FU_SEND, chan, bid));
	return 0;
}

static int fu_cqe(struct fanin_srv *s, struct io_uring_cqe *cqe)
{
	struct fu_srv *p = s->priv;
	unsigned int type = cqe->user_data >> 56;
	unsigned int chan = cqe->user_data & 0xffffff;
	int err;

	if (type == FU_SEND) {
		fu_recycle(p, (cqe->user_data >> 24) & 0xffff);
		return cqe->res == FANIN_DGRAM_LEN ? 0 : -EIO;
	}
	if (p->fds[chan] < 0)
		return 0;
	if (cqe->res == -ENOBUFS)
		return fu_arm(p, chan);
	if (cqe->res < 0)
		return cqe->res;
	err = cqe->res ? fu_recv(s, cqe, chan) : 0;
	if (!cqe->res) {
		close(p->fds[chan]);
		p->fds[chan] = -1;
		fanin_srv_hangup(s);
	}
	/* Multishot ends on a full CQ or no buffer: arm it again. */
	if (!err && p->fds[chan] >= 0 && !(cqe->flags & IORING_CQE_F_MORE))
		err = fu_arm(p, chan);
	return err;
}

static int fu_turn(struct fanin_srv *s, int timeout_ms)
{
	struct fu_srv *p = s->priv;
	struct io_uring_cqe *cqe;
	unsigned int head, n = 0;
	int ret, err = 0;

	ret = timeout_ms ? io_uring_submit_and_wait(&p->ring, 1) :
			   io_uring_submit(&p->ring);
	if (ret < 0 && ret != -EINTR && ret != -EAGAIN && ret != -EBUSY)
		return ret;
	io_uring_for_each_cqe(&p->ring, head, cqe) {
		if (!err)
			err = fu_cqe(s, cqe);
		n++;
	}
	io_uring_cq_advance(&p->ring, n);
	return err;
}

const struct fanin_server_ops fanin_floor_uring = {
	.name = "floor-uring",
	.open = fu_open,
	.turn = fu_turn,
	.close = fu_close,
};
