// SPDX-License-Identifier: GPL-2.0
/*
 * The opt-in low-latency mode (busy_poll_us): dispatch polls for
 * completions before it sleeps. It must change nothing but timing:
 * messages still arrive in order, an idle dispatch still honours its
 * timeout, and no descriptor leaks.
 */
#include "selftest.h"

#include <sys/prctl.h>
#include <sys/syscall.h>

#define ROUNDS	2000

FIXTURE(busy)
{
	struct ipcsock_loop *loop;
	int fds_before;
};

REAL_BACKEND_VARIANTS(busy);

FIXTURE_SETUP(busy)
{
	IPCSOCK_LOOP_OPTS(opts, .backend = variant->backend,
			  .busy_poll_us = 50);

	self->fds_before = count_open_fds();
	self->loop = ipcsock_loop_new(&opts);
	ASSERT_NE(NULL, self->loop);
	ASSERT_EQ(variant->backend, ipcsock_loop_backend(self->loop));
}

FIXTURE_TEARDOWN(busy)
{
	ipcsock_loop_free(self->loop);
	EXPECT_EQ(self->fds_before, count_open_fds());
}

/* Echo peer in a child with its own busy-polling loop. */
static int echo_child(enum ipcsock_backend backend, int fd)
{
	IPCSOCK_LOOP_OPTS(opts, .backend = backend, .busy_poll_us = 50);
	struct ipcsock_loop *loop = ipcsock_loop_new(&opts);
	struct ipcsock *sock = ipcsock_new(loop);
	struct ipcsock_payload p;
	int n = 0;

	if (!sock || ipcsock_bind(sock, fd))
		return 1;
	while (n < ROUNDS) {
		if (ipcsock_loop_dispatch(loop, 1000) < 0)
			return 2;
		while (!ipcsock_receive(sock, &p)) {
			if (ipcsock_send(sock, &p))
				return 3;
			n++;
		}
	}
	/* Wait for the parent to go, so our last reply is not cut off. */
	while (ipcsock_loop_dispatch(loop, 1000) >= 0 &&
	       ipcsock_send(sock, &p) != -EPIPE)
		;
	ipcsock_free(sock);
	ipcsock_loop_free(loop);
	return 0;
}

TEST_F(busy, ping_pong_in_order)
{
	struct ipcsock_payload p;
	struct ipcsock *sock;
	int sv[2], status, i;
	uint32_t v;
	pid_t pid;

	/*
	 * Fork before making the socket: a child must not touch the
	 * parent's loop, and keeps nothing of the parent's but stdio and its
	 * end (under valgrind, the parent's loop fd and socket would count
	 * as leaked by the child).
	 */
	pid = fork_with_pair(_metadata, sv);
	if (!pid) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		child_close_other_fds(sv[1]);
		_exit(echo_child(variant->backend, sv[1]));
	}
	close(sv[1]);
	sock = ipcsock_new(self->loop);
	ASSERT_NE(NULL, sock);
	ASSERT_EQ(0, ipcsock_bind(sock, sv[0]));
	for (i = 0; i < ROUNDS; i++) {
		v = i;
		p = msg_of(&v, sizeof(v), NULL, 0);
		ASSERT_EQ(0, ipcsock_send(sock, &p));
		ASSERT_EQ(0, receive_wait(self->loop, sock, &p, WAIT_MS));
		ASSERT_EQ(sizeof(v), p.len);
		memcpy(&v, p.data, sizeof(v));
		ASSERT_EQ((uint32_t)i, v);
	}
	ipcsock_free(sock);
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	ASSERT_TRUE(WIFEXITED(status));
	EXPECT_EQ(0, WEXITSTATUS(status));
}

/* Idle: busy polling gives up and the timeout still holds. */
TEST_F(busy, idle_dispatch_times_out)
{
	uint64_t start = now_ms();

	EXPECT_EQ(0, ipcsock_loop_dispatch(self->loop, 100));
	EXPECT_LE(90, now_ms() - start);
	EXPECT_GT(2000, now_ms() - start);
}

TEST_HARNESS_MAIN
