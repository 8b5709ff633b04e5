// SPDX-License-Identifier: GPL-2.0
/*
 * Faults from outside the library: a sender over its in-flight fd limit
 * (on a single message and in the middle of a batch), a completion queue
 * that overflows, a peer killed mid-batch.
 */
#include "selftest.h"

#include <pwd.h>
#include <sys/resource.h>

FIXTURE(faults)
{
	int fds_before;
};

REAL_BACKEND_VARIANTS(faults);

FIXTURE_SETUP(faults)
{
	self->fds_before = count_open_fds();
}

FIXTURE_TEARDOWN(faults)
{
	EXPECT_EQ(self->fds_before, count_open_fds());
}

/* Exit codes of the unprivileged child, one per check. */
enum {
	TMR_OK,
	TMR_SETUP,
	TMR_NO_EFFECT,
	TMR_WRONG_ERROR,
	TMR_NOT_USABLE,
	TMR_LEAK,
};

#define TMR_LIMIT	32

/* What both unprivileged children set up: a library end and a raw peer. */
struct nobody_chan {
	struct ipcsock_loop *loop;
	struct ipcsock *sock;
	int sv[2];		/* sv[0] the library's, sv[1] the raw peer */
	int mfd;		/* the memfd every message carries */
	int fds;		/* open fds before, for the leak check */
};

/*
 * As an unprivileged user (CAP_SYS_RESOURCE lifts the limit) with
 * RLIMIT_NOFILE at TMR_LIMIT; false when any step fails.
 */
static bool nobody_chan_open(struct nobody_chan *c,
			     enum ipcsock_backend backend)
{
	struct rlimit rl = { TMR_LIMIT, TMR_LIMIT };

	if (setgid(65534) || setuid(65534) || setrlimit(RLIMIT_NOFILE, &rl))
		return false;
	c->fds = count_open_fds();
	c->loop = loop_new(backend, 0, 0, 0);
	c->sock = c->loop ? ipcsock_new(c->loop) : NULL;
	c->mfd = memfd_with("inflight", "x");
	return c->sock && c->mfd >= 0 &&
	       !socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, c->sv) &&
	       !ipcsock_bind(c->sock, c->sv[0]);
}

/* The raw peer reads everything there is; returns how many messages. */
static int nobody_chan_drain(struct nobody_chan *c)
{
	unsigned int nr;
	int rfds[4], got = 0;
	char buf[64];

	while (raw_recv_msg(c->sv[1], buf, sizeof(buf), rfds, 4, &nr, NULL) > 0) {
		close_fds_array(rfds, nr);
		got++;
	}
	return got;
}

/* Frees it all; true when no fd was left behind. */
static bool nobody_chan_close(struct nobody_chan *c)
{
	ipcsock_free(c->sock);
	ipcsock_loop_free(c->loop);
	close(c->sv[1]);
	close(c->mfd);
	return count_open_fds() == c->fds;
}

/*
 * Runs @child for the variant's backend in a forked process, since it
 * changes uid and limits for good, and expects it to exit with 0.
 */
static void run_as_nobody(struct __test_metadata *_metadata,
			  int (*child)(struct __test_metadata *,
				       enum ipcsock_backend),
			  enum ipcsock_backend backend)
{
	if (geteuid())
		SKIP(return, "needs root to become an unprivileged user");
	/*
	 * Valgrind emulates RLIMIT_NOFILE (and refuses a new hard limit):
	 * the kernel's in-flight check never sees the limit.
	 */
	if (under_valgrind())
		SKIP(return, "RLIMIT_NOFILE is emulated under valgrind");
	expect_child_exit(_metadata, child, backend, 0);
}

/*
 * As an unprivileged user (CAP_SYS_RESOURCE lifts the limit) with
 * RLIMIT_NOFILE at TMR_LIMIT, send one fd a message to a peer that does
 * not read: once more fds are in flight than the limit, the kernel
 * refuses with ETOOMANYREFS. send must say so, queue nothing, and leave
 * the channel usable once the peer has read.
 */
