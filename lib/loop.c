// SPDX-License-Identifier: MIT
/*
 * Loops: options, backend choice, the per-thread default loop, the channel
 * table and dispatch, which turns kernel completions into callbacks.
 *
 * Completion processing (backend ->poll, or ipcsock_loop_handle_cqe) only
 * ever updates channel state and puts channels on loop->ready. Callbacks
 * run from one place, run_callbacks(), so that any library call - close,
 * free, send, receive - is safe from inside a callback.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"
#include "trace.h"

/* Bounded so that the receive slots fit the 16-bit buffer ids. */
#define IPCSOCK_RECV_BUFFERS_MAX	4096u
#define IPCSOCK_SEND_QUEUE_MAX		(1u << 20)
/* The kernel allows 65536 CQ entries; the CQ is 4x the SQ. */
#define IPCSOCK_RING_ENTRIES_MAX	16384u

static unsigned int opt_or(const struct ipcsock_loop_opts *opts, size_t off,
			   size_t size, unsigned int def)
{
	unsigned int v;

	if (!opts || opts->sz < off + size)
		return def;
	memcpy(&v, (const char *)opts + off, sizeof(v));
	return v ? v : def;
}

#define OPT(opts, field, def) \
	opt_or(opts, offsetof(struct ipcsock_loop_opts, field), \
	       sizeof(((struct ipcsock_loop_opts *)0)->field), def)

static unsigned int roundup_pow2(unsigned int v)
{
	unsigned int p = 1;

	while (p < v)
		p <<= 1;
	return p;
}

/*
 * libbpf's rule: a caller built against a newer header may pass a larger
 * struct, which is fine as long as everything we do not know is zero.
 */
static int opts_check(const struct ipcsock_loop_opts *opts)
{
	size_t i;

	if (!opts)
		return 0;
	if (opts->sz < sizeof(opts->sz))
		return -EINVAL;
	for (i = sizeof(*opts); i < opts->sz; i++)
		if (((const char *)opts)[i])
			return -EINVAL;
	return 0;
}

static enum ipcsock_backend backend_wanted(const struct ipcsock_loop_opts *o)
{
	enum ipcsock_backend b = OPT(o, backend, IPCSOCK_BACKEND_AUTO);
	const char *env;

	if (b != IPCSOCK_BACKEND_AUTO)
		return b;
	env = getenv("IPCSOCK_BACKEND");
	if (env && !strcasecmp(env, "epoll"))
		return IPCSOCK_BACKEND_EPOLL;
	if (env && (!strcasecmp(env, "io_uring") ||
		    !strcasecmp(env, "uring")))
		return IPCSOCK_BACKEND_URING;
	return IPCSOCK_BACKEND_AUTO;
}

/*
 * Loop numbers: user_data has 16 bits to tell apart the loops on one
 * shared ring, so no two live shared loops may have the same one, however
 * many loops the process made before. Only loops on a shared ring take
 * one: a loop's own ring carries its own completions only (its number
 * is 0). Numbers are handed out next-fit, from the last one given: a
 * loop freed before it was idle still has completions to come, which a
 * new loop on the same ring must decline, so its number is not reused
 * until every other free one was.
 */
#define LOOP_UID_MAX	0xffffu

static pthread_mutex_t uid_lock = PTHREAD_MUTEX_INITIALIZER;
static uint64_t uid_used[(LOOP_UID_MAX + 1) / 64];
static unsigned int uid_last;

static int loop_uid_get(void)
{
	unsigned int i, uid;
	int ret = -EMFILE;

	pthread_mutex_lock(&uid_lock);
	uid = uid_last;
	for (i = 0; i < LOOP_UID_MAX; i++) {
		uid = uid % LOOP_UID_MAX + 1;	/* 1 to 0xffff, round */
		if (!(uid_used[uid / 64] & 1ull << uid % 64)) {
			uid_used[uid / 64] |= 1ull << uid % 64;
			uid_last = uid;
			ret = uid;
			break;
		}
	}
	pthread_mutex_unlock(&uid_lock);
	return ret;
}

static void loop_uid_put(unsigned int uid)
{
	if (!uid)
		return;
	pthread_mutex_lock(&uid_lock);
	uid_used[uid / 64] &= ~(1ull << uid % 64);
	pthread_mutex_unlock(&uid_lock);
}

