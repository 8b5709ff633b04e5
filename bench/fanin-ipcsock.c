// SPDX-License-Identifier: MIT
/*
 * fanin servers on the library: ipcsock-uring (the loop's own ring),
 * ipcsock-uring-sww (the same with IPCSOCK_LOOP_SUBMIT_WITH_WAIT, as a
 * server that only dispatches would set it), ipcsock-epoll, and
 * ipcsock-shared (the application's own io_uring, with
 * ipcsock_loop_new_shared() and ipcsock_loop_handle_cqe()). Default loop
 * options but those; each message is echoed from its ready_read.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <liburing.h>

#include "ipcsock.h"
#include "fanin.h"

struct ipc_chan {
	struct fanin_srv *srv;
	struct ipcsock *sock;
	unsigned int id;
};

struct ipc_srv {
	struct ipcsock_loop *loop;
	struct io_uring ring;		/* ipcsock-shared's */
	bool have_ring;
	struct ipc_chan *chans;
	unsigned char echo[FANIN_MAX_WINDOW][FANIN_MSG_LEN];
	struct ipcsock_payload out[FANIN_MAX_WINDOW];
};

/*
 * Echoes what has arrived as one batch, as floor-epoll's sendmmsg does: the
 * received views are valid until the next receive, so they are copied.
 */
static void chan_ready_read(struct ipcsock *sock, void *arg)
{
	struct ipc_chan *c = arg;
	struct ipc_srv *p = c->srv->priv;
	struct ipcsock_payload in;
	unsigned int n = 0;
	int ret;

	do {
		ret = ipcsock_receive(sock, &in);
		if (!ret) {
			if (fanin_srv_check(c->srv, c->id, in.data, in.len))
				return;
			memcpy(p->echo[n], in.data, FANIN_MSG_LEN);
			p->out[n].data = p->echo[n];
			p->out[n].len = FANIN_MSG_LEN;
			n++;
		}
		if (n && (ret || n == FANIN_MAX_WINDOW)) {
			ret = ipcsock_send_batch(sock, p->out, n);
			if (ret < 0) {
				fanin_srv_fail(c->srv, ret);
				return;
			}
			n = 0;
		}
	} while (!ret);
}

static void chan_hangup(struct ipcsock *sock, int err, void *arg)
{
	struct ipc_chan *c = arg;

	(void)sock;
	if (err)
		fanin_srv_fail(c->srv, err);
	fanin_srv_hangup(c->srv);
}

/* ipcsock-shared: the application's turn, its ring's completions first. */
static int shared_turn(struct fanin_srv *s, int timeout_ms)
{
	struct ipc_srv *p = s->priv;
	struct io_uring_cqe *cqe;
	unsigned int head, n = 0;
	int ret;

	ret = timeout_ms ? io_uring_submit_and_wait(&p->ring, 1) :
			   io_uring_submit(&p->ring);
	if (ret < 0 && ret != -EINTR && ret != -EAGAIN && ret != -EBUSY)
		return ret;
	io_uring_for_each_cqe(&p->ring, head, cqe) {
		/* The server puts nothing of its own on the ring. */
		if (!ipcsock_loop_handle_cqe(p->loop, cqe))
			return -EPROTO;
		n++;
	}
	io_uring_cq_advance(&p->ring, n);
	ret = ipcsock_loop_dispatch(p->loop, 0);
	return ret < 0 && ret != -EINTR ? ret : 0;
}

static int own_turn(struct fanin_srv *s, int timeout_ms)
{
	struct ipc_srv *p = s->priv;
	int ret;

	ret = ipcsock_loop_dispatch(p->loop, timeout_ms);
	return ret < 0 && ret != -EINTR ? ret : 0;
}

static void ipc_close(struct fanin_srv *s)
{
	struct ipc_srv *p = s->priv;
	unsigned int i;

	if (!p)
		return;
	for (i = 0; p->chans && i < s->nr; i++)
		ipcsock_free(p->chans[i].sock);
	/* A shared ring's loop is freed once its operations completed. */
	for (i = 0; p->have_ring && p->loop && i < 1000 &&
	     !ipcsock_loop_idle(p->loop); i++)
		if (shared_turn(s, -1))
			break;
	ipcsock_loop_free(p->loop);
	if (p->have_ring)
		io_uring_queue_exit(&p->ring);
	free(p->chans);
	free(p);
	s->priv = NULL;
}