static int toomanyrefs_child(struct __test_metadata *_metadata,
			     enum ipcsock_backend backend)
{
	struct nobody_chan c;
	struct ipcsock_payload p;
	unsigned int nr;
	int i, ret = 0;
	int rfds[4];
	char buf[64];

	if (!nobody_chan_open(&c, backend))
		return TMR_SETUP;
	p = msg_of("m", 1, &c.mfd, 1);
	for (i = 0; i < 4 * TMR_LIMIT; i++) {
		ret = ipcsock_send(c.sock, &p);
		if (ret)
			break;
	}
	if (!ret)
		return TMR_NO_EFFECT;
	if (ret != -ETOOMANYREFS)
		return TMR_WRONG_ERROR;
	/* The peer reads everything: nothing in flight any more. */
	if (nobody_chan_drain(&c) != i)
		return TMR_WRONG_ERROR;
	for (i = 0; i < 10; i++)
		if (ipcsock_send(c.sock, &p))
			return TMR_NOT_USABLE;
	for (i = 0; i < 10; i++) {
		if (raw_recv_msg(c.sv[1], buf, sizeof(buf), rfds, 4, &nr,
			     NULL) <= 0)
			return TMR_NOT_USABLE;
		close_fds_array(rfds, nr);
	}
	return nobody_chan_close(&c) ? TMR_OK : TMR_LEAK;
}

TEST_F(faults, sender_over_inflight_fd_limit)
{
	run_as_nobody(_metadata, toomanyrefs_child, variant->backend);
}

/* The channel failed on the kernel's refusal: hangup(-ETOOMANYREFS). */
static bool hung_up_refused(struct __test_metadata *_metadata,
			    struct nobody_chan *c, struct rec *rc)
{
	if (dispatch_until(c->loop, rc->hangup, WAIT_MS) &&
	    rc->hangup_err == -ETOOMANYREFS)
		return true;
	TH_LOG("hangup %d, err %d", rc->hangup, rc->hangup_err);
	return false;
}

/* Once the channel failed, sends give -EPIPE. */
static bool send_gives_epipe(struct __test_metadata *_metadata,
			     struct nobody_chan *c,
			     const struct ipcsock_payload *p)
{
	int ret = ipcsock_send(c->sock, p);

	if (ret == -EPIPE)
		return true;
	TH_LOG("send after the failure: %d, not -EPIPE", ret);
	return false;
}

/* Exit codes of the unprivileged child of the mid-batch test. */
enum {
	TMB_OK,
	TMB_SETUP,
	TMB_RETURNED_COUNT,
	TMB_WRONG_ERROR,
	TMB_NO_HANGUP,
	TMB_NOT_FAILED,
	TMB_DELIVERY,
	TMB_LEAK,
};

#define TMB_SINGLES	(TMR_LIMIT - 2)
#define TMB_BATCH	10
/* Two never share a record (16 KiB at most): one sendmsg each. */
#define TMB_LEN		8192

/*
 * As toomanyrefs_child, but the limit strikes inside a batch that goes
 * out directly: TMB_SINGLES one-fd messages in flight first, then a batch
 * of TMB_BATCH, whose head the kernel takes before it refuses the rest.
 * The head cannot be taken back, so the peer would be left with a torn
 * batch: the channel must fail (hangup with -ETOOMANYREFS, then -EPIPE)
 * and send_batch must say so instead of returning the count. It says
 * -EPIPE, not -ETOOMANYREFS: that one promises a channel still usable.
 */
static int toomanyrefs_batch_child(struct __test_metadata *_metadata,
				   enum ipcsock_backend backend)
{
	static const char big[TMB_LEN];
	struct ipcsock_payload p[TMB_BATCH], single;
	struct nobody_chan c;
	int i, ret, got;
	struct rec rc;

