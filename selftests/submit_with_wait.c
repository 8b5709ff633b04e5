// SPDX-License-Identifier: GPL-2.0
/*
 * IPCSOCK_LOOP_SUBMIT_WITH_WAIT: on the loop's own ring, what callbacks
 * send goes to the kernel with the next wait, not at the end of their
 * dispatch; ipcsock_loop_flush() and the next dispatch send it, a loop
 * whose fd was asked for sends at dispatch end as without the flag, and
 * the flag implies ring sends. On epoll and on a shared ring it is
 * accepted and ignored. An echo server over many channels keeps every
 * channel's order.
 */
#include "selftest.h"

#define NR_CHANS	32
#define PER_CHAN	20

FIXTURE(sww)
{
	struct ipcsock_test t;
	struct io_uring ring;
	bool shared;
	struct ipcsock_loop *loop;
	unsigned int echoed;
};

FIXTURE_VARIANT(sww)
{
	enum ipcsock_backend backend;
	bool shared;
	unsigned int ring_flags;
	bool effective;		/* the flag changes when sends go */
};

FIXTURE_VARIANT_ADD(sww, uring)
{
	.backend = IPCSOCK_BACKEND_URING,
	.effective = true,
};

FIXTURE_VARIANT_ADD(sww, epoll)
{
	.backend = IPCSOCK_BACKEND_EPOLL,
};

FIXTURE_VARIANT_ADD(sww, shared_plain)
{
	.backend = IPCSOCK_BACKEND_URING,
	.shared = true,
};

FIXTURE_VARIANT_ADD(sww, shared_defer_taskrun)
{
	.backend = IPCSOCK_BACKEND_URING,
	.shared = true,
	.ring_flags = IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN,
};

FIXTURE_SETUP(sww)
{
	IPCSOCK_LOOP_OPTS(opts, .backend = variant->backend,
			  .flags = IPCSOCK_LOOP_SUBMIT_WITH_WAIT);
	struct io_uring_params p = { .flags = variant->ring_flags };
	int ret;

	ctx_setup(_metadata, &self->t, variant->backend);
	if (!variant->shared) {
		self->loop = ipcsock_loop_new(&opts);
		ASSERT_NE(NULL, self->loop) TH_LOG("%s", strerror(errno));
		ASSERT_EQ(variant->backend, ipcsock_loop_backend(self->loop));
		ASSERT_EQ(0, ctx_keep_loop(&self->t, self->loop));
		return;
	}
	ret = io_uring_queue_init_params(64, &self->ring, &p);
	if (ret == -EINVAL)
		SKIP(return, "ring flags %#x not supported", variant->ring_flags);
	ASSERT_EQ(0, ret) TH_LOG("io_uring_queue_init: %s", strerror(-ret));
	self->shared = true;
	opts.backend = IPCSOCK_BACKEND_AUTO;
	self->loop = ipcsock_loop_new_shared(&self->ring, &opts);
	ASSERT_NE(NULL, self->loop) TH_LOG("%s", strerror(errno));
}

FIXTURE_TEARDOWN(sww)
{
	uint64_t deadline = now_ms() + WAIT_MS;
	int i;

	if (self->shared) {
		for (i = 0; i < CTX_SOCKS; i++) {
			ipcsock_free(self->t.socks[i]);
			self->t.socks[i] = NULL;
		}
		while (!ipcsock_loop_idle(self->loop) && now_ms() < deadline)
			loop_turn(self->loop, &self->ring, 1);
		EXPECT_TRUE(ipcsock_loop_idle(self->loop));
		ipcsock_loop_free(self->loop);
		io_uring_queue_exit(&self->ring);
	}
	ctx_teardown(_metadata, &self->t);
}

/* One turn: a shared ring's owner waits and hands over the CQEs. */
#define turn(self, ms)							\
	loop_turn((self)->loop, (self)->shared ? &(self)->ring : NULL, (ms))

/* Echo every message back as it came. */
static void echo(struct ipcsock *sock, void *arg)
{
	unsigned int *echoed = arg;
	struct ipcsock_payload p;

	while (!ipcsock_receive(sock, &p)) {
		if (!ipcsock_send(sock, &p))
			(*echoed)++;
	}
}

/* A server socket echoing, its raw peer returned. */
#define echo_pair(self, a) ({						\
	int __raw = ctx_raw_pair(_metadata, &(self)->t, (self)->loop, (a)); \
									\
	ipcsock_set_ready_read(*(a), echo, &(self)->echoed);		\
	__raw;								\
})

/* The raw peer sends "ping"; turn until the echo was sent. */
#define ping_until_echoed(self, raw) do {				\
	uint64_t __deadline = now_ms() + WAIT_MS;			\
	unsigned int __want = (self)->echoed + 1;			\
									\
	ASSERT_EQ(TEST_WIRE_HDR_LEN + 4,				\
		  raw_send_msg((raw), "ping", 4, NULL, 0));		\
	while ((self)->echoed < __want && now_ms() < __deadline)	\
		turn((self), 5);					\
	ASSERT_EQ(__want, (self)->echoed);				\
} while (0)

