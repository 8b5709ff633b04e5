// SPDX-License-Identifier: MIT
/* floor-sendmsg: blocking sendmsg()/recvmsg(), the ping-pong floor. */
#include <errno.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include "bench.h"

struct fs_priv {
	struct raw_chan raw;
	union bench_ctrl txctrl, rxctrl;
};

static int fs_open(struct bench_chan *c, int fd)
{
	return raw_chan_open(c, fd, sizeof(struct fs_priv), c->max_len);
}

static int fs_send(struct bench_chan *c, const struct bench_msg *msgs,
		   unsigned int n)
{
	struct fs_priv *p = c->priv;
	struct msghdr mh = { 0 };
	struct iovec iov;
	unsigned int i;

	mh.msg_iov = &iov;
	mh.msg_iovlen = 1;
	for (i = 0; i < n; i++) {
		iov.iov_base = msgs[i].data;
		iov.iov_len = msgs[i].len;
		msghdr_set_fds(&mh, p->txctrl.buf, msgs[i].fds,
			       msgs[i].nr_fds);
		while (sendmsg(c->fd, &mh, MSG_NOSIGNAL) < 0) {
			if (errno != EINTR)
				return -errno;
		}
	}
	return 0;
}

static int fs_wait(struct bench_chan *c)
{
	struct fs_priv *p = c->priv;
	unsigned int nr_fds;
	ssize_t n;
	int *fds;

	n = raw_chan_recv(c, &p->rxctrl, &fds, &nr_fds);
	if (n < 0)
		return n == -EINTR ? 0 : n;
	if (n == 0)
		return -EPIPE;
	c->rx(c, p->raw.rxbuf, n, fds, nr_fds);
	return c->err;
}

const struct bench_impl impl_floor_sendmsg = {
	.name = "floor-sendmsg",
	.sock_type = SOCK_SEQPACKET,
	.open = fs_open,
	.close = raw_chan_close,
	.send = fs_send,
	.wait = fs_wait,
};