	if (!nobody_chan_open(&c, backend))
		return TMB_SETUP;
	rec_attach(&rc, c.sock);
	for (i = 0; i < TMB_BATCH; i++)
		p[i] = msg_of(big, sizeof(big), &c.mfd, 1);
	single = msg_of("m", 1, &c.mfd, 1);
	for (i = 0; i < TMB_SINGLES; i++)
		if (ipcsock_send(c.sock, &single))
			return TMB_SETUP;

	ret = ipcsock_send_batch(c.sock, p, TMB_BATCH);
	if (ret == TMB_BATCH) {
		TH_LOG("send_batch returned the count with the batch torn");
		return TMB_RETURNED_COUNT;
	}
	if (ret != -EPIPE) {
		TH_LOG("send_batch: %d, not -EPIPE", ret);
		return TMB_WRONG_ERROR;
	}
	if (!hung_up_refused(_metadata, &c, &rc))
		return TMB_NO_HANGUP;
	if (!send_gives_epipe(_metadata, &c, &p[0]))
		return TMB_NOT_FAILED;
	got = nobody_chan_drain(&c);
	/* The singles and the head of the batch, not all of it. */
	if (got <= TMB_SINGLES || got >= TMB_SINGLES + TMB_BATCH) {
		TH_LOG("the peer received %d messages", got);
		return TMB_DELIVERY;
	}
	return nobody_chan_close(&c) ? TMB_OK : TMB_LEAK;
}

TEST_F(faults, sender_over_inflight_fd_limit_mid_batch)
{
	run_as_nobody(_metadata, toomanyrefs_batch_child, variant->backend);
}

/*
 * A loop of the test's own, made with @opts, and a channel on it whose
 * peer end is returned, for tests that need loop options the fixture
 * does not set. The test frees both and closes the peer end.
 */
static int own_loop_channel(struct __test_metadata *_metadata,
			    const struct ipcsock_loop_opts *opts,
			    struct ipcsock_loop **loop, struct ipcsock **sock)
{
	int remote;

	*loop = ipcsock_loop_new(opts);
	ASSERT_NE(NULL, *loop);
	*sock = ipcsock_new(*loop);
	ASSERT_NE(NULL, *sock);
	remote = ipcsock_create(*sock);
	ASSERT_LE(0, remote);
	return remote;
}

/*
 * A burst much larger than the completion queue: multishot RECVMSG stops
 * when the CQ overflows; nothing may be lost and order must hold.
 */
TEST_F(faults, cq_overflow_burst)
{
	IPCSOCK_LOOP_OPTS(opts, .backend = variant->backend,
			  .ring_entries = 4, .recv_buffers = 512,
			  .max_msg_size = 64);
	enum { BURST = 2000 };
	struct ipcsock_payload in;
	struct ipcsock_loop *loop;
	struct ipcsock *sock;
	uint32_t i, v, next = 0;
	uint64_t deadline;
	int remote;

	remote = own_loop_channel(_metadata, &opts, &loop, &sock);
	/* Raise the peer's buffer so the whole burst sits in the socket. */
	v = 4 << 20;
	setsockopt(remote, SOL_SOCKET, SO_SNDBUFFORCE, &v, sizeof(v));
	for (i = 0; i < BURST; i++) {
		ssize_t n = raw_send_msg(remote, &i, sizeof(i), NULL, 0);

		if (n == -EAGAIN) {
			/* Socket full: let the library take some. */
			ipcsock_loop_dispatch(loop, 10);
			while (!ipcsock_receive(sock, &in)) {
				memcpy(&v, in.data, sizeof(v));
				ASSERT_EQ(next, v);
				next++;
			}
			i--;
			continue;
		}
		ASSERT_EQ(TEST_WIRE_HDR_LEN + sizeof(i), n);
	}
	deadline = now_ms() + WAIT_MS;
	while (next < BURST && now_ms() < deadline) {
		ipcsock_loop_dispatch(loop, 10);
		while (!ipcsock_receive(sock, &in)) {
			ASSERT_EQ(sizeof(v), in.len);
			memcpy(&v, in.data, sizeof(v));
			ASSERT_EQ(next, v);
			next++;
		}
	}
	EXPECT_EQ(BURST, next);
	ipcsock_free(sock);
	close(remote);
	ipcsock_loop_free(loop);
}

