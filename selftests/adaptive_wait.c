// SPDX-License-Identifier: GPL-2.0
/*
 * IPCSOCK_LOOP_ADAPTIVE_WAIT: dispatch polls before it sleeps only while
 * polling pays. Seen through ipcsock_loop_get_stats() and the CPU time
 * the waiting thread used: it polls, and polls find the reply, when the
 * peer answers at once from another CPU; it stops polling when the peer
 * is slow or the loop idle, so neither costs CPU; it never polls when the
 * thread may run on one CPU only; after polls that keep finding nothing
 * it tries again ever more rarely (white-box, on the policy itself).
 */
#include "selftest.h"

#include <sched.h>
#include <sys/prctl.h>
#include <sys/syscall.h>

/* The harness has its own, identical ARRAY_SIZE. */
#undef ARRAY_SIZE
#include "internal.h"

/* Under valgrind the code runs many times slower than the peer. */
#define VALGRIND_TIMING	"valgrind slows us, not the timings these need"

FIXTURE(adaptive)
{
	struct ipcsock_loop *loop;
	int fds_before;
};

REAL_BACKEND_VARIANTS(adaptive);

/* The loop under test; a busy_poll_us (the cap) from @cap_us. */
static struct ipcsock_loop *adaptive_loop(enum ipcsock_backend backend,
					  unsigned int cap_us)
{
	IPCSOCK_LOOP_OPTS(opts, .backend = backend, .busy_poll_us = cap_us,
			  .flags = IPCSOCK_LOOP_ADAPTIVE_WAIT);

	return ipcsock_loop_new(&opts);
}

FIXTURE_SETUP(adaptive)
{
	self->fds_before = count_open_fds();
	self->loop = NULL;
}

FIXTURE_TEARDOWN(adaptive)
{
	ipcsock_loop_free(self->loop);
	EXPECT_EQ(self->fds_before, count_open_fds());
}

static uint64_t thread_cpu_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return ts.tv_sec * 1000000000ull + ts.tv_nsec;
}

static void get_loop_stats(struct __test_metadata *_metadata,
			   struct ipcsock_loop *loop,
			   struct ipcsock_loop_stats *st)
{
	ASSERT_EQ(sizeof(*st), ipcsock_loop_get_stats(loop, st, sizeof(*st)));
}

/* The first two CPUs the thread may run on, false with fewer. */
static bool two_cpus(int *a, int *b)
{
	cpu_set_t set;
	int cpu, n = 0;

	if (sched_getaffinity(0, sizeof(set), &set))
		return false;
	for (cpu = 0; cpu < CPU_SETSIZE && n < 2; cpu++) {
		if (!CPU_ISSET(cpu, &set))
			continue;
		if (n++)
			*b = cpu;
		else
			*a = cpu;
	}
	return n == 2;
}

static int pin_to(int cpu)
{
	cpu_set_t set;

	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	return sched_setaffinity(0, sizeof(set), &set);
}

static void echo_hangup(struct ipcsock *sock, int err, void *arg)
{
	(void)sock;
	(void)err;
	*(bool *)arg = true;
}

/*
 * Echo peer in a child: replies to each message after @delay_us. With
 * @cpu >= 0 it runs on that CPU and polls all the time (a fixed
 * busy_poll_us of a second), so it answers at once and the scheduler does
 * not put the parent on its CPU; else it waits adaptively.
 */
static int echo_child(enum ipcsock_backend backend, int fd, int cpu,
		      unsigned int delay_us)
{
	struct ipcsock_loop *loop;
	struct ipcsock_payload p;
	struct ipcsock *sock;
	bool ended = false;

	if (cpu >= 0) {
		IPCSOCK_LOOP_OPTS(opts, .backend = backend,
				  .busy_poll_us = 1000000);

		if (pin_to(cpu))
			return 1;
		loop = ipcsock_loop_new(&opts);
	} else {
		loop = adaptive_loop(backend, 0);
	}
	sock = ipcsock_new(loop);
	if (!sock || ipcsock_bind(sock, fd))
		return 2;
	ipcsock_set_hangup(sock, echo_hangup, &ended);
	/* Until the parent closes its end. */
	while (!ended) {
		if (ipcsock_loop_dispatch(loop, 1000) < 0)
			return 3;
		while (!ipcsock_receive(sock, &p)) {
			if (delay_us)
				usleep(delay_us);
			if (ipcsock_send(sock, &p))
				break;
		}
	}
	ipcsock_free(sock);
	ipcsock_loop_free(loop);
	return 0;
}

