// SPDX-License-Identifier: MIT
/*
 * ipcsock-uring, ipcsock-epoll, ipcsock-uring-busy, ipcsock-uring-adaptive:
 * the library;
 * ipcsock-lcwire: the library on io_uring speaking libcamera's wire format.
 */
#include <errno.h>
#include <stdlib.h>
#include <sys/socket.h>

#include "ipcsock.h"
#include "bench.h"

struct ipc_priv {
	struct ipcsock_loop *loop;
	struct ipcsock *sock;
	struct ipcsock_payload pl[BENCH_MAX_BATCH];
};

static void ipc_ready_read(struct ipcsock *sock, void *arg)
{
	struct bench_chan *c = arg;
	struct ipcsock_payload p;

	while (!ipcsock_receive(sock, &p))
		c->rx(c, (void *)p.data, p.len, (int *)p.fds, p.nr_fds);
}

static void ipc_hangup(struct ipcsock *sock, int err, void *arg)
{
	struct bench_chan *c = arg;

	(void)sock;
	c->err = err ? err : -EPIPE;
}

unsigned int bench_busy_poll_us = 100;

static int ipc_open_flags(struct bench_chan *c, int fd,
			  enum ipcsock_backend b, unsigned int busy_poll_us,
			  enum ipcsock_wire wire, unsigned int flags)
{
	IPCSOCK_LOOP_OPTS(opts, .backend = b, .busy_poll_us = busy_poll_us,
			  .flags = flags);
	IPCSOCK_OPTS(sock_opts, .wire = wire);
	struct ipc_priv *p;
	int err;

	p = calloc(1, sizeof(*p));
	if (!p)
		return -ENOMEM;
	p->loop = ipcsock_loop_new(&opts);
	if (!p->loop) {
		/*
		 * With valid options, a loop that cannot be made means the
		 * backend is missing here (no io_uring, or a seccomp filter).
		 */
		err = errno == ENOMEM ? -ENOMEM : -EOPNOTSUPP;
		free(p);
		return err;
	}
	if (ipcsock_loop_backend(p->loop) != b) {
		ipcsock_loop_free(p->loop);
		free(p);
		return -EOPNOTSUPP;
	}
	p->sock = ipcsock_new_opts(p->loop, &sock_opts);
	if (!p->sock) {
		ipcsock_loop_free(p->loop);
		free(p);
		return -ENOMEM;
	}
	err = ipcsock_bind(p->sock, fd);
	if (err) {
		ipcsock_free(p->sock);
		ipcsock_loop_free(p->loop);
		free(p);
		return err;
	}
	ipcsock_set_ready_read(p->sock, ipc_ready_read, c);
	ipcsock_set_hangup(p->sock, ipc_hangup, c);
	c->priv = p;
	return 0;
}

static int ipc_open(struct bench_chan *c, int fd, enum ipcsock_backend b,
		    unsigned int busy_poll_us, enum ipcsock_wire wire)
{
	return ipc_open_flags(c, fd, b, busy_poll_us, wire, 0);
}

static int ipc_open_uring(struct bench_chan *c, int fd)
{
	return ipc_open(c, fd, IPCSOCK_BACKEND_URING, 0, IPCSOCK_WIRE_NATIVE);
}

static int ipc_open_epoll(struct bench_chan *c, int fd)
{
	return ipc_open(c, fd, IPCSOCK_BACKEND_EPOLL, 0, IPCSOCK_WIRE_NATIVE);
}

static int ipc_open_uring_busy(struct bench_chan *c, int fd)
{
	return ipc_open(c, fd, IPCSOCK_BACKEND_URING, bench_busy_poll_us,
			IPCSOCK_WIRE_NATIVE);
}

/*
 * The default cap, given explicitly: the run is pinned, and a loop with
 * the default cap takes a thread pinned to one CPU for one without a CPU
 * to spare, and never polls.
 */
static int ipc_open_uring_adaptive(struct bench_chan *c, int fd)
{
	return ipc_open_flags(c, fd, IPCSOCK_BACKEND_URING,
			      IPCSOCK_ADAPTIVE_WAIT_CAP_US, IPCSOCK_WIRE_NATIVE,
			      IPCSOCK_LOOP_ADAPTIVE_WAIT);
}

static int ipc_open_lcwire(struct bench_chan *c, int fd)
{
	return ipc_open(c, fd, IPCSOCK_BACKEND_URING, 0, IPCSOCK_WIRE_LIBCAMERA);
}

