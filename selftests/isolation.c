// SPDX-License-Identifier: GPL-2.0
/*
 * Buffer isolation among many channels on one loop: a channel whose
 * messages the application never receives stops taking them in once its
 * receive buffers are full, which stalls its own peer and no other. The
 * loop serves ISO_CHANNELS other channels at the same time, echoing, on
 * its own io_uring, on epoll and on the application's io_uring; when the
 * stalled channel is finally read, every message its peer managed to send
 * is there, in order.
 */
#include <liburing.h>

#include "selftest.h"

#define ISO_CHANNELS	1000
#define ISO_ROUNDS	3
/* A stalled peer that sent this many has not been stalled. */
#define ISO_FLOOD_MAX	100000u

enum iso_kind { ISO_OWN, ISO_SHARED };

struct iso_chan {
	struct ipcsock *sock;
	int peer;		/* raw client end */
	uint32_t echoed;	/* messages the server echoed */
	bool bad;
};

/* The server: its loop, and the application's ring for the shared one. */
struct iso {
	int fd_base;
	struct io_uring ring;
	bool ring_live;
	struct ipcsock_loop *loop;
	struct iso_chan *ch;	/* [0] stalled, then ISO_CHANNELS flowing */
	unsigned int nr;
	unsigned int stalled_ready;
};

FIXTURE(iso)
{
	struct iso s;
};

FIXTURE_VARIANT(iso)
{
	enum ipcsock_backend backend;
	enum iso_kind kind;
};

FIXTURE_VARIANT_ADD(iso, uring)
{
	.backend = IPCSOCK_BACKEND_URING,
	.kind = ISO_OWN,
};

FIXTURE_VARIANT_ADD(iso, epoll)
{
	.backend = IPCSOCK_BACKEND_EPOLL,
	.kind = ISO_OWN,
};

FIXTURE_VARIANT_ADD(iso, shared)
{
	.backend = IPCSOCK_BACKEND_URING,
	.kind = ISO_SHARED,
};

/* Echo every message back, checking it carries the channel's number. */
static void iso_echo(struct ipcsock *sock, void *arg)
{
	struct iso_chan *c = arg;
	struct ipcsock_payload p;
	uint32_t v[2];

	while (!ipcsock_receive(sock, &p)) {
		if (p.len != sizeof(v) || p.nr_fds) {
			c->bad = true;
			continue;
		}
		memcpy(v, p.data, sizeof(v));
		if (v[1] != c->echoed)
			c->bad = true;
		if (ipcsock_send(sock, &p))
			c->bad = true;
		c->echoed++;
	}
}

/* The stalled channel: told its messages are there, it leaves them. */
static void iso_ignore(struct ipcsock *sock, void *arg)
{
	unsigned int *ready = arg;

	(void)sock;
	(*ready)++;
}

/* One turn of the server: the loop's own wait, or the application's. */
static int iso_turn(struct iso *s, int timeout_ms)
{
	struct __kernel_timespec ts = { .tv_nsec = timeout_ms * 1000000L };
	struct io_uring_cqe *cqe;
	unsigned int head, n = 0;
	int ret;

	if (!s->ring_live)
		return ipcsock_loop_dispatch(s->loop, timeout_ms);
	ret = io_uring_submit_and_wait_timeout(&s->ring, &cqe, 1, &ts,
					       NULL);
	if (ret < 0 && ret != -ETIME && ret != -EINTR)
		return ret;
	io_uring_for_each_cqe(&s->ring, head, cqe) {
		ipcsock_loop_handle_cqe(s->loop, cqe);
		n++;
	}
	io_uring_cq_advance(&s->ring, n);
	return ipcsock_loop_dispatch(s->loop, 0);
}

FIXTURE_SETUP(iso)
{
	struct iso *s = &self->s;
	struct io_uring_params params = {
		.flags = IORING_SETUP_SINGLE_ISSUER |
			 IORING_SETUP_DEFER_TASKRUN,
	};
	unsigned int i;
	int fd;

	s->fd_base = 0;
	if (variant->backend == IPCSOCK_BACKEND_URING && !uring_available())
		SKIP(return, "io_uring is not available to this process");
	if (under_valgrind())
		SKIP(return, "RLIMIT_NOFILE is emulated under valgrind");
	/* Both ends of every channel, and some to spare. */
	if (!nofile_at_least(2 * (ISO_CHANNELS + 1) + 64))
		SKIP(return, "RLIMIT_NOFILE hard limit below %u",
		     2 * (ISO_CHANNELS + 1) + 64);
	s->fd_base = count_open_fds();
	if (variant->kind == ISO_SHARED) {
		ASSERT_EQ(0, io_uring_queue_init_params(256, &s->ring,
							&params));
		s->ring_live = true;
		s->loop = ipcsock_loop_new_shared(&s->ring, NULL);
	} else {
		IPCSOCK_LOOP_OPTS(opts, .backend = variant->backend);

		s->loop = ipcsock_loop_new(&opts);
	}
	ASSERT_NE(NULL, s->loop);
	s->ch = calloc(ISO_CHANNELS + 1, sizeof(*s->ch));
	ASSERT_NE(NULL, s->ch);
	for (i = 0; i <= ISO_CHANNELS; i++) {
		s->ch[i].peer = -1;
		s->ch[i].sock = ipcsock_new(s->loop);
		ASSERT_NE(NULL, s->ch[i].sock);
		s->nr = i + 1;
		fd = ipcsock_create(s->ch[i].sock);
		ASSERT_LE(0, fd) TH_LOG("channel %u: %s", i, strerror(-fd));
		s->ch[i].peer = fd;
		if (i)
			ipcsock_set_ready_read(s->ch[i].sock, iso_echo,
					       &s->ch[i]);
		else
			ipcsock_set_ready_read(s->ch[i].sock, iso_ignore,
					       &s->stalled_ready);
	}
}

