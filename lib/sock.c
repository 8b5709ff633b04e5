// SPDX-License-Identifier: MIT
/*
 * Socket handles: create, bind, close and free, and the life of the
 * channel behind a bound handle.
 */
#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "internal.h"

/* AF_UNIX refuses a datagram larger than SO_SNDBUF minus this. */
#define UNIX_DGRAM_OVERHEAD	32

struct ipcsock *ipcsock_new(struct ipcsock_loop *loop)
{
	struct ipcsock *sock;

	if (!loop)
		loop = ipcsock_loop_default();
	if (!loop)
		return NULL;
	if (loop_inherited(loop)) {
		errno = ECHILD;
		return NULL;
	}
	sock = calloc(1, sizeof(*sock));
	if (!sock)
		return NULL;
	sock->loop = loop;
	list_add_tail(&sock->node, &loop->socks);
	return sock;
}

/* As loop.c's opts_check: unknown trailing bytes must be zero. */
static int sock_opts_check(const struct ipcsock_opts *opts)
{
	size_t i;

	if (opts->sz < sizeof(opts->sz))
		return -EINVAL;
	for (i = sizeof(*opts); i < opts->sz; i++)
		if (((const char *)opts)[i])
			return -EINVAL;
	if (opts->sz >= offsetof(struct ipcsock_opts, wire) +
		       sizeof(opts->wire) &&
	    opts->wire != IPCSOCK_WIRE_NATIVE &&
	    opts->wire != IPCSOCK_WIRE_LIBCAMERA)
		return -EINVAL;
	return 0;
}

struct ipcsock *ipcsock_new_opts(struct ipcsock_loop *loop,
				 const struct ipcsock_opts *opts)
{
	struct ipcsock *sock;
	int err;

	if (opts) {
		err = sock_opts_check(opts);
		if (err) {
			errno = -err;
			return NULL;
		}
	}
	sock = ipcsock_new(loop);
	if (sock && opts && opts->sz >= offsetof(struct ipcsock_opts, wire) +
					sizeof(opts->wire))
		sock->wire = opts->wire;
	return sock;
}

void ipcsock_free(struct ipcsock *sock)
{
	if (!sock)
		return;
	ipcsock_close(sock);
	list_del_init(&sock->node);
	free(sock);
}

bool ipcsock_is_bound(const struct ipcsock *sock)
{
	return sock && sock->ch;
}

void ipcsock_set_ready_read(struct ipcsock *sock, ipcsock_ready_read_fn fn,
			    void *arg)
{
	if (!sock)
		return;
	sock->ready_read = fn;
	sock->ready_read_arg = arg;
	if (fn && sock->ch && chan_rx_pending(sock->ch) &&
	    !sock_inherited(sock)) {
		loop_mark_ready(sock->ch);
		loop_wake_if_pending(sock->loop);
	}
}

void ipcsock_set_hangup(struct ipcsock *sock, ipcsock_hangup_fn fn, void *arg)
{
	if (!sock)
		return;
	sock->hangup = fn;
	sock->hangup_arg = arg;
	if (fn && sock->ch && sock->ch->hup_due && !sock->ch->hup_done &&
	    !sock_inherited(sock)) {
		loop_mark_ready(sock->ch);
		loop_wake_if_pending(sock->loop);
	}
}

/*
 * Make sure one datagram can carry the largest message. The default
 * SO_SNDBUF (212,992 bytes) already does for max_msg_size up to ~207 KiB.
 */
static int fit_sndbuf(int fd, unsigned int max_msg, int *sndbuf)
{
	int need = max_msg + sizeof(struct ipcsock_wire_hdr) +
		   UNIX_DGRAM_OVERHEAD;
	socklen_t len = sizeof(int);
	int cur;

	if (getsockopt(fd, SOL_SOCKET, SO_SNDBUF, &cur, &len))
		return -errno;
	*sndbuf = cur;
	if (cur >= need)
		return 0;
	/* Capped by net.core.wmem_max unless we may force it. */
	if (setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &need, sizeof(need)))
		setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &need, sizeof(need));
	len = sizeof(int);
	if (getsockopt(fd, SOL_SOCKET, SO_SNDBUF, &cur, &len))
		return -errno;
	*sndbuf = cur;
	return cur >= need ? 0 : -EMSGSIZE;
}