/*
 * Bumped in the child of every fork(), so that a loop can tell that it was
 * made in the parent (loop_inherited) with a load and a compare, no
 * getpid(). Only fork() runs the handlers: a child made with clone() or
 * _Fork() that does not exec must not call the library.
 */
unsigned int loop_fork_gen;

/* A fork() while another thread holds the lock must not leave it held. */
static void atfork_prepare(void)
{
	pthread_mutex_lock(&uid_lock);
}

static void atfork_parent(void)
{
	pthread_mutex_unlock(&uid_lock);
}

static void atfork_child(void)
{
	loop_fork_gen++;
	pthread_mutex_unlock(&uid_lock);
}

static pthread_once_t atfork_once = PTHREAD_ONCE_INIT;
static int atfork_err;

static void atfork_init(void)
{
	atfork_err = pthread_atfork(atfork_prepare, atfork_parent,
				    atfork_child);
}

/* Read the options into @conf, the part of a loop every backend shares. */
static int loop_conf(const struct ipcsock_loop_opts *opts,
		     struct ipcsock_loop *conf)
{
	int err = opts_check(opts);

	if (err)
		return err;
	pthread_once(&atfork_once, atfork_init);
	if (atfork_err)
		return -atfork_err;
	memset(conf, 0, sizeof(*conf));
	conf->fork_gen = loop_fork_gen;
	conf->max_msg_size = OPT(opts, max_msg_size,
				 IPCSOCK_DEFAULT_MAX_MSG_SIZE);
	conf->send_queue_len = OPT(opts, send_queue_len,
				   IPCSOCK_DEFAULT_SEND_QUEUE);
	conf->recv_buffers = OPT(opts, recv_buffers,
				 IPCSOCK_DEFAULT_RECV_BUFFERS);
	if (conf->recv_buffers <= IPCSOCK_RECV_BUFFERS_MAX)
		conf->recv_buffers = roundup_pow2(conf->recv_buffers);
	if (conf->send_queue_len <= IPCSOCK_SEND_QUEUE_MAX)
		conf->tx_slots = roundup_pow2(conf->send_queue_len);
	conf->ring_entries = OPT(opts, ring_entries,
				 IPCSOCK_DEFAULT_RING_ENTRIES);
	conf->bgid_base = OPT(opts, bgid_base, IPCSOCK_DEFAULT_BGID_BASE);
	conf->busy_poll_us = OPT(opts, busy_poll_us, 0);
	conf->flags = OPT(opts, flags, 0);
	if (conf->max_msg_size > IPCSOCK_MAX_MSG_SIZE_LIMIT ||
	    conf->recv_buffers > IPCSOCK_RECV_BUFFERS_MAX ||
	    conf->send_queue_len > IPCSOCK_SEND_QUEUE_MAX ||
	    conf->ring_entries > IPCSOCK_RING_ENTRIES_MAX ||
	    conf->bgid_base > 0xffff || conf->busy_poll_us > 1000000 ||
	    (conf->flags & ~(IPCSOCK_LOOP_RING_SENDS |
			      IPCSOCK_LOOP_ADAPTIVE_WAIT |
			      IPCSOCK_LOOP_SUBMIT_WITH_WAIT)))
		return -EINVAL;
	conf->evfd = -1;
	loop_wait_init(conf);
	return 0;
}

/* A loop of backend @ops, in the backend's own struct, set up. */
static struct ipcsock_loop *loop_make(const struct ipcsock_loop *conf,
				      const struct ipcsock_backend_ops *ops,
				      struct io_uring *shared, int *err)
{
	struct ipcsock_loop *loop = calloc(1, ops->loop_size);

	if (!loop) {
		*err = -ENOMEM;
		return NULL;
	}
	*loop = *conf;
	loop->ops = ops;
	/* On the loop's own ring only, where it implies ring sends. */
	if (loop->flags & IPCSOCK_LOOP_SUBMIT_WITH_WAIT) {
		if (ops->id == IPCSOCK_BACKEND_URING && !shared)
			loop->flags |= IPCSOCK_LOOP_RING_SENDS;
		else
			loop->flags &= ~IPCSOCK_LOOP_SUBMIT_WITH_WAIT;
	}
	INIT_LIST_HEAD(&loop->ready);
	INIT_LIST_HEAD(&loop->socks);
	INIT_LIST_HEAD(&loop->dead);
	INIT_LIST_HEAD(&loop->tx_held);
	INIT_LIST_HEAD(&loop->peer_exited);
	*err = ops->loop_init(loop, shared);
	if (*err) {
		free(loop);
		return NULL;
	}
	return loop;
}

