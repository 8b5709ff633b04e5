// SPDX-License-Identifier: GPL-2.0
/*
 * Shared-ring mode: the library embedded in an application's own
 * io_uring. The application submits and reaps; every CQE goes through
 * ipcsock_loop_handle_cqe() first, then ipcsock_loop_dispatch(loop, 0)
 * runs the callbacks. The application's own requests on the same ring
 * must come back to it untouched.
 */
#include "helpers.h"

#define APP_UD_BASE	0x1000ull
#define NR_MSGS		2000

/* The application: its ring, the loop embedded in it, what it saw. */
struct app {
	struct io_uring ring;
	struct ipcsock_loop *loop;
	struct ipcsock *a, *b;
	int fds_before;
	unsigned int next_seq;
	unsigned int app_cqes;
	bool order_ok;
	int hangup_err;
	bool hung_up;
	bool leave_one;
};

FIXTURE(shared)
{
	struct app app;
};

FIXTURE_VARIANT(shared)
{
	unsigned int flags;
};

FIXTURE_VARIANT_ADD(shared, plain)
{
	.flags = 0,
};

FIXTURE_VARIANT_ADD(shared, defer_taskrun)
{
	.flags = IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN,
};

static void on_ready(struct ipcsock *sock, void *arg)
{
	struct app *self = arg;
	struct ipcsock_payload p;
	unsigned int seq;

	while (!ipcsock_receive(sock, &p)) {
		if (p.len != sizeof(seq)) {
			self->order_ok = false;
			continue;
		}
		memcpy(&seq, p.data, sizeof(seq));
		if (seq != self->next_seq)
			self->order_ok = false;
		self->next_seq++;
		/* Leave a message behind to see the library wake us. */
		if (self->leave_one)
			break;
	}
}

static void on_hangup(struct ipcsock *sock, int err, void *arg)
{
	struct app *self = arg;

	(void)sock;
	self->hung_up = true;
	self->hangup_err = err;
}

/* One turn of the application's loop: wait, hand out CQEs, dispatch. */
static int app_turn(struct app *self, int timeout_ms)
{
	struct __kernel_timespec ts = {
		.tv_nsec = timeout_ms * 1000000L,
	};
	struct io_uring_cqe *cqe;
	unsigned int head, n = 0;
	int ret;

	ret = io_uring_submit_and_wait_timeout(&self->ring, &cqe, 1, &ts, NULL);
	if (ret < 0 && ret != -ETIME)
		return ret;
	io_uring_for_each_cqe(&self->ring, head, cqe) {
		if (!ipcsock_loop_handle_cqe(self->loop, cqe)) {
			if (cqe->user_data >= APP_UD_BASE &&
			    IPCSOCK_USER_DATA_IS_OURS(cqe->user_data) == 0)
				self->app_cqes++;
		}
		n++;
	}
	io_uring_cq_advance(&self->ring, n);
	return ipcsock_loop_dispatch(self->loop, 0);
}

FIXTURE_SETUP(shared)
{
	struct io_uring_params p = { .flags = variant->flags };
	struct app *app = &self->app;
	int fd;

	app->fds_before = count_open_fds();
	app->order_ok = true;
	ASSERT_EQ(0, io_uring_queue_init_params(64, &app->ring, &p));
	app->loop = ipcsock_loop_new_shared(&app->ring, NULL);
	ASSERT_NE(NULL, app->loop);
	ASSERT_EQ(IPCSOCK_BACKEND_URING, ipcsock_loop_backend(app->loop));
	app->a = ipcsock_new(app->loop);
	app->b = ipcsock_new(app->loop);
	ASSERT_NE(NULL, app->a);
	ASSERT_NE(NULL, app->b);
	fd = ipcsock_create(app->a);
	ASSERT_GE(fd, 0);
	ASSERT_EQ(0, ipcsock_bind(app->b, fd));
	ipcsock_set_ready_read(app->b, on_ready, app);
	ipcsock_set_hangup(app->b, on_hangup, app);
}

FIXTURE_TEARDOWN(shared)
{
	struct app *app = &self->app;
	int i;

	ipcsock_free(app->a);
	ipcsock_free(app->b);
	/* Closing cancels; the cancellations come back through our CQ. */
	for (i = 0; i < 100 && !ipcsock_loop_idle(app->loop); i++)
		app_turn(app, 10);
	EXPECT_TRUE(ipcsock_loop_idle(app->loop));
	ipcsock_loop_free(app->loop);
	io_uring_queue_exit(&app->ring);
	EXPECT_EQ(app->fds_before, count_open_fds());
}