/* The loop exists; a socket per channel, bound to its fd. */
static int bind_all(struct fanin_srv *s, const int *fds)
{
	struct ipc_srv *p = s->priv;
	struct ipc_chan *c;
	unsigned int i;
	int err;

	p->chans = calloc(s->nr, sizeof(*p->chans));
	if (!p->chans)
		return -ENOMEM;
	for (i = 0; i < s->nr; i++) {
		c = &p->chans[i];
		c->srv = s;
		c->id = i;
		c->sock = ipcsock_new(p->loop);
		if (!c->sock)
			return -ENOMEM;
		err = ipcsock_bind(c->sock, fds[i]);
		if (err)
			return err;
		ipcsock_set_ready_read(c->sock, chan_ready_read, c);
		ipcsock_set_hangup(c->sock, chan_hangup, c);
	}
	return 0;
}

/*
 * The application's ring as a server that owns one would set it up
 * (examples/uring-server.c): DEFER_TASKRUN where the kernel has it.
 */
static int shared_loop(struct ipc_srv *p)
{
	struct io_uring_params params = {
		.flags = IORING_SETUP_SINGLE_ISSUER |
			 IORING_SETUP_DEFER_TASKRUN,
	};
	int err;

	err = io_uring_queue_init_params(IPCSOCK_DEFAULT_RING_ENTRIES,
					 &p->ring, &params);
	if (err == -EINVAL)
		err = io_uring_queue_init(IPCSOCK_DEFAULT_RING_ENTRIES,
					  &p->ring, 0);
	if (err)
		return err == -ENOMEM ? err : -EOPNOTSUPP;
	p->have_ring = true;
	p->loop = ipcsock_loop_new_shared(&p->ring, NULL);
	if (!p->loop)
		return errno == ENOMEM ? -ENOMEM : -EOPNOTSUPP;
	return 0;
}

/* A loop of its own, or on the application's ring (@shared). */
static int ipc_open(struct fanin_srv *s, const int *fds,
		    enum ipcsock_backend b, bool shared, unsigned int flags)
{
	IPCSOCK_LOOP_OPTS(opts, .backend = b, .flags = flags);
	struct ipc_srv *p;
	int err;

	p = calloc(1, sizeof(*p));
	if (!p)
		return -ENOMEM;
	s->priv = p;
	if (shared) {
		err = shared_loop(p);
	} else {
		p->loop = ipcsock_loop_new(&opts);
		/* As impl-ipcsock.c: no such loop means no such backend. */
		if (!p->loop || ipcsock_loop_backend(p->loop) != b)
			err = p->loop || errno != ENOMEM ? -EOPNOTSUPP :
							   -ENOMEM;
		else
			err = 0;
	}
	if (!err)
		err = bind_all(s, fds);
	if (err)
		ipc_close(s);
	return err;
}

static int open_uring(struct fanin_srv *s, const int *fds)
{
	return ipc_open(s, fds, IPCSOCK_BACKEND_URING, false, 0);
}

static int open_uring_sww(struct fanin_srv *s, const int *fds)
{
	return ipc_open(s, fds, IPCSOCK_BACKEND_URING, false,
			IPCSOCK_LOOP_SUBMIT_WITH_WAIT);
}

static int open_epoll(struct fanin_srv *s, const int *fds)
{
	return ipc_open(s, fds, IPCSOCK_BACKEND_EPOLL, false, 0);
}

static int open_shared(struct fanin_srv *s, const int *fds)
{
	return ipc_open(s, fds, IPCSOCK_BACKEND_URING, true, 0);
}

const struct fanin_server_ops fanin_ipcsock_uring = {
	.name = "ipcsock-uring",
	.open = open_uring,
	.turn = own_turn,
	.close = ipc_close,
};

const struct fanin_server_ops fanin_ipcsock_uring_sww = {
	.name = "ipcsock-uring-sww",
	.open = open_uring_sww,
	.turn = own_turn,
	.close = ipc_close,
};

const struct fanin_server_ops fanin_ipcsock_epoll = {
	.name = "ipcsock-epoll",
	.open = open_epoll,
	.turn = own_turn,
	.close = ipc_close,
};

const struct fanin_server_ops fanin_ipcsock_shared = {
	.name = "ipcsock-shared",
	.open = open_shared,
	.turn = shared_turn,
	.close = ipc_close,
};