static struct ipcsock_loop *loop_new(const struct ipcsock_loop *conf,
				     enum ipcsock_backend b,
				     struct io_uring *shared, int *err)
{
	struct ipcsock_loop *loop;

	if (b == IPCSOCK_BACKEND_EPOLL)
		return loop_make(conf, &ipcsock_epoll_ops, NULL, err);
	if (b != IPCSOCK_BACKEND_AUTO && b != IPCSOCK_BACKEND_URING) {
		*err = -EINVAL;
		return NULL;
	}
	loop = loop_make(conf, &ipcsock_uring_ops, shared, err);
	/*
	 * io_uring can be missing (ENOSYS), forbidden by seccomp or
	 * kernel.io_uring_disabled (EPERM), or too old for what we need
	 * (EINVAL, EOPNOTSUPP): AUTO falls back to the portable backend.
	 */
	if (!loop && b == IPCSOCK_BACKEND_AUTO && !shared && *err != -ENOMEM)
		loop = loop_make(conf, &ipcsock_epoll_ops, NULL, err);
	return loop;
}

struct ipcsock_loop *ipcsock_loop_new(const struct ipcsock_loop_opts *opts)
{
	struct ipcsock_loop conf, *loop;
	int err = loop_conf(opts, &conf);

	if (err) {
		errno = -err;
		return NULL;
	}
	loop = loop_new(&conf, backend_wanted(opts), NULL, &err);
	if (!loop)
		errno = -err;
	return loop;
}

struct ipcsock_loop *ipcsock_loop_new_shared(struct io_uring *ring,
					     const struct ipcsock_loop_opts *opts)
{
	struct ipcsock_loop conf, *loop;
	int err;

	if (!ring ||
	    OPT(opts, backend, IPCSOCK_BACKEND_URING) != IPCSOCK_BACKEND_URING) {
		errno = EINVAL;
		return NULL;
	}
	err = loop_conf(opts, &conf);
	if (!err)
		err = loop_uid_get();
	if (err < 0) {
		errno = -err;
		return NULL;
	}
	conf.uid = err;
	loop = loop_new(&conf, IPCSOCK_BACKEND_URING, ring, &err);
	if (!loop) {
		loop_uid_put(conf.uid);
		errno = -err;
	}
	return loop;
}

static pthread_key_t default_key;
static pthread_once_t default_once = PTHREAD_ONCE_INIT;
static __thread struct ipcsock_loop *default_loop;

static void default_loop_exit(void *loop)
{
	default_loop = NULL;
	ipcsock_loop_free(loop);
}

static void default_key_init(void)
{
	if (pthread_key_create(&default_key, default_loop_exit))
		default_key = (pthread_key_t)-1;
}

/*
 * In the child of a fork() the thread's default loop is still the parent's
 * (the pointer is copied with the thread): the child gets one of its own,
 * and the inherited one is left as it is, to be refused like any other
 * inherited loop and released by ipcsock_loop_free(). Freeing it here
 * would leave the caller's copies of the pointer dangling.
 */
struct ipcsock_loop *ipcsock_loop_default(void)
{
	if (default_loop && !loop_inherited(default_loop))
		return default_loop;
	pthread_once(&default_once, default_key_init);
	default_loop = ipcsock_loop_new(NULL);
	if (default_loop && default_key != (pthread_key_t)-1)
		pthread_setspecific(default_key, default_loop);
	return default_loop;
}

/*
 * The child of a fork() drops its copies of an inherited loop's
 * descriptors and mappings, and nothing else: closing a copy or unmapping
 * it leaves the parent's epoll set, ring and sockets as they are, while
 * EPOLL_CTL_DEL, unregistering a buffer ring, cancelling or flushing would
 * not. After this the channels' release touches no shared kernel state
 * (see the backends' loop_orphan).
 */
static void loop_orphan(struct ipcsock_loop *loop)
{
	if (loop->orphaned)
		return;
	loop->orphaned = true;
	loop->ops->loop_orphan(loop);
	if (loop->evfd >= 0)
		close(loop->evfd);
	loop->evfd = -1;
}