/*
 * The peer is SIGKILLed while a batch is on its way: what it had
 * received is gone with it, the sender gets hangup once, then -EPIPE,
 * and the queued messages' fds are closed.
 */
TEST_F(faults, peer_killed_mid_batch)
{
	IPCSOCK_LOOP_OPTS(opts, .backend = variant->backend);
	struct ipcsock_payload batch[32];
	struct ipcsock_loop *loop;
	struct ipcsock *sock;
	struct rec rc;
	int sv[2], mfd, status, i, ret = 0;
	pid_t pid;

	pid = fork_with_pair(_metadata, sv);
	if (!pid) {
		/* A peer that never reads. */
		close(sv[0]);
		pause();
		_exit(0);
	}
	close(sv[1]);
	loop = ipcsock_loop_new(&opts);
	ASSERT_NE(NULL, loop);
	sock = ipcsock_new(loop);
	ASSERT_NE(NULL, sock);
	ASSERT_EQ(0, ipcsock_bind(sock, sv[0]));
	rec_attach(&rc, sock);
	mfd = memfd_with("batch", "b");
	ASSERT_LE(0, mfd);
	for (i = 0; i < 32; i++)
		batch[i] = msg_of("0123456789abcdef", 16, &mfd, 1);
	/* Fill the socket and the queue. */
	while ((ret = ipcsock_send_batch(sock, batch, 32)) == 32)
		;
	EXPECT_EQ(-ENOBUFS, ret);
	ASSERT_EQ(0, kill(pid, SIGKILL));
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	ASSERT_TRUE(dispatch_until(loop, rc.hangup, WAIT_MS));
	dispatch_for(loop, 50);
	EXPECT_EQ(1, rc.hangup);
	EXPECT_EQ(-ECONNRESET, rc.hangup_err);
	EXPECT_EQ(-EPIPE, ipcsock_send(sock, &batch[0]));
	ipcsock_free(sock);
	ipcsock_loop_free(loop);
	close(mfd);
}

/*
 * A closed fd number in a batch on the queued path: the dup made for an
 * earlier payload takes the lowest free number, which is the closed one;
 * duping it next would succeed on our own copy. Found by fuzz-peer.
 */
TEST_F(faults, closed_fd_in_queued_batch)
{
	IPCSOCK_LOOP_OPTS(opts, .backend = variant->backend,
			  .flags = variant->backend == IPCSOCK_BACKEND_URING ?
				   IPCSOCK_LOOP_RING_SENDS : 0);
	struct ipcsock_payload p[2];
	struct ipcsock_loop *loop;
	struct ipcsock *sock;
	int remote, mfd, stale;
	char buf[16];

	remote = own_loop_channel(_metadata, &opts, &loop, &sock);
	mfd = memfd_with("secret", "s");
	ASSERT_LE(0, mfd);
	stale = dup(mfd);
	ASSERT_LE(0, stale);
	close(stale);
	p[0] = msg_of("a", 1, &mfd, 1);
	p[1] = msg_of("b", 1, &stale, 1);
	EXPECT_EQ(-EBADF, ipcsock_send_batch(sock, p, 2));
	dispatch_for(loop, 20);
	/* Nothing went out, and the stale number stays closed. */
	EXPECT_EQ(-EAGAIN, raw_recv(remote, buf, sizeof(buf), NULL, 0, NULL,
				    NULL));
	EXPECT_FALSE(fd_is_open(stale));
	ipcsock_free(sock);
	ipcsock_loop_free(loop);
	close(remote);
	close(mfd);
}

/*
 * An empty datagram that the peer follows with a message and a close:
 * it reads like EOF, but the message behind it shows it was a datagram,
 * and so a protocol error, not an orderly close. Found by fuzz-peer.
 */