static void expect_pong(struct __test_metadata *_metadata, int raw)
{
	char buf[64];

	ASSERT_EQ(TEST_WIRE_HDR_LEN + 4, raw_recv_msg(raw, buf, sizeof(buf),
						      NULL, 0, NULL, NULL));
	EXPECT_EQ(0, memcmp(buf + TEST_WIRE_HDR_LEN, "ping", 4));
}

TEST_F(sww, reply_goes_with_the_next_wait)
{
	struct ipcsock_stats st;
	struct ipcsock *a;
	int raw;

	raw = echo_pair(self, &a);
	ping_until_echoed(self, raw);
	/* Sent in the callback; on the own ring not yet the kernel's. */
	EXPECT_EQ(!variant->effective, fd_wait_readable(raw, 0));
	turn(self, 0);
	ASSERT_TRUE(fd_wait_readable(raw, WAIT_MS));
	expect_pong(_metadata, raw);

	/* Ring sends come with it; elsewhere the direct path is as ever. */
	ASSERT_EQ(sizeof(st), ipcsock_get_stats(a, &st, sizeof(st)));
	EXPECT_EQ(1, st.tx_msgs);
	EXPECT_EQ(1, st.tx_datagrams);
	EXPECT_EQ(variant->effective ? 0 : 1, st.tx_direct);
	EXPECT_EQ(variant->effective ? 1 : 0, st.tx_ring);
}

TEST_F(sww, flush_sends_it)
{
	struct ipcsock *a;
	int raw;

	raw = echo_pair(self, &a);
	ping_until_echoed(self, raw);
	EXPECT_LE(0, ipcsock_loop_flush(self->loop));
	ASSERT_TRUE(fd_wait_readable(raw, WAIT_MS));
	expect_pong(_metadata, raw);
}

/* An application sleeping on the loop fd has no wait of ours to come. */
TEST_F(sww, loop_fd_sends_at_dispatch_end)
{
	struct ipcsock *a;
	int raw;

	ASSERT_LE(0, ipcsock_loop_fd(self->loop));
	raw = echo_pair(self, &a);
	ping_until_echoed(self, raw);
	EXPECT_TRUE(fd_wait_readable(raw, 0));
	expect_pong(_metadata, raw);
}

/*
 * A server over NR_CHANS channels whose peers send PER_CHAN numbered
 * messages in bursts: every echo comes back, in each channel's order.
 */
TEST_F(sww, echo_server_keeps_every_channel_in_order)
{
	unsigned int sent[NR_CHANS] = { 0 }, got[NR_CHANS] = { 0 };
	struct ipcsock *socks[NR_CHANS] = { NULL };
	unsigned int i, total = 0, seq;
	int raw[NR_CHANS];
	uint64_t deadline;
	char buf[64];
	ssize_t n;

	for (i = 0; i < NR_CHANS; i++) {
		socks[i] = ipcsock_new(self->loop);
		ASSERT_NE(NULL, socks[i]);
		raw[i] = ipcsock_create(socks[i]);
		ASSERT_LE(0, raw[i]);
		ipcsock_set_ready_read(socks[i], echo, &self->echoed);
	}
	deadline = now_ms() + 4 * WAIT_MS;
	while (total < NR_CHANS * PER_CHAN && now_ms() < deadline) {
		for (i = 0; i < NR_CHANS; i++) {
			/* Bursts of up to 3, while the echoes trickle back. */
			while (sent[i] < PER_CHAN && sent[i] - got[i] < 3) {
				ASSERT_EQ(TEST_WIRE_HDR_LEN + 4,
					  raw_send_msg(raw[i], &sent[i], 4,
						       NULL, 0));
				sent[i]++;
			}
		}
		turn(self, 1);
		for (i = 0; i < NR_CHANS; i++) {
			while ((n = raw_recv_msg(raw[i], buf, sizeof(buf),
						 NULL, 0, NULL, NULL)) > 0) {
				ASSERT_EQ(TEST_WIRE_HDR_LEN + 4, n);
				memcpy(&seq, buf + TEST_WIRE_HDR_LEN, 4);
				ASSERT_EQ(got[i], seq) TH_LOG("channel %u", i);
				got[i]++;
				total++;
			}
			ASSERT_EQ(-EAGAIN, n);
		}
	}
	EXPECT_EQ(NR_CHANS * PER_CHAN, total);
	for (i = 0; i < NR_CHANS; i++) {
		ipcsock_free(socks[i]);
		close(raw[i]);
	}
}

TEST_HARNESS_MAIN
