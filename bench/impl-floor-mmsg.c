// SPDX-License-Identifier: MIT
/* floor-mmsg: blocking sendmmsg()/recvmmsg(), the streaming floor. */
#include <errno.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include "bench.h"

struct fm_priv {
	struct raw_chan raw;
	unsigned int vlen;
	struct mmsghdr tx[BENCH_MAX_BATCH];
	struct mmsghdr rx[BENCH_MAX_BATCH];
	struct iovec txiov[BENCH_MAX_BATCH];
	struct iovec rxiov[BENCH_MAX_BATCH];
	union bench_ctrl txctrl[BENCH_MAX_BATCH];
	union bench_ctrl rxctrl[BENCH_MAX_BATCH];
};

static int fm_open(struct bench_chan *c, int fd)
{
	unsigned int i, vlen = c->batch ? c->batch : 1;
	struct fm_priv *p;
	int err;

	if (vlen > BENCH_MAX_BATCH)
		vlen = BENCH_MAX_BATCH;
	err = raw_chan_open(c, fd, sizeof(*p), c->max_len * vlen);
	if (err)
		return err;
	p = c->priv;
	p->vlen = vlen;
	for (i = 0; i < BENCH_MAX_BATCH; i++) {
		p->tx[i].msg_hdr.msg_iov = &p->txiov[i];
		p->tx[i].msg_hdr.msg_iovlen = 1;
		p->rx[i].msg_hdr.msg_iov = &p->rxiov[i];
		p->rx[i].msg_hdr.msg_iovlen = 1;
		if (i < p->vlen) {
			p->rxiov[i].iov_base = p->raw.rxbuf + i * c->max_len;
			p->rxiov[i].iov_len = c->max_len;
		}
	}
	return 0;
}

static int fm_send(struct bench_chan *c, const struct bench_msg *msgs,
		   unsigned int n)
{
	struct fm_priv *p = c->priv;
	unsigned int i, done = 0;
	int ret;

	for (i = 0; i < n; i++) {
		p->txiov[i].iov_base = msgs[i].data;
		p->txiov[i].iov_len = msgs[i].len;
		msghdr_set_fds(&p->tx[i].msg_hdr, p->txctrl[i].buf,
			       msgs[i].fds, msgs[i].nr_fds);
	}
	while (done < n) {
		ret = sendmmsg(c->fd, p->tx + done, n - done, MSG_NOSIGNAL);
		if (ret < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		done += ret;
	}
	return 0;
}

static int fm_wait(struct bench_chan *c)
{
	struct fm_priv *p = c->priv;
	unsigned int i, nr_fds;
	int n, *fds, err;

	for (i = 0; i < p->vlen; i++) {
		p->rx[i].msg_hdr.msg_control = p->rxctrl[i].buf;
		p->rx[i].msg_hdr.msg_controllen = BENCH_CTRL_LEN;
		p->rx[i].msg_hdr.msg_flags = 0;
	}
	n = recvmmsg(c->fd, p->rx, p->vlen, MSG_CMSG_CLOEXEC | MSG_WAITFORONE,
		     NULL);
	if (n < 0)
		return errno == EINTR ? 0 : -errno;
	for (i = 0; i < (unsigned int)n; i++) {
		if (!p->rx[i].msg_len)
			return -EPIPE;
		err = msghdr_get_fds(&p->rx[i].msg_hdr, &fds, &nr_fds);
		if (err)
			return err;
		c->rx(c, p->rxiov[i].iov_base, p->rx[i].msg_len, fds, nr_fds);
	}
	return c->err;
}

const struct bench_impl impl_floor_mmsg = {
	.name = "floor-mmsg",
	.sock_type = SOCK_SEQPACKET,
	.open = fm_open,
	.close = raw_chan_close,
	.send = fm_send,
	.wait = fm_wait,
};