/* Newer than some libc headers; Linux's numbers, the same on every arch. */
#ifndef SO_PASSPIDFD
#define SO_PASSPIDFD		76
#endif
#ifndef SO_TIMESTAMP_NEW
#define SO_TIMESTAMP_NEW	63
#define SO_TIMESTAMPNS_NEW	64
#endif

/*
 * These make the kernel add control messages of its own to every datagram
 * we receive (credentials, a security label, a pidfd - an fd of its own -,
 * timestamps). The wire format has SCM_RIGHTS only, so the first message
 * would fail the channel as a protocol error: the socket is the library's
 * now, switch them off. A kernel without one of them refuses to set it,
 * which is as good.
 *
 * The kernel keeps one kind of timestamp: setting one on chooses its kind
 * (old or new layout, with or without nanoseconds), and each layout's
 * nanosecond option reads as on together with its plain one. Listing
 * the plain one first lets sock_opts_restore() turn the options back on
 * in this order and end with the kind the caller had.
 */
static const int kernel_cmsg_opts[] = {
	SO_PASSCRED, SO_PASSSEC, SO_PASSPIDFD, SO_TIMESTAMP,
	SO_TIMESTAMPNS, SO_TIMESTAMP_NEW, SO_TIMESTAMPNS_NEW,
};

static void no_kernel_cmsgs(int fd)
{
	unsigned int i;
	int off = 0;

	for (i = 0; i < ARRAY_SIZE(kernel_cmsg_opts); i++)
		setsockopt(fd, SOL_SOCKET, kernel_cmsg_opts[i], &off,
			   sizeof(off));
}

/*
 * What binding changes on the caller's socket before it can still fail
 * (a buffer group id taken, the send buffer capped by wmem_max, ...): a
 * failed bind puts it back, as the fd stays the caller's.
 */
struct sock_opts {
	int on[ARRAY_SIZE(kernel_cmsg_opts)];
	int sndbuf;
};

static void sock_opts_save(int fd, struct sock_opts *so)
{
	socklen_t len;
	unsigned int i;

	for (i = 0; i < ARRAY_SIZE(kernel_cmsg_opts); i++) {
		len = sizeof(int);
		if (getsockopt(fd, SOL_SOCKET, kernel_cmsg_opts[i], &so->on[i],
			       &len))
			so->on[i] = 0;
	}
	len = sizeof(int);
	if (getsockopt(fd, SOL_SOCKET, SO_SNDBUF, &so->sndbuf, &len))
		so->sndbuf = 0;
}

static void sock_opts_restore(int fd, const struct sock_opts *so)
{
	socklen_t len = sizeof(int);
	unsigned int i;
	int one = 1, cur, half;

	for (i = 0; i < ARRAY_SIZE(kernel_cmsg_opts); i++)
		if (so->on[i])
			setsockopt(fd, SOL_SOCKET, kernel_cmsg_opts[i], &one,
				   sizeof(one));
	if (!so->sndbuf || getsockopt(fd, SOL_SOCKET, SO_SNDBUF, &cur, &len) ||
	    cur == so->sndbuf)
		return;
	/* The kernel doubles what it is given, and reports the double. */
	half = so->sndbuf / 2;
	if (setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &half, sizeof(half)))
		setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &half, sizeof(half));
}

void chan_destroy(struct ipcsock_chan *ch)
{
	struct ipcsock_loop *loop = ch->loop;

	chan_rx_drop_pending(ch);
	list_del_init(&ch->tx_node);
	loop->ops->chan_destroy(ch);
	chan_peer_forget(ch);
	if (ch->fd >= 0)
		close(ch->fd);
	chan_rx_free(ch);
	chan_tx_free(ch);
	wire_lc_free(ch);
	loop->chans[ch->id] = NULL;
	free(ch);
}

/*
 * A closed channel goes once the kernel holds none of its buffers. Inside
 * dispatch it waits on loop->dead until dispatch ends, because the
 * callback loop may still look at it.
 */
void chan_put(struct ipcsock_chan *ch)
{
	if (ch->sock || ch->inflight || ch->closing || !list_empty(&ch->node))
		return;
	if (ch->loop->dispatching) {
		list_add_tail(&ch->node, &ch->loop->dead);
		return;
	}
	chan_destroy(ch);
}