FIXTURE_TEARDOWN(iso)
{
	struct iso *s = &self->s;
	unsigned int i;
	int tries;

	for (i = 0; i < s->nr; i++) {
		ipcsock_free(s->ch[i].sock);
		if (s->ch[i].peer >= 0)
			close(s->ch[i].peer);
	}
	free(s->ch);
	if (s->loop && s->ring_live)
		for (tries = 0; tries < 200 &&
		     !ipcsock_loop_idle(s->loop); tries++)
			iso_turn(s, 10);
	if (s->loop)
		ipcsock_loop_free(s->loop);
	if (s->ring_live)
		io_uring_queue_exit(&s->ring);
	if (s->fd_base)
		EXPECT_EQ(s->fd_base, count_open_fds());
}

/* Send one message on every flowing channel, wait for every echo. */
static bool iso_round(struct __test_metadata *_metadata,
		      struct iso *s, uint32_t round)
{
	uint32_t v[2], want = round + 1;
	unsigned int i, done = 0;
	uint64_t deadline;
	unsigned char buf[64];
	ssize_t n;

	for (i = 1; i <= ISO_CHANNELS; i++) {
		v[0] = i;
		v[1] = round;
		n = raw_send_msg(s->ch[i].peer, v, sizeof(v), NULL, 0);
		EXPECT_EQ((ssize_t)(TEST_WIRE_HDR_LEN + sizeof(v)), n)
			TH_LOG("channel %u round %u: %zd", i, round, n);
	}
	deadline = now_ms() + WAIT_MS;
	while (now_ms() < deadline) {
		EXPECT_LE(0, iso_turn(s, 2));
		for (done = 0, i = 1; i <= ISO_CHANNELS; i++)
			done += s->ch[i].echoed == want;
		if (done == ISO_CHANNELS)
			break;
	}
	EXPECT_EQ(ISO_CHANNELS, done);
	for (i = 1; i <= ISO_CHANNELS; i++) {
		EXPECT_FALSE(s->ch[i].bad) TH_LOG("channel %u", i);
		n = raw_recv(s->ch[i].peer, buf, sizeof(buf), NULL, 0,
			     NULL, NULL);
		if (n != (ssize_t)(TEST_WIRE_HDR_LEN + sizeof(v)))
			return false;
		memcpy(v, buf + TEST_WIRE_HDR_LEN, sizeof(v));
		if (v[0] != i || v[1] != round)
			return false;
	}
	return done == ISO_CHANNELS;
}

TEST_F(iso, unread_channel_stalls_only_its_peer)
{
	struct iso *s = &self->s;
	uint32_t sent = 0, got = 0, v[2];
	struct ipcsock_payload p;
	unsigned int round;
	uint64_t deadline;
	ssize_t n;

	/*
	 * Flood the stalled channel, letting the loop take in what it will,
	 * until its peer can send no more.
	 */
	deadline = now_ms() + WAIT_MS;
	while (sent < ISO_FLOOD_MAX && now_ms() < deadline) {
		v[0] = 0;
		v[1] = sent;
		n = raw_send_msg(s->ch[0].peer, v, sizeof(v), NULL, 0);
		if (n == -EAGAIN) {
			/* Full only once the loop had its chance. */
			iso_turn(s, 2);
			iso_turn(s, 0);
			n = raw_send_msg(s->ch[0].peer, v, sizeof(v),
					 NULL, 0);
			if (n == -EAGAIN)
				break;
		}
		ASSERT_EQ((ssize_t)(TEST_WIRE_HDR_LEN + sizeof(v)), n);
		sent++;
	}
	ASSERT_GT(ISO_FLOOD_MAX, sent) TH_LOG("the peer was never stalled");
	EXPECT_LT(0, s->stalled_ready);

	/* Every other channel flows, round after round. */
	for (round = 0; round < ISO_ROUNDS; round++)
		ASSERT_TRUE(iso_round(_metadata, s, round))
			TH_LOG("round %u", round);
	/* And the stalled peer is still stalled. */
	EXPECT_EQ(-EAGAIN, raw_send_msg(s->ch[0].peer, v, sizeof(v),
					NULL, 0));

	/* Read at last: everything the peer sent, in order. */
	deadline = now_ms() + WAIT_MS;
	while (got < sent && now_ms() < deadline) {
		if (ipcsock_receive(s->ch[0].sock, &p)) {
			iso_turn(s, 2);
			continue;
		}
		ASSERT_EQ(sizeof(v), p.len);
		memcpy(v, p.data, sizeof(v));
		ASSERT_EQ(0, v[0]);
		ASSERT_EQ(got, v[1]);
		got++;
	}
	EXPECT_EQ(sent, got);
	iso_turn(s, 0);
	EXPECT_EQ(-EAGAIN, ipcsock_receive(s->ch[0].sock, &p));
}

TEST_HARNESS_MAIN