/* Messages arrive in order and the application's own CQEs stay its own. */
TEST_F(shared, order_and_foreign_cqes)
{
	struct app *app = &self->app;
	struct io_uring_sqe *sqe;
	unsigned int i, app_sent = 0;
	uint64_t deadline;

	for (i = 0; i < NR_MSGS; i++) {
		struct ipcsock_payload p = { .data = &i, .len = sizeof(i) };
		int ret = ipcsock_send(app->a, &p);

		if (ret == -ENOBUFS) {
			ASSERT_LE(0, app_turn(app, 10));
			i--;
			continue;
		}
		ASSERT_EQ(0, ret);
		if (i % 100 == 0) {
			sqe = io_uring_get_sqe(&app->ring);
			ASSERT_NE(NULL, sqe);
			io_uring_prep_nop(sqe);
			io_uring_sqe_set_data64(sqe, APP_UD_BASE + app_sent++);
		}
	}
	deadline = now_ms() + WAIT_MS;
	while ((app->next_seq < NR_MSGS || app->app_cqes < app_sent) &&
	       now_ms() < deadline)
		ASSERT_LE(0, app_turn(app, 10));
	EXPECT_EQ(NR_MSGS, app->next_seq);
	EXPECT_TRUE(app->order_ok);
	EXPECT_EQ(app_sent, app->app_cqes);
}

/*
 * A callback that leaves a message unreceived must be called again even
 * though no new completion arrives: the library wakes the ring itself.
 */
TEST_F(shared, unreceived_message_wakes_ring)
{
	struct app *app = &self->app;
	unsigned int i;
	uint64_t deadline;

	app->leave_one = true;
	for (i = 0; i < 8; i++) {
		struct ipcsock_payload p = { .data = &i, .len = sizeof(i) };

		ASSERT_EQ(0, ipcsock_send(app->a, &p));
	}
	deadline = now_ms() + WAIT_MS;
	while (app->next_seq < 8 && now_ms() < deadline)
		ASSERT_LE(0, app_turn(app, 1000));
	EXPECT_EQ(8, app->next_seq);
	EXPECT_TRUE(app->order_ok);
}

/* Peer close reaches the shared loop as hangup(0) after the messages. */
TEST_F(shared, hangup_after_messages)
{
	struct app *app = &self->app;
	unsigned int i;
	uint64_t deadline;

	for (i = 0; i < 3; i++) {
		struct ipcsock_payload p = { .data = &i, .len = sizeof(i) };

		ASSERT_EQ(0, ipcsock_send(app->a, &p));
	}
	ipcsock_close(app->a);
	deadline = now_ms() + WAIT_MS;
	while (!app->hung_up && now_ms() < deadline)
		ASSERT_LE(0, app_turn(app, 10));
	EXPECT_TRUE(app->hung_up);
	EXPECT_EQ(0, app->hangup_err);
	EXPECT_EQ(3, app->next_seq);
	EXPECT_TRUE(app->order_ok);
}

/* Not the loop's ring: handle_cqe says "not ours" for foreign tags. */
TEST_F(shared, foreign_user_data_not_ours)
{
	struct app *app = &self->app;
	struct io_uring_cqe cqe = { .user_data = 0x12345678, .res = 0 };

	EXPECT_EQ(0, ipcsock_loop_handle_cqe(app->loop, &cqe));
	cqe.user_data = (uint64_t)(uintptr_t)&cqe;
	EXPECT_EQ(0, ipcsock_loop_handle_cqe(app->loop, &cqe));
}

TEST(shared_rejects_epoll_backend)
{
	IPCSOCK_LOOP_OPTS(opts, .backend = IPCSOCK_BACKEND_EPOLL);
	struct io_uring ring;

	ASSERT_EQ(0, io_uring_queue_init(8, &ring, 0));
	EXPECT_EQ(NULL, ipcsock_loop_new_shared(&ring, &opts));
	EXPECT_EQ(EINVAL, errno);
	EXPECT_EQ(NULL, ipcsock_loop_new_shared(NULL, NULL));
	io_uring_queue_exit(&ring);
}

TEST_HARNESS_MAIN