static pid_t start_echo(struct __test_metadata *_metadata,
			enum ipcsock_backend backend, int cpu,
			unsigned int delay_us, int *fd)
{
	int sv[2];
	pid_t pid;

	pid = fork_with_pair(_metadata, sv);
	if (!pid) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		child_close_other_fds(sv[1]);
		_exit(echo_child(backend, sv[1], cpu, delay_us));
	}
	close(sv[1]);
	*fd = sv[0];
	return pid;
}

/* @n round trips of a 4-byte counter, in order. */
static void round_trips(struct __test_metadata *_metadata,
			struct ipcsock_loop *loop, struct ipcsock *sock,
			int n)
{
	struct ipcsock_payload p;
	uint32_t v;
	int i;

	for (i = 0; i < n; i++) {
		v = i;
		p = msg_of(&v, sizeof(v), NULL, 0);
		ASSERT_EQ(0, ipcsock_send(sock, &p));
		ASSERT_EQ(0, receive_wait(loop, sock, &p, WAIT_MS));
		ASSERT_EQ(sizeof(v), p.len);
		memcpy(&v, p.data, sizeof(v));
		ASSERT_EQ((uint32_t)i, v);
	}
}

static void end_echo(struct __test_metadata *_metadata, struct ipcsock *sock,
		     pid_t pid)
{
	int status;

	ipcsock_free(sock);
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	ASSERT_TRUE(WIFEXITED(status));
	EXPECT_EQ(0, WEXITSTATUS(status));
}

/*
 * A peer that answers at once from another CPU: polls find most replies.
 * The machine may be busy with other work, so ask only for a share.
 * Without the flag, or with a policy that gave up on a peer that is
 * fast, there would be no hits. Left to the scheduler, we may be woken
 * on the peer's CPU, where no poll can hit (and the policy rightly
 * stops): so both are pinned, and the loop is given its cap, which tells
 * it the pinning is on purpose. Other work on our CPU can still delay
 * us: up to five tries, each with a new loop and peer.
 */
TEST_F(adaptive, fast_peer_polls_and_hits)
{
	struct ipcsock_loop_stats st;
	struct ipcsock *sock;
	int a, b, fd, try;
	bool ok = false;
	pid_t pid;

	if (!two_cpus(&a, &b))
		SKIP(return, "needs two CPUs");
	if (under_valgrind())
		SKIP(return, VALGRIND_TIMING);
	ASSERT_EQ(0, pin_to(a));
	for (try = 0; try < 5 && !ok; try++) {
		pid = start_echo(_metadata, variant->backend, b, 0, &fd);
		ipcsock_loop_free(self->loop);
		self->loop = adaptive_loop(variant->backend,
					   IPCSOCK_ADAPTIVE_WAIT_CAP_US);
		ASSERT_NE(NULL, self->loop);
		sock = ipcsock_new(self->loop);
		ASSERT_NE(NULL, sock);
		ASSERT_EQ(0, ipcsock_bind(sock, fd));
		round_trips(_metadata, self->loop, sock, 2000);
		get_loop_stats(_metadata, self->loop, &st);
		TH_LOG("waits %llu spins %llu hits %llu sleeps %llu ttc %llu ns",
		       (unsigned long long)st.waits,
		       (unsigned long long)st.spins,
		       (unsigned long long)st.spin_hits,
		       (unsigned long long)st.sleeps,
		       (unsigned long long)st.ttc_ns);
		EXPECT_LE(2000, st.waits);
		EXPECT_GE(2 * IPCSOCK_ADAPTIVE_WAIT_CAP_US * 1000ull,
			  st.ttc_ns);
		ok = st.spin_hits >= st.waits / 5;
		end_echo(_metadata, sock, pid);
	}
	EXPECT_TRUE(ok);
}

/*
 * A peer that takes 2 ms per reply, with a cap of 1 ms: a fixed budget
 * would poll half the time; the policy sees the replies come after the
 * cap and sleeps.
 */