/* Close, in the child of a fork(), a channel of an inherited loop. */
void loop_chan_forget(struct ipcsock_chan *ch)
{
	loop_orphan(ch->loop);
	list_del_init(&ch->node);
	ch->sock = NULL;
	chan_destroy(ch);
}

/* Channels released inside dispatch were kept alive until its end. */
static void loop_free_dead(struct ipcsock_loop *loop)
{
	struct ipcsock_chan *ch;

	while (!list_empty(&loop->dead)) {
		ch = list_first_entry(&loop->dead, struct ipcsock_chan, node);
		list_del_init(&ch->node);
		chan_destroy(ch);
	}
}

static void loop_free_inherited(struct ipcsock_loop *loop)
{
	struct ipcsock *sock;
	unsigned int i;

	loop_orphan(loop);
	/* As in ipcsock_loop_free: handles are cut loose, never freed. */
	while (!list_empty(&loop->socks)) {
		sock = list_first_entry(&loop->socks, struct ipcsock, node);
		sock->ch = NULL;
		list_del_init(&sock->node);
		sock->loop = NULL;
	}
	/* Closed channels the parent's kernel still holds too. */
	for (i = 0; i < loop->nr_chans; i++) {
		if (loop->chans[i]) {
			loop->chans[i]->sock = NULL;
			chan_destroy(loop->chans[i]);
		}
	}
	loop_uid_put(loop->uid);
	free(loop->tx_ctrl);
	free(loop->tx_scratch);
	free(loop->chans);
	free(loop);
}

void ipcsock_loop_free(struct ipcsock_loop *loop)
{
	struct ipcsock *sock;
	bool kernel_done;
	unsigned int i;

	if (!loop)
		return;
	if (loop == default_loop) {
		default_loop = NULL;
		if (default_key != (pthread_key_t)-1)
			pthread_setspecific(default_key, NULL);
	}
	if (loop_inherited(loop)) {
		loop_free_inherited(loop);
		return;
	}
	/* Sockets left over are closed and cut loose, never freed here. */
	while (!list_empty(&loop->socks)) {
		sock = list_first_entry(&loop->socks, struct ipcsock, node);
		ipcsock_close(sock);
		list_del_init(&sock->node);
		sock->loop = NULL;
	}
	/*
	 * An own ring is gone now, and with it every operation, so what the
	 * kernel held can be freed. A shared ring lives on: a channel it still
	 * holds is left allocated rather than freed under the kernel's feet
	 * (free the loop once ipcsock_loop_idle() says so to avoid this).
	 */
	kernel_done = loop->ops->loop_exit(loop);
	for (i = 0; i < loop->nr_chans; i++) {
		if (loop->chans[i] && kernel_done) {
			loop->chans[i]->inflight = 0;
			chan_put(loop->chans[i]);
		}
	}
	loop_free_dead(loop);
	if (loop->evfd >= 0)
		close(loop->evfd);
	loop_uid_put(loop->uid);
	free(loop->tx_ctrl);
	free(loop->tx_scratch);
	free(loop->chans);
	free(loop);
}

enum ipcsock_backend ipcsock_loop_backend(const struct ipcsock_loop *loop)
{
	return loop ? loop->ops->id : IPCSOCK_BACKEND_AUTO;
}

int ipcsock_loop_fd(struct ipcsock_loop *loop)
{
	int err;

	if (!loop)
		return -EINVAL;
	if (loop_inherited(loop))
		return -ECHILD;
	if (loop->evfd < 0) {
		loop->evfd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		if (loop->evfd < 0)
			return -errno;
		err = loop->ops->loop_attach_evfd(loop);
		if (err) {
			close(loop->evfd);
			loop->evfd = -1;
			loop->evfd_signalled = false;
			return err;
		}
		if (!list_empty(&loop->ready))
			loop_wake(loop);
		/* Nothing may wait for a dispatch the fd will not prompt. */
		loop->ops->submit(loop);
	}
	return loop->ops->loop_fd(loop);
}

bool ipcsock_loop_idle(const struct ipcsock_loop *loop)
{
	return !loop || (!loop->inflight && list_empty(&loop->ready));
}

uint64_t loop_now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000000ull + ts.tv_nsec / 1000;
}