TEST_F(faults, empty_datagram_then_message_then_close)
{
	IPCSOCK_LOOP_OPTS(opts, .backend = variant->backend);
	struct ipcsock_loop *loop;
	struct ipcsock *sock;
	uint32_t v = 7;
	struct rec rc;
	int remote;

	remote = own_loop_channel(_metadata, &opts, &loop, &sock);
	rec_attach(&rc, sock);
	ASSERT_EQ(0, send(remote, "", 0, 0));
	ASSERT_EQ(TEST_WIRE_HDR_LEN + sizeof(v),
		  raw_send_msg(remote, &v, sizeof(v), NULL, 0));
	close(remote);
	ASSERT_TRUE(dispatch_until(loop, rc.hangup, WAIT_MS));
	EXPECT_EQ(-EPROTO, rc.hangup_err);
	EXPECT_EQ(0, rc.received);
	ipcsock_free(sock);
	ipcsock_loop_free(loop);
}

/*
 * -ETOOMANYREFS on every send path, as ipcsock_send(3) states it: the
 * channel survives exactly when send returned the error, which it does
 * when the kernel refused the call's first message before anything of
 * the call went out or was queued; a message send accepted and the kernel
 * refuses later fails the channel with hangup(-ETOOMANYREFS), and sends
 * give -EPIPE from then on.
 *
 * The fds in flight are set up exactly: one datagram carrying
 * TMR_LIMIT + 1 fds on a pair of the test's own that nobody reads puts
 * the user over its limit, so the kernel refuses the next fd this user
 * sends, whatever the channel holds; closing that pair ends it.
 */
enum {
	TMP_OK,
	TMP_SETUP,
	TMP_WRONG_RETURN,
	TMP_HANGUP,
	TMP_DELIVERY,
	TMP_NOT_USABLE,
	TMP_NOT_FAILED,
	TMP_LEAK,
};

static bool ballast_load(int bl[2], int fd)
{
	int fds[TMR_LIMIT + 1], i;

	for (i = 0; i < TMR_LIMIT + 1; i++)
		fds[i] = fd;
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, bl))
		return false;
	return raw_send_hdr(bl[0], NULL, "b", 1, fds, TMR_LIMIT + 1) == 1;
}

static void ballast_unload(int bl[2])
{
	close(bl[0]);
	close(bl[1]);
}

/*
 * Nothing queued: send and send_batch meet the refusal themselves, return
 * it, and neither sent nor queued anything; the channel works on once
 * the fds in flight are gone.
 */
static int toomany_direct_child(struct __test_metadata *_metadata,
				enum ipcsock_backend backend)
{
	struct ipcsock_payload p[3];
	struct nobody_chan c;
	struct rec rc;
	int bl[2], ret, i;

	if (!nobody_chan_open(&c, backend) || !ballast_load(bl, c.mfd))
		return TMP_SETUP;
	rec_attach(&rc, c.sock);
	for (i = 0; i < 3; i++)
		p[i] = msg_of("m", 1, &c.mfd, 1);
	ret = ipcsock_send(c.sock, &p[0]);
	if (ret != -ETOOMANYREFS) {
		TH_LOG("send: %d, not -ETOOMANYREFS", ret);
		return TMP_WRONG_RETURN;
	}
	ret = ipcsock_send_batch(c.sock, p, 3);
	if (ret != -ETOOMANYREFS) {
		TH_LOG("send_batch: %d, not -ETOOMANYREFS", ret);
		return TMP_WRONG_RETURN;
	}
	dispatch_for(c.loop, 50);
	if (rc.hangup) {
		TH_LOG("hangup(%d) after a refused send", rc.hangup_err);
		return TMP_HANGUP;
	}
	if (nobody_chan_drain(&c))
		return TMP_DELIVERY;
	ballast_unload(bl);
	ret = ipcsock_send_batch(c.sock, p, 3);
	if (ret != 3) {
		TH_LOG("send_batch once the fds are gone: %d", ret);
		return TMP_NOT_USABLE;
	}
	dispatch_for(c.loop, 20);
	if (rc.hangup || nobody_chan_drain(&c) != 3)
		return TMP_NOT_USABLE;
	return nobody_chan_close(&c) ? TMP_OK : TMP_LEAK;
}

