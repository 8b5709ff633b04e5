// SPDX-License-Identifier: MIT
/*
 * floor-epoll: the fanin server in system calls alone, the least a server
 * of N channels can do: epoll_wait, then on each ready socket one
 * recvmmsg of what is there and one sendmmsg of the echoes.
 */
#include <errno.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "fanin.h"

#define FLOOR_EVENTS	256

struct floor_srv {
	int ep;
	int *fds;
	unsigned char buf[FANIN_MAX_WINDOW][FANIN_DGRAM_LEN];
	struct iovec iov[FANIN_MAX_WINDOW];
	struct mmsghdr mm[FANIN_MAX_WINDOW];
	struct epoll_event ev[FLOOR_EVENTS];
};

static void floor_close(struct fanin_srv *s)
{
	struct floor_srv *p = s->priv;
	unsigned int i;

	if (!p)
		return;
	for (i = 0; p->fds && i < s->nr; i++)
		if (p->fds[i] >= 0)
			close(p->fds[i]);
	if (p->ep >= 0)
		close(p->ep);
	free(p->fds);
	free(p);
	s->priv = NULL;
}

static int floor_open(struct fanin_srv *s, const int *fds)
{
	struct epoll_event ev = { .events = EPOLLIN };
	struct floor_srv *p;
	unsigned int i;

	p = calloc(1, sizeof(*p));
	if (!p)
		return -ENOMEM;
	s->priv = p;
	p->fds = malloc(s->nr * sizeof(*p->fds));
	p->ep = epoll_create1(EPOLL_CLOEXEC);
	if (!p->fds || p->ep < 0) {
		floor_close(s);
		return -ENOMEM;
	}
	for (i = 0; i < s->nr; i++)
		p->fds[i] = fds[i];
	for (i = 0; i < FANIN_MAX_WINDOW; i++) {
		p->iov[i].iov_base = p->buf[i];
		p->mm[i].msg_hdr.msg_iov = &p->iov[i];
		p->mm[i].msg_hdr.msg_iovlen = 1;
	}
	for (i = 0; i < s->nr; i++) {
		ev.data.u32 = i;
		if (epoll_ctl(p->ep, EPOLL_CTL_ADD, fds[i], &ev)) {
			floor_close(s);
			return -errno;
		}
	}
	return 0;
}

static int floor_ready(struct fanin_srv *s, unsigned int chan)
{
	struct floor_srv *p = s->priv;
	unsigned int i, max = s->window;
	int n, sent;

	for (i = 0; i < max; i++)
		p->iov[i].iov_len = FANIN_DGRAM_LEN;
	n = recvmmsg(p->fds[chan], p->mm, max, MSG_DONTWAIT, NULL);
	if (n < 0)
		return errno == EAGAIN ? 0 : -errno;
	/* End of file: a zero-length datagram, which clients never send. */
	if (!n || !p->mm[0].msg_len) {
		close(p->fds[chan]);
		p->fds[chan] = -1;
		fanin_srv_hangup(s);
		return 0;
	}
	for (i = 0; i < (unsigned int)n; i++) {
		const struct fanin_wire *w = (const void *)p->buf[i];

		if (p->mm[i].msg_len != FANIN_DGRAM_LEN ||
		    fanin_srv_check(s, chan, w + 1, w->len))
			return -EPROTO;
		p->iov[i].iov_len = FANIN_DGRAM_LEN;
	}
	/* A window never fills the socket: no partial send to queue. */
	sent = sendmmsg(p->fds[chan], p->mm, n, MSG_DONTWAIT);
	if (sent < 0)
		return -errno;
	return sent == n ? 0 : -ENOBUFS;
}

static int floor_turn(struct fanin_srv *s, int timeout_ms)
{
	struct floor_srv *p = s->priv;
	int i, n, err;

	n = epoll_wait(p->ep, p->ev, FLOOR_EVENTS, timeout_ms);
	if (n < 0)
		return errno == EINTR ? 0 : -errno;
	for (i = 0; i < n; i++) {
		err = floor_ready(s, p->ev[i].data.u32);
		if (err)
			return err;
	}
	return 0;
}

const struct fanin_server_ops fanin_floor_epoll = {
	.name = "floor-epoll",
	.open = floor_open,
	.turn = floor_turn,
	.close = floor_close,
};