TEST_F(adaptive, slow_peer_costs_little_cpu)
{
	struct ipcsock_loop_stats st;
	uint64_t cpu, start;
	struct ipcsock *sock;
	int fd;
	pid_t pid;

	if (under_valgrind())
		SKIP(return, VALGRIND_TIMING);
	pid = start_echo(_metadata, variant->backend, -1, 2000, &fd);
	self->loop = adaptive_loop(variant->backend, 1000);
	ASSERT_NE(NULL, self->loop);
	sock = ipcsock_new(self->loop);
	ASSERT_NE(NULL, sock);
	ASSERT_EQ(0, ipcsock_bind(sock, fd));
	start = now_ms();
	cpu = thread_cpu_ns();
	round_trips(_metadata, self->loop, sock, 300);
	cpu = thread_cpu_ns() - cpu;
	start = now_ms() - start;
	get_loop_stats(_metadata, self->loop, &st);
	TH_LOG("%llu ms, cpu %llu us, waits %llu spins %llu spun %llu us",
	       (unsigned long long)start, (unsigned long long)cpu / 1000,
	       (unsigned long long)st.waits, (unsigned long long)st.spins,
	       (unsigned long long)st.spin_ns / 1000);
	EXPECT_LE(600, start);
	/* Under 10% of the time; polling 1 ms of every 2 would be 50%. */
	EXPECT_GT(start * 1000000 / 10, cpu);
	EXPECT_GT(st.waits / 10, st.spins);
	end_echo(_metadata, sock, pid);
}

/*
 * No traffic: a second of dispatches with a 20 ms timeout (a timer-driven
 * application) costs under 10 ms of CPU, with a cap of 400 us that would
 * cost twice that if every wait polled up to it.
 */
TEST_F(adaptive, idle_loop_costs_no_cpu)
{
	struct ipcsock_loop_stats st;
	struct ipcsock *sock;
	uint64_t cpu, end;
	int sv[2];

	self->loop = adaptive_loop(variant->backend, 400);
	ASSERT_NE(NULL, self->loop);
	ASSERT_EQ(0, socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0,
				sv));
	sock = ipcsock_new(self->loop);
	ASSERT_NE(NULL, sock);
	ASSERT_EQ(0, ipcsock_bind(sock, sv[0]));
	/*
	 * Waits of 50 ms: the CPU a wait costs without polling (tens of
	 * us on a loaded machine, far more under valgrind) stays well under
	 * the bound, which a single poll to the cap per wait would not.
	 */
	cpu = thread_cpu_ns();
	end = now_ms() + 1000;
	while (now_ms() < end)
		ASSERT_LE(0, ipcsock_loop_dispatch(self->loop, 50));
	cpu = thread_cpu_ns() - cpu;
	get_loop_stats(_metadata, self->loop, &st);
	TH_LOG("cpu %llu us, waits %llu spins %llu spun %llu us",
	       (unsigned long long)cpu / 1000, (unsigned long long)st.waits,
	       (unsigned long long)st.spins,
	       (unsigned long long)st.spin_ns / 1000);
	EXPECT_LE(15, st.waits);
	if (!under_valgrind())
		EXPECT_GT(10000000ull, cpu);
	/* A few tries while the average learns, then none. */
	EXPECT_GE(10, st.spins);
	ipcsock_free(sock);
	close(sv[1]);
}

/*
 * In a child allowed on one CPU: round trips between two sockets of the
 * same loop and idle waits, and not one poll with the default cap. With
 * a cap given, the application vouches for its layout, and it polls.
 */
static int one_cpu_round_trips(enum ipcsock_backend backend,
			       unsigned int cap_us,
			       struct ipcsock_loop_stats *st)
{
	struct ipcsock_payload p;
	struct ipcsock *s[2];
	struct ipcsock_loop *loop;
	int i, sv[2];
	char c = 'x';

	loop = adaptive_loop(backend, cap_us);
	if (!loop ||
	    socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv))
		return 2;
	s[0] = ipcsock_new(loop);
	s[1] = ipcsock_new(loop);
	if (!s[0] || !s[1] || ipcsock_bind(s[0], sv[0]) ||
	    ipcsock_bind(s[1], sv[1]))
		return 3;
	for (i = 0; i < 200; i++) {
		p = msg_of(&c, 1, NULL, 0);
		if (ipcsock_send(s[i & 1], &p) ||
		    receive_wait(loop, s[!(i & 1)], &p, WAIT_MS))
			return 4;
	}
	for (i = 0; i < 20; i++)
		ipcsock_loop_dispatch(loop, 1);
	if (ipcsock_loop_get_stats(loop, st, sizeof(*st)) != sizeof(*st))
		return 5;
	ipcsock_free(s[0]);
	ipcsock_free(s[1]);
	ipcsock_loop_free(loop);
	return 0;
}