/* The channel table maps the id in user_data back to a channel. */
int loop_chan_add(struct ipcsock_loop *loop, struct ipcsock_chan *ch)
{
	struct ipcsock_chan **chans;
	unsigned int i, n;

	for (i = 0; i < loop->nr_chans; i++)
		if (!loop->chans[i])
			break;
	if (i == loop->nr_chans) {
		n = loop->nr_chans ? loop->nr_chans * 2 : 8;
		chans = realloc(loop->chans, n * sizeof(*chans));
		if (!chans)
			return -ENOMEM;
		memset(chans + loop->nr_chans, 0,
		       (n - loop->nr_chans) * sizeof(*chans));
		loop->chans = chans;
		loop->nr_chans = n;
	}
	loop->chans[i] = ch;
	ch->id = i;
	ch->gen = ++loop->next_gen;
	return 0;
}

struct ipcsock_chan *loop_chan_lookup(struct ipcsock_loop *loop, uint32_t id,
				      unsigned int gen)
{
	struct ipcsock_chan *ch;

	if (id >= loop->nr_chans)
		return NULL;
	ch = loop->chans[id];
	if (!ch || (ch->gen & 0xff) != (gen & 0xff))
		return NULL;
	return ch;
}

/*
 * The loop fd's promise: outside dispatch, loop->ready non-empty means the
 * eventfd is signalled. It is kept where the list fills (here, at the end
 * of dispatch, and when the eventfd is made) and nothing but dispatch,
 * which runs what is due and re-signals for what it leaves, reads the
 * eventfd. evfd_signalled makes every signal after the first free until
 * dispatch reads it: one write per dispatch at most, whatever the calls.
 */
static void loop_evfd_signal(struct ipcsock_loop *loop)
{
	if (loop->evfd < 0 || loop->evfd_signalled)
		return;
	if (!eventfd_write(loop->evfd, 1))
		loop->evfd_signalled = true;
}

/* Only dispatch calls this (the epoll backend's wait inside it too). */
void loop_evfd_drain(struct ipcsock_loop *loop)
{
	eventfd_t cnt;

	if (loop->evfd < 0)
		return;
	eventfd_read(loop->evfd, &cnt);
	loop->evfd_signalled = false;
}

void loop_mark_ready(struct ipcsock_chan *ch)
{
	struct ipcsock_loop *loop = ch->loop;

	if (!list_empty(&ch->node) || !ch->sock)
		return;
	list_add_tail(&ch->node, &loop->ready);
	/*
	 * Outside dispatch nothing would run it: a send that reaped or
	 * failed its channel, or a CQE handed in, must leave the loop fd
	 * readable. A shared ring's owner is woken by the call that got
	 * here, on its way out: it may be in the middle of reaping.
	 */
	if (!loop->dispatching) {
		loop_evfd_signal(loop);
		loop->wake_pending = true;
	}
}

/*
 * Work is due although no event may come: keep ipcsock_loop_fd readable,
 * and wake a shared ring's owner so that it calls dispatch again.
 */
void loop_wake(struct ipcsock_loop *loop)
{
	loop_evfd_signal(loop);
	if (loop->ops->wake)
		loop->ops->wake(loop);
}

void loop_wake_if_pending(struct ipcsock_loop *loop)
{
	if (!loop->wake_pending)
		return;
	loop->wake_pending = false;
	loop_wake(loop);
}

void loop_submit_if_outside(struct ipcsock_loop *loop)
{
	if (!loop->dispatching && loop->ops->submit_prepared)
		loop->ops->submit_prepared(loop);
}

static int run_chan_callbacks(struct ipcsock_chan *ch)
{
	struct ipcsock *sock = ch->sock;
	int ran = 0;

	if (sock && sock->ready_read && chan_rx_pending(ch)) {
		IPCSOCK_TRACE(ready_read, sock, ch->rx_tail - ch->rx_head);
		sock->ready_read(sock, sock->ready_read_arg);
		ran++;
		/* It forked, and this is the child: nothing more here. */
		if (loop_inherited(ch->loop))
			return ran;
	}
	/* The callback may have closed, freed or rebound its socket. */
	sock = ch->sock;
	/* Kept for a hangup callback set later: the end is news only once. */
	if (sock && ch->hup_due && !ch->hup_done && sock->hangup) {
		ch->hup_done = true;
		IPCSOCK_TRACE(hangup, sock, ch->hup_err);
		sock->hangup(sock, ch->hup_err, sock->hangup_arg);
		ran++;
		if (loop_inherited(ch->loop))
			return ran;
	}
	/* Messages left unreceived: call again on the next dispatch. */
	sock = ch->sock;
	if (sock && sock->ready_read && chan_rx_pending(ch))
		loop_mark_ready(ch);
	return ran;
}