TEST_F(faults, toomanyrefs_direct)
{
	run_as_nobody(_metadata, toomany_direct_child, variant->backend);
}

/*
 * The socket is full, so send queues the message and returns 0; the
 * kernel refuses it once the peer made room. Order forbids sending what
 * came after it: the channel fails.
 */
static int toomany_queued_child(struct __test_metadata *_metadata,
				enum ipcsock_backend backend)
{
	static char fill[4096];
	struct ipcsock_payload p;
	struct nobody_chan c;
	int bl[2], ret, nr_fill = 0;
	struct rec rc;

	if (!nobody_chan_open(&c, backend) || !ballast_load(bl, c.mfd))
		return TMP_SETUP;
	rec_attach(&rc, c.sock);
	/* Fill the socket behind the library's back: sends must queue. */
	while (send(c.sv[0], fill, sizeof(fill), MSG_DONTWAIT) > 0)
		nr_fill++;
	if (errno != EAGAIN || !nr_fill)
		return TMP_SETUP;
	p = msg_of("m", 1, &c.mfd, 1);
	ret = ipcsock_send(c.sock, &p);
	if (ret)
		TH_LOG("send of a message to queue: %d", ret);
	p = msg_of("after", 5, NULL, 0);
	if (ret || ipcsock_send(c.sock, &p))
		return TMP_WRONG_RETURN;
	/* The peer makes room: the queue drains into the refusal. */
	if (nobody_chan_drain(&c) != nr_fill)
		return TMP_SETUP;
	if (!hung_up_refused(_metadata, &c, &rc))
		return TMP_HANGUP;
	if (!send_gives_epipe(_metadata, &c, &p))
		return TMP_NOT_FAILED;
	/* Neither the refused message nor the one behind it arrived. */
	dispatch_for(c.loop, 20);
	if (nobody_chan_drain(&c))
		return TMP_DELIVERY;
	ballast_unload(bl);
	return nobody_chan_close(&c) ? TMP_OK : TMP_LEAK;
}

TEST_F(faults, toomanyrefs_queued)
{
	run_as_nobody(_metadata, toomany_queued_child, variant->backend);
}

/*
 * IPCSOCK_LOOP_RING_SENDS: every message is accepted into the queue and
 * sent on the ring, so the refusal comes as a completion, after send
 * returned 0: the channel fails.
 */
static int toomany_ring_child(struct __test_metadata *_metadata,
			      enum ipcsock_backend backend)
{
	struct ipcsock_payload p;
	struct nobody_chan c;
	struct rec rc;
	int bl[2], ret;

	if (!nobody_chan_open(&c, backend) || !ballast_load(bl, c.mfd))
		return TMP_SETUP;
	rec_attach(&rc, c.sock);
	p = msg_of("m", 1, &c.mfd, 1);
	ret = ipcsock_send(c.sock, &p);
	if (ret) {
		TH_LOG("ring send: %d, not 0", ret);
		return TMP_WRONG_RETURN;
	}
	if (!hung_up_refused(_metadata, &c, &rc))
		return TMP_HANGUP;
	ballast_unload(bl);
	if (!send_gives_epipe(_metadata, &c, &p))
		return TMP_NOT_FAILED;
	dispatch_for(c.loop, 20);
	if (nobody_chan_drain(&c))
		return TMP_DELIVERY;
	return nobody_chan_close(&c) ? TMP_OK : TMP_LEAK;
}

TEST_F(faults, toomanyrefs_ring_sends)
{
	if (variant->backend != IPCSOCK_BACKEND_URING)
		SKIP(return, "ring sends are io_uring's");
	run_as_nobody(_metadata, toomany_ring_child, BACKEND_URING_RING_SENDS);
}

TEST_HARNESS_MAIN