static void ipc_close(struct bench_chan *c)
{
	struct ipc_priv *p = c->priv;

	if (!p)
		return;
	/* The library took the fd at bind time and closes it here. */
	ipcsock_free(p->sock);
	ipcsock_loop_free(p->loop);
	free(p);
	c->priv = NULL;
	c->fd = -1;
}

static int ipc_send(struct bench_chan *c, const struct bench_msg *msgs,
		    unsigned int n)
{
	struct ipc_priv *p = c->priv;
	unsigned int i;
	int ret;

	for (i = 0; i < n; i++) {
		p->pl[i].data = msgs[i].data;
		p->pl[i].len = msgs[i].len;
		p->pl[i].fds = msgs[i].fds;
		p->pl[i].nr_fds = msgs[i].nr_fds;
	}
	for (;;) {
		if (n == 1)
			ret = ipcsock_send(p->sock, p->pl);
		else
			ret = ipcsock_send_batch(p->sock, p->pl, n);
		if (ret != -ENOBUFS)
			return ret < 0 ? ret : 0;
		/* Queue full: reap send completions (-EBUSY in a callback). */
		ret = ipcsock_loop_dispatch(p->loop, -1);
		if (ret < 0)
			return ret == -EBUSY ? -ENOBUFS : ret;
		if (c->err)
			return c->err;
	}
}

static int ipc_wait(struct bench_chan *c)
{
	struct ipc_priv *p = c->priv;
	int ret;

	ret = ipcsock_loop_dispatch(p->loop, -1);
	if (ret < 0 && ret != -EINTR)
		return ret;
	return c->err;
}

static void ipc_counters(struct bench_chan *c, uint64_t v[BENCH_NR_CNT])
{
	struct ipc_priv *p = c->priv;
	struct ipcsock_stats st = { 0 };

	ipcsock_get_stats(p->sock, &st, sizeof(st));
	v[BENCH_CNT_TX_MSGS] = st.tx_msgs;
	v[BENCH_CNT_TX_DGRAMS] = st.tx_datagrams;
	v[BENCH_CNT_RX_MSGS] = st.rx_msgs;
	v[BENCH_CNT_RX_DGRAMS] = st.rx_datagrams;
}

const struct bench_impl impl_ipcsock_uring = {
	.name = "ipcsock-uring",
	.sock_type = SOCK_SEQPACKET,
	.open = ipc_open_uring,
	.close = ipc_close,
	.send = ipc_send,
	.wait = ipc_wait,
	.counters = ipc_counters,
};

const struct bench_impl impl_ipcsock_epoll = {
	.name = "ipcsock-epoll",
	.sock_type = SOCK_SEQPACKET,
	.open = ipc_open_epoll,
	.close = ipc_close,
	.send = ipc_send,
	.wait = ipc_wait,
	.counters = ipc_counters,
};

/* The low-latency mode: dispatch polls for bench_busy_poll_us before sleeping. */
const struct bench_impl impl_ipcsock_uring_busy = {
	.name = "ipcsock-uring-busy",
	.sock_type = SOCK_SEQPACKET,
	.open = ipc_open_uring_busy,
	.close = ipc_close,
	.send = ipc_send,
	.wait = ipc_wait,
	.counters = ipc_counters,
};

/* libcamera framing (a header datagram, then the payload's) from the library. */
const struct bench_impl impl_ipcsock_lcwire = {
	.name = "ipcsock-lcwire",
	.sock_type = SOCK_DGRAM,
	.open = ipc_open_lcwire,
	.close = ipc_close,
	.send = ipc_send,
	.wait = ipc_wait,
	.counters = ipc_counters,
};

/*
 * Adaptive waiting (IPCSOCK_LOOP_ADAPTIVE_WAIT): polls before sleeping
 * only while polls find completions. Pinned as ipcsock-uring-busy is:
 * left to the scheduler on this 2-CPU machine, the two ends mostly
 * shared a CPU, where the policy (rightly) stopped polling and the row
 * measured sleeping (README, Performance).
 */
const struct bench_impl impl_ipcsock_uring_adaptive = {
	.name = "ipcsock-uring-adaptive",
	.sock_type = SOCK_SEQPACKET,
	.open = ipc_open_uring_adaptive,
	.close = ipc_close,
	.send = ipc_send,
	.wait = ipc_wait,
};