static int run_callbacks(struct ipcsock_loop *loop)
{
	struct list_head due = LIST_HEAD_INIT(due);
	struct ipcsock_chan *ch;
	int ran = 0;

	list_splice_tail_init(&loop->ready, &due);
	while (!list_empty(&due)) {
		ch = list_first_entry(&due, struct ipcsock_chan, node);
		list_del_init(&ch->node);
		ran += run_chan_callbacks(ch);
		/*
		 * A callback forked and this is the child: the rest, closed
		 * channels too, are the parent's to run. Back on the loop's
		 * list, not on this frame's, which is gone when we return.
		 */
		if (loop_inherited(loop)) {
			list_splice_tail_init(&due, &loop->ready);
			return ran;
		}
	}
	return ran;
}

/*
 * IPCSOCK_LOOP_SUBMIT_WITH_WAIT: what a dispatch prepared goes to the
 * kernel with the next wait, in the same io_uring_enter, instead of in
 * one of its own at the end of this dispatch. A server then makes one
 * system call a turn for all its replies and its wait, and the clients
 * its sends wake do not preempt it halfway through the turn (README,
 * fanin). Not while the application sleeps on the loop fd: no wait of
 * ours would come to submit them.
 */
static bool loop_submits_with_wait(const struct ipcsock_loop *loop)
{
	return (loop->flags & IPCSOCK_LOOP_SUBMIT_WITH_WAIT) &&
	       loop->evfd < 0;
}

int ipcsock_loop_dispatch(struct ipcsock_loop *loop, int timeout_ms)
{
	uint64_t deadline = 0, now;
	int err, ran;

	if (!loop)
		return -EINVAL;
	if (loop_inherited(loop))
		return -ECHILD;
	if (loop->dispatching)
		return -EBUSY;
	/* Whatever became due so far runs in this call. */
	loop->wake_pending = false;
	loop->dispatching = true;
	loop->dispatch_gen++;
	loop_evfd_drain(loop);
	if (!list_empty(&loop->ready))
		timeout_ms = 0;
	if (timeout_ms > 0)
		deadline = loop_now_us() + timeout_ms * 1000ull;
	/*
	 * Wait until a callback is due or a send queue shrank (a sender that
	 * got -ENOBUFS dispatches to wait for room). Other completions, such
	 * as a receive buffer coming back, do not end the wait: returning
	 * would only make the caller come back at once, a syscall wasted.
	 */
	for (;;) {
		loop->tx_progress = false;
		err = loop->ops->poll(loop, timeout_ms);
		if (!list_empty(&loop->peer_exited))
			loop_peer_check(loop);
		/* A signal ends the wait, as it does poll(2)'s. */
		if (err < 0 && (err != -EINTR || list_empty(&loop->ready))) {
			loop->dispatching = false;
			loop_free_dead(loop);
			/* The eventfd was read above: what is due stays due. */
			if (!list_empty(&loop->ready))
				loop_wake(loop);
			return err;
		}
		/* Interrupted with callbacks due, or it cannot wait. */
		if (err)
			break;
		if (!list_empty(&loop->ready) || loop->tx_progress ||
		    !timeout_ms)
			break;
		if (timeout_ms > 0) {
			now = loop_now_us();
			if (now >= deadline)
				break;
			timeout_ms = (deadline - now + 999) / 1000;
		}
	}
	ran = run_callbacks(loop);
	/* A callback forked, and the child came back here. */
	if (loop_inherited(loop))
		return -ECHILD;
	/*
	 * Replies sent from callbacks go out together, here, or with the
	 * next wait (loop_submits_with_wait()).
	 */
	loop_tx_release_held(loop);
	if (!loop_submits_with_wait(loop)) {
		loop->ops->submit(loop);
		if (loop->ops->dispatch_end)
			loop->ops->dispatch_end(loop);
	}
	loop->dispatching = false;
	loop_free_dead(loop);
	loop->wake_pending = false;
	if (!list_empty(&loop->ready))
		loop_wake(loop);
	return ran;
}

int ipcsock_loop_flush(struct ipcsock_loop *loop)
{
	if (!loop)
		return -EINVAL;
	if (loop_inherited(loop))
		return -ECHILD;
	loop_tx_release_held(loop);
	return loop->ops->submit(loop);
}
