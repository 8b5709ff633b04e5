// SPDX-License-Identifier: MIT
/*
 * fanin's client process: the other ends of a share of the channels,
 * driven with plain system calls (epoll_wait, recvmmsg, sendmmsg), each
 * channel keeping a window of messages in flight and checking every echo.
 */
#include <errno.h>
#include <malloc.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "fanin.h"

struct cli_chan {
	int fd;
	unsigned int id;		/* the channel's number */
	uint32_t sent, got;
};

struct cli {
	const struct fanin_cfg *cfg;
	struct cli_chan *chans;
	unsigned int nr;
	bool stopping;
	unsigned int drained;		/* channels with nothing in flight */
	uint64_t msgs;
	unsigned char *buf;		/* window messages to send */
	struct mmsghdr *mm;
	struct iovec *iov;
	unsigned char *rbuf;		/* window datagrams received */
	struct mmsghdr *rmm;
	struct iovec *riov;
	unsigned char expect[FANIN_DGRAM_LEN];
};

/*
 * Every byte depends on the channel and the sequence number, so that an
 * echo on the wrong channel, reordered or corrupted, does not match.
 */
void fanin_msg_fill(void *buf, unsigned int chan, uint32_t seq)
{
	struct fanin_wire *w = buf;
	struct bench_hdr *h = (struct bench_hdr *)(w + 1);
	unsigned char *p = (unsigned char *)h;
	unsigned int i;

	*w = (struct fanin_wire) { .len = FANIN_MSG_LEN, .version = 1 };
	h->seq = seq;
	h->flags = 0;
	h->idx = chan;
	for (i = sizeof(*h); i < FANIN_MSG_LEN; i++)
		p[i] = (unsigned char)(seq * 31 + chan * 7 + i);
}

/* Sends @n new messages on @c; all fit, as at most a window is in flight. */
static int cli_send(struct cli *cl, struct cli_chan *c, unsigned int n)
{
	unsigned int i;
	int ret;

	for (i = 0; i < n; i++) {
		fanin_msg_fill(cl->buf + i * FANIN_DGRAM_LEN, c->id, c->sent + i);
		cl->iov[i].iov_len = FANIN_DGRAM_LEN;
	}
	ret = sendmmsg(c->fd, cl->mm, n, 0);
	if (ret < 0)
		return -errno;
	if ((unsigned int)ret != n)
		return -EIO;
	c->sent += n;
	return 0;
}

/*
 * Checks one echo: the payload @p of @len bytes must be the next message
 * of @c. The header was checked by the caller.
 */
static int cli_check(struct cli *cl, struct cli_chan *c, const void *p,
		     uint64_t len)
{
	fanin_msg_fill(cl->expect, c->id, c->got);
	if (len != FANIN_MSG_LEN ||
	    memcmp(p, cl->expect + sizeof(struct fanin_wire), FANIN_MSG_LEN))
		return -EPROTO;
	c->got++;
	return 0;
}

/*
 * Splits one datagram into its echoes: a version 1 datagram is one, a
 * version 2 record (README.md, Wire format) packs several, which the
 * library sends when it echoes more than one message in a dispatch.
 * Returns the number of echoes, or -EPROTO.
 */
static int cli_datagram(struct cli *cl, struct cli_chan *c,
			const unsigned char *d, size_t len)
{
	const struct fanin_wire *w = (const void *)d;
	const struct fanin_rec *r = (const void *)(w + 1);
	size_t off = FANIN_REC_HDR_LEN;
	uint32_t i;

	if (len < sizeof(*w) || w->nr_fds || w->flags ||
	    w->len != len - sizeof(*w))
		return -EPROTO;
	if (w->version == 1)
		return cli_check(cl, c, w + 1, w->len) ?: 1;
	if (w->version != 2 || len < FANIN_REC_HDR_LEN || !r->nr_msgs ||
	    r->zero)
		return -EPROTO;
	for (i = 0; i < r->nr_msgs; i++) {
		const struct fanin_entry *e = (const void *)(d + off);
		uint64_t size;

		if (len - off < sizeof(*e) || e->nr_fds || e->zero)
			return -EPROTO;
		size = FANIN_ENTRY_SIZE(e->len);
		if (size > len - off || cli_check(cl, c, e + 1, e->len))
			return -EPROTO;
		off += size;
	}
	return off == len ? (int)r->nr_msgs : -EPROTO;
}

/* Takes and checks what @c has; sends as many new ones unless stopping. */
static int cli_ready(struct cli *cl, struct cli_chan *c)
{
	unsigned int i, got = 0, room = c->sent - c->got;
	int n, ret;

	for (i = 0; i < room; i++)
		cl->riov[i].iov_len = FANIN_RECV_LEN;
	n = recvmmsg(c->fd, cl->rmm, room ? room : 1, MSG_DONTWAIT, NULL);
	if (n < 0)
		return errno == EAGAIN ? 0 : -errno;
	/* The server never closes first, and never echoes unasked. */
	if (!n || !room)
		return -EPROTO;
	for (i = 0; i < (unsigned int)n; i++) {
		if (cl->rmm[i].msg_hdr.msg_flags & (MSG_TRUNC | MSG_CTRUNC))
			return -EPROTO;
		ret = cli_datagram(cl, c, cl->rbuf + i * FANIN_RECV_LEN,
				   cl->rmm[i].msg_len);
		if (ret < 0)
			return ret;
		got += ret;
	}
	cl->msgs += got;
	if (cl->stopping) {
		if (c->got == c->sent)
			cl->drained++;
		return 0;
	}
	return cli_send(cl, c, got);
}