static int one_cpu_child(struct __test_metadata *_metadata,
			 enum ipcsock_backend backend)
{
	struct ipcsock_loop_stats st;
	int err;

	(void)_metadata;
	if (pin_to(sched_getcpu()))
		return 1;
	err = one_cpu_round_trips(backend, 0, &st);
	if (err)
		return err;
	if (st.waits < 20)
		return 6;
	if (st.spins)
		return 7;
	if (sysconf(_SC_NPROCESSORS_ONLN) < 2)
		return 0;
	err = one_cpu_round_trips(backend, IPCSOCK_ADAPTIVE_WAIT_CAP_US, &st);
	if (err)
		return err;
	return st.spins ? 0 : 8;
}

TEST_F(adaptive, one_cpu_never_polls)
{
	expect_child_exit(_metadata, one_cpu_child, variant->backend, 0);
}

/* Options: the flag is known; a shared ring takes it and ignores it. */
TEST_F(adaptive, options)
{
	IPCSOCK_LOOP_OPTS(bad, .backend = variant->backend,
			  .flags = IPCSOCK_LOOP_SUBMIT_WITH_WAIT << 1);
	struct ipcsock_loop_stats st;

	EXPECT_EQ(NULL, ipcsock_loop_new(&bad));
	EXPECT_EQ(EINVAL, errno);
	self->loop = adaptive_loop(variant->backend, 0);
	ASSERT_NE(NULL, self->loop);
	EXPECT_EQ(-EINVAL, ipcsock_loop_get_stats(NULL, &st, sizeof(st)));
	EXPECT_EQ(-EINVAL, ipcsock_loop_get_stats(self->loop, NULL, 8));
	EXPECT_EQ(-EINVAL, ipcsock_loop_get_stats(self->loop, &st, 7));
	EXPECT_EQ(8, ipcsock_loop_get_stats(self->loop, &st, 8));
}

TEST(shared_ring_ignores_adaptive_wait)
{
	IPCSOCK_LOOP_OPTS(opts, .flags = IPCSOCK_LOOP_ADAPTIVE_WAIT);
	struct ipcsock_loop_stats st;
	struct ipcsock_loop *loop;
	struct io_uring ring;

	if (io_uring_queue_init(8, &ring, 0))
		SKIP(return, "no io_uring");
	loop = ipcsock_loop_new_shared(&ring, &opts);
	if (!loop && errno == EOPNOTSUPP) {
		io_uring_queue_exit(&ring);
		SKIP(return, "kernel too old for shared rings");
	}
	ASSERT_NE(NULL, loop);
	EXPECT_LE(0, ipcsock_loop_dispatch(loop, 10));
	get_loop_stats(_metadata, loop, &st);
	EXPECT_EQ(0, st.waits);
	EXPECT_EQ(0, st.spins);
	ipcsock_loop_free(loop);
	io_uring_queue_exit(&ring);
}

/*
 * White-box: a loop with only the wait policy set up, polling allowed.
 * @due stands for a channel with callbacks due: on loop.ready, a poll
 * that found completions is a hit.
 */
static void policy_loop(struct ipcsock_loop *loop, struct list_head *due)
{
	memset(loop, 0, sizeof(*loop));
	INIT_LIST_HEAD(&loop->ready);
	INIT_LIST_HEAD(&loop->peer_exited);
	list_add_tail(due, &loop->ready);
	loop->flags = IPCSOCK_LOOP_ADAPTIVE_WAIT;
	loop_wait_init(loop);
	loop->wait.one_cpu = false;
	loop->wait.cpus_checked_ns = UINT64_MAX / 2;
}

/*
 * White-box: polls that keep finding nothing while completions come soon
 * after the sleep (the peer shares our CPU) give up after a few misses and
 * try again ever more rarely; one hit makes polling normal again.
 */