static int chan_bind(struct ipcsock *sock, int fd)
{
	struct ipcsock_loop *loop = sock->loop;
	struct ipcsock_chan *ch;
	int err, sndbuf = 0;

	err = fit_sndbuf(fd, loop->max_msg_size, &sndbuf);
	if (err)
		return err;
	ch = calloc(1, loop->ops->chan_size);
	if (!ch)
		return -ENOMEM;
	ch->loop = loop;
	ch->fd = -1;
	ch->rx_held = -1;
	ch->pidfd = -1;
	INIT_LIST_HEAD(&ch->node);
	INIT_LIST_HEAD(&ch->peer_node);
	INIT_LIST_HEAD(&ch->tx_node);
	err = loop_chan_add(loop, ch);
	if (err) {
		free(ch);
		return err;
	}
	err = chan_tx_alloc(ch, sndbuf);
	if (!err)
		err = chan_rx_alloc(ch);
	if (!err && sock->wire == IPCSOCK_WIRE_LIBCAMERA)
		err = wire_lc_alloc(ch);
	if (err)
		goto fail;
	ch->fd = fd;
	ch->sock = sock;
	sock->ch = ch;
	err = loop->ops->chan_open(ch);
	if (err) {
		ch->fd = -1;	/* still the caller's */
		sock->ch = NULL;
		ch->sock = NULL;
		goto fail;
	}
	return 0;
fail:
	chan_destroy(ch);
	return err;
}

/* The socket type each wire format runs on. */
static int sock_type(const struct ipcsock *sock)
{
	return sock->wire == IPCSOCK_WIRE_LIBCAMERA ? SOCK_DGRAM :
						      SOCK_SEQPACKET;
}

/* May @sock be bound now? 0, or why not. */
static int sock_bindable(const struct ipcsock *sock)
{
	if (!sock || !sock->loop)
		return -EINVAL;
	if (sock_inherited(sock))
		return -ECHILD;
	return sock->ch ? -EBUSY : 0;
}

int ipcsock_create(struct ipcsock *sock)
{
	int sv[2], err = sock_bindable(sock);

	if (err)
		return err;
	if (socketpair(AF_UNIX, sock_type(sock) | SOCK_CLOEXEC, 0, sv))
		return -errno;
	err = chan_bind(sock, sv[0]);
	if (err) {
		close(sv[0]);
		close(sv[1]);
		return err;
	}
	return sv[1];
}

int ipcsock_bind(struct ipcsock *sock, int fd)
{
	struct sockaddr_un peer;
	socklen_t len = sizeof(int);
	struct sock_opts saved;
	struct stat st;
	int val, err = sock_bindable(sock);

	if (err)
		return err;
	if (fd < 0 || fstat(fd, &st))
		return -EBADF;
	if (!S_ISSOCK(st.st_mode))
		return -ENOTSOCK;
	if (getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &val, &len))
		return -errno;
	if (val != AF_UNIX)
		return -EAFNOSUPPORT;
	len = sizeof(int);
	if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &val, &len))
		return -errno;
	if (val != sock_type(sock))
		return -EPROTOTYPE;
	/* A listening or unconnected socket has no peer to talk to. */
	len = sizeof(peer);
	if (getpeername(fd, (struct sockaddr *)&peer, &len))
		return -errno;
	sock_opts_save(fd, &saved);
	no_kernel_cmsgs(fd);
	err = chan_bind(sock, fd);
	if (err) {
		sock_opts_restore(fd, &saved);
		return err;
	}
	/* Ours now: it must not leak into the caller's children. */
	fcntl(fd, F_SETFD, FD_CLOEXEC);
	return 0;
}

/*
 * Detach the channel from its handle at once: the handle is unbound and
 * can be rebound or freed. The whole close, in order: the messages never
 * received go (chan_rx_close), the channel is marked closed (sock NULL),
 * the backend flushes what the socket takes without waiting and cancels
 * the rest (->chan_close), and the channel is freed once the kernel is
 * done with its buffers (chan_put, here or at the last completion).
 */
void ipcsock_close(struct ipcsock *sock)
{
	struct ipcsock_chan *ch;

	if (!sock || !sock->ch)
		return;
	ch = sock->ch;
	sock->ch = NULL;
	/* The parent's ring and epoll set are not the child's to touch. */
	if (sock_inherited(sock)) {
		loop_chan_forget(ch);
		return;
	}
	chan_rx_close(ch);
	ch->sock = NULL;
	list_del_init(&ch->node);
	/* What it held back goes with the rest of its queue, below. */
	list_del_init(&ch->tx_node);
	/* Reaping completions inside chan_close must not free the channel. */
	ch->closing = true;
	ch->loop->ops->chan_close(ch);
	ch->closing = false;
	chan_put(ch);
}
