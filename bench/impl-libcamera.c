// SPDX-License-Identifier: MIT
/*
 * libcamera-style: a header datagram, then the payload datagram with the
 * fds, on a non-blocking SOCK_DGRAM pair; poll() before each.
 */
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include "bench.h"

struct lc_hdr {
	uint32_t size;
	uint8_t nr_fds;
	uint8_t reserved[3];
};

_Static_assert(sizeof(struct lc_hdr) == 8, "8-byte header");

struct lc_priv {
	struct raw_chan raw;
	bool have_hdr;
	struct lc_hdr hdr;
	union bench_ctrl txctrl, rxctrl;
};

static int lc_open(struct bench_chan *c, int fd)
{
	return raw_chan_open(c, fd, sizeof(struct lc_priv), c->max_len);
}

/*
 * Unread datagrams count against the sender's SO_SNDBUF (between the two
 * ends of a pair net.unix.max_dgram_qlen does not apply): a flooding
 * sender waits for room, which the protocol itself has no answer to.
 */
static int wait_writable(int fd)
{
	struct pollfd pfd = { .fd = fd, .events = POLLOUT };

	if (poll(&pfd, 1, -1) < 0 && errno != EINTR)
		return -errno;
	return 0;
}

static int lc_send_one(struct bench_chan *c, const struct bench_msg *m)
{
	struct lc_priv *p = c->priv;
	struct lc_hdr hdr = { .size = m->len, .nr_fds = m->nr_fds };
	struct iovec iov = { .iov_base = m->data, .iov_len = m->len };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };
	int err;

	while (send(c->fd, &hdr, sizeof(hdr), MSG_NOSIGNAL) < 0) {
		if (errno != EAGAIN && errno != EINTR)
			return -errno;
		err = wait_writable(c->fd);
		if (err)
			return err;
	}
	msghdr_set_fds(&mh, p->txctrl.buf, m->fds, m->nr_fds);
	while (sendmsg(c->fd, &mh, MSG_NOSIGNAL) < 0) {
		if (errno != EAGAIN && errno != EINTR)
			return -errno;
		err = wait_writable(c->fd);
		if (err)
			return err;
	}
	return 0;
}

static int lc_send(struct bench_chan *c, const struct bench_msg *msgs,
		   unsigned int n)
{
	unsigned int i;
	int err;

	for (i = 0; i < n; i++) {
		err = lc_send_one(c, &msgs[i]);
		if (err)
			return err;
	}
	return 0;
}

static bool readable(int fd, int timeout_ms, int *err)
{
	struct pollfd pfd = { .fd = fd, .events = POLLIN };
	int n = poll(&pfd, 1, timeout_ms);

	*err = 0;
	if (n < 0) {
		*err = errno == EINTR ? 0 : -errno;
		return false;
	}
	return n > 0 && (pfd.revents & POLLIN);
}

static int lc_wait(struct bench_chan *c)
{
	struct lc_priv *p = c->priv;
	unsigned int nr_fds;
	ssize_t n;
	int *fds, err;

	if (!readable(c->fd, -1, &err))
		return err;
	if (!p->have_hdr) {
		n = recv(c->fd, &p->hdr, sizeof(p->hdr), 0);
		if (n < 0)
			return errno == EAGAIN || errno == EINTR ? 0 : -errno;
		if (n != sizeof(p->hdr))
			return -EPROTO;
		p->have_hdr = true;
	}
	/* The payload may not be there yet: then wait for the next wake-up. */
	if (!readable(c->fd, 0, &err))
		return err;
	n = raw_chan_recv(c, &p->rxctrl, &fds, &nr_fds);
	if (n < 0)
		return n == -EAGAIN || n == -EINTR ? 0 : n;
	p->have_hdr = false;
	if ((size_t)n != p->hdr.size || nr_fds != p->hdr.nr_fds) {
		bench_close_fds(fds, nr_fds);
		return -EPROTO;
	}
	c->rx(c, p->raw.rxbuf, n, fds, nr_fds);
	return c->err;
}

const struct bench_impl impl_libcamera_style = {
	.name = "libcamera-style",
	.sock_type = SOCK_DGRAM | SOCK_NONBLOCK,
	.open = lc_open,
	.close = raw_chan_close,
	.send = lc_send,
	.wait = lc_wait,
};