TEST(misses_back_off)
{
	struct ipcsock_loop loop;
	struct list_head due;
	uint64_t start, spin;
	unsigned int spins = 0, i, last = 0, gap = 0;

	policy_loop(&loop, &due);
	for (i = 1; i <= 4000; i++) {
		spin = loop_wait_begin(&loop, &start);
		if (spin) {
			spins++;
			gap = i - last;
			last = i;
			loop_wait_spun(&loop, start, false);
		}
		loop_wait_slept(&loop);
	}
	TH_LOG("%u polls in 4000 waits, the last %u waits apart", spins, gap);
	/* 4 misses, then one try after 8, 16, ... 1024 waits. */
	EXPECT_LE(5, spins);
	EXPECT_GE(20, spins);
	EXPECT_EQ(1025, gap);
	EXPECT_EQ(spins, loop.wait.st.spins);
	EXPECT_EQ(0, loop.wait.st.spin_hits);
	EXPECT_EQ(4000, loop.wait.st.sleeps);

	/* A hit: the next misses back off from the start again. */
	while (!(spin = loop_wait_begin(&loop, &start)))
		loop_wait_slept(&loop);
	loop_wait_spun(&loop, start, true);
	spins = 0;
	for (i = 0; i < 100; i++) {
		spin = loop_wait_begin(&loop, &start);
		if (spin) {
			spins++;
			loop_wait_spun(&loop, start, false);
		}
		loop_wait_slept(&loop);
	}
	/* 4 misses, then tries after 8, 16 and 32 waits. */
	EXPECT_EQ(7, spins);
}

/*
 * White-box: polls that find nothing raise the budget up to the cap and
 * no further; quick hits bring it down to a few microseconds.
 */
TEST(budget_follows_time_to_completion)
{
	struct ipcsock_loop loop;
	struct list_head due;
	uint64_t start, spin;
	int i;

	policy_loop(&loop, &due);
	EXPECT_EQ(IPCSOCK_ADAPTIVE_WAIT_CAP_US * 1000ull, loop.wait.cap_ns);
	spin = loop_wait_begin(&loop, &start);
	EXPECT_LT(loop.wait.cap_ns / 4, spin);
	EXPECT_GT(loop.wait.cap_ns, spin);
	for (i = 0; i < 40; i++) {
		loop.wait.skip = 0;
		spin = loop_wait_begin(&loop, &start);
		ASSERT_LT(0, spin);
		/* As if the poll ran its whole budget. */
		loop_wait_spun(&loop, start - spin, false);
		loop_wait_slept(&loop);
	}
	EXPECT_LE(loop.wait.cap_ns, loop.wait.ttc_ns);
	EXPECT_GE(2 * loop.wait.cap_ns, loop.wait.ttc_ns);
	loop.wait.skip = 0;
	EXPECT_EQ(loop.wait.cap_ns, loop_wait_begin(&loop, &start));
	for (i = 0; i < 60; i++) {
		spin = loop_wait_begin(&loop, &start);
		loop_wait_spun(&loop, start - 1000, true);
	}
	EXPECT_GT(loop.wait.cap_ns / 10, loop.wait.ttc_ns);
	spin = loop_wait_begin(&loop, &start);
	EXPECT_LT(0, spin);
	EXPECT_GT(loop.wait.cap_ns / 4, spin);
	EXPECT_EQ(60, loop.wait.st.spin_hits);
}

/*
 * White-box: a poll ended by completions that made no callback due (a
 * ring send's own, a receive buffer coming back) is no hit and teaches
 * the budget nothing. Counted as hits they came within microseconds and
 * shrank the budget below a ring-sends ping-pong's round trip (review,
 * ringsends_busypoll.c: 3-6 times slower with the flag).
 */
TEST(own_completions_are_no_hits)
{
	struct ipcsock_loop loop;
	struct list_head due;
	uint64_t start, spin, ttc;
	int i;

	policy_loop(&loop, &due);
	list_del_init(&due);
	ttc = loop.wait.ttc_ns;
	for (i = 0; i < 60; i++) {
		spin = loop_wait_begin(&loop, &start);
		ASSERT_LT(0, spin);
		loop_wait_spun(&loop, start - 1000, true);
	}
	EXPECT_EQ(ttc, loop.wait.ttc_ns);
	EXPECT_EQ(60, loop.wait.st.spins);
	EXPECT_EQ(0, loop.wait.st.spin_hits);
	EXPECT_EQ(0, loop.wait.misses);

	/* A peer's exit is work for the application: a hit. */
	list_add_tail(&due, &loop.peer_exited);
	spin = loop_wait_begin(&loop, &start);
	loop_wait_spun(&loop, start - 1000, true);
	EXPECT_EQ(1, loop.wait.st.spin_hits);
	/*
	 * Learned from: the average moved. Not which way, since the sample
	 * is the real time the poll took, long under valgrind.
	 */
	EXPECT_NE(ttc, loop.wait.ttc_ns);
}

TEST_HARNESS_MAIN