static int cli_setup(struct cli *cl, const struct fanin_cfg *cfg,
		     const int *fds, unsigned int first, unsigned int nr)
{
	unsigned int i;

	memset(cl, 0, sizeof(*cl));
	cl->cfg = cfg;
	cl->nr = nr;
	cl->chans = calloc(nr, sizeof(*cl->chans));
	cl->buf = calloc(cfg->window, FANIN_DGRAM_LEN);
	cl->mm = calloc(cfg->window, sizeof(*cl->mm));
	cl->iov = calloc(cfg->window, sizeof(*cl->iov));
	cl->rbuf = calloc(cfg->window, FANIN_RECV_LEN);
	cl->rmm = calloc(cfg->window, sizeof(*cl->rmm));
	cl->riov = calloc(cfg->window, sizeof(*cl->riov));
	if (!cl->chans || !cl->buf || !cl->mm || !cl->iov || !cl->rbuf ||
	    !cl->rmm || !cl->riov)
		return -ENOMEM;
	for (i = 0; i < cfg->window; i++) {
		cl->iov[i].iov_base = cl->buf + i * FANIN_DGRAM_LEN;
		cl->mm[i].msg_hdr.msg_iov = &cl->iov[i];
		cl->mm[i].msg_hdr.msg_iovlen = 1;
		cl->riov[i].iov_base = cl->rbuf + i * FANIN_RECV_LEN;
		cl->rmm[i].msg_hdr.msg_iov = &cl->riov[i];
		cl->rmm[i].msg_hdr.msg_iovlen = 1;
	}
	for (i = 0; i < nr; i++) {
		cl->chans[i].fd = fds[first + i];
		cl->chans[i].id = first + i;
	}
	return 0;
}

static int cli_loop(struct cli *cl, int ep, int ctl)
{
	struct epoll_event ev[64];
	unsigned int i;
	int n, err;
	char c;

	for (i = 0; i < cl->nr; i++) {
		err = cli_send(cl, &cl->chans[i], cl->cfg->window);
		if (err)
			return err;
	}
	while (!cl->stopping || cl->drained < cl->nr) {
		n = epoll_wait(ep, ev, ARRAY_SIZE(ev), -1);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		for (i = 0; i < (unsigned int)n; i++) {
			if (ev[i].data.u32 == cl->nr) {
				/* The coordinator: stop sending, drain. */
				if (read(ctl, &c, 1) != 1)
					return -EPIPE;
				cl->stopping = true;
				epoll_ctl(ep, EPOLL_CTL_DEL, ctl, NULL);
				continue;
			}
			err = cli_ready(cl, &cl->chans[ev[i].data.u32]);
			if (err)
				return err;
		}
	}
	return 0;
}

int fanin_client_main(const struct fanin_cfg *cfg, const int *fds,
		      unsigned int first, unsigned int nr, int ctl)
{
	struct fanin_cli_report rep = { 0 };
	struct epoll_event ev = { .events = EPOLLIN };
	uint64_t cpu0 = 0;
	int64_t rss0;
	struct cli cl;
	unsigned int i;
	int ep, err;
	char c;

	prctl(PR_SET_NAME, "fanin-client");
	malloc_trim(0);		/* as the server does */
	rss0 = rss_kib();
	err = cli_setup(&cl, cfg, fds, first, nr);
	ep = epoll_create1(EPOLL_CLOEXEC);
	if (!err && ep < 0)
		err = -errno;
	for (i = 0; !err && i <= nr; i++) {
		ev.data.u32 = i;
		if (epoll_ctl(ep, EPOLL_CTL_ADD, i < nr ? cl.chans[i].fd : ctl,
			      &ev))
			err = -errno;
	}
	rep.idle_rss_kib = rss_kib() - rss0;
	/* Ready; then wait for the go, so that the server's idle is idle. */
	c = err ? 'E' : 'R';
	if (write_full(ctl, &c, 1) || read_full(ctl, &c, 1))
		return 1;
	if (!err) {
		cpu0 = cpu_ns(NULL);
		err = cli_loop(&cl, ep, ctl);
	}
	rep.cpu_ns = cpu_ns(NULL) - cpu0;
	rep.busy_rss_kib = rss_kib() - rss0;
	rep.msgs = cl.msgs;
	rep.err = err;
	/* Closing tells the server this channel is done. */
	for (i = 0; i < nr; i++)
		close(fds[first + i]);
	if (ep >= 0)
		close(ep);
	if (write_full(ctl, &rep, sizeof(rep)))
		return 1;
	return err ? 1 : 0;
}
