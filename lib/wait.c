// SPDX-License-Identifier: MIT
/*
 * The wait policy: whether dispatch polls for completions before it
 * sleeps, and for how long. The backends poll and sleep; this file
 * decides and keeps count.
 *
 * A sleeping wait costs a context switch and, when the completion comes
 * from another CPU, a wake-up across CPUs: on the project's machine that
 * made a 64-byte round trip 25 us through sleeps and 11 us when both ends
 * polled (README, Performance). Polling pays only if the completion comes
 * soon. With busy_poll_us alone the budget is fixed and always spent
 * (the user asked for it). IPCSOCK_LOOP_ADAPTIVE_WAIT instead:
 *
 * - keeps a moving average (weight 1/8, as TCP's smoothed RTT, RFC 6298)
 *   of the time from entering a wait to the completion that ended its
 *   poll; a poll that found nothing counts as twice its budget (the
 *   completion came later than that), each sample bounded by twice the
 *   cap. Waits that slept teach nothing: their time includes our own
 *   wake-up, which on a loaded machine took 60-90 us while the reply
 *   itself came within 10 us (measured with the selftest's pinned peer);
 * - polls for twice that average (plus a little), never longer than the
 *   cap;
 * - after MISS_LIMIT polls in a row that found nothing (the peer is slow
 *   or busy, the loop idle, or the peer shares our CPU and cannot run
 *   while we poll) sleeps at once for the next `backoff` waits, doubling
 *   that up to BACKOFF_MAX with each further failed try, back to
 *   BACKOFF_MIN on the first hit: a slow or absent peer costs one poll
 *   per up to 1024 waits;
 * - never polls with one CPU online, where polling only delays the peer;
 *   nor, with the default cap, when the thread may run on one CPU only
 *   (sched_getaffinity(2), looked at again every CPUS_RECHECK_NS as the
 *   application may move the thread): `taskset -c 0 app` or a one-CPU
 *   cpuset puts the peer there too. An application that pins its two
 *   ends to two CPUs on purpose says so by giving the cap (busy_poll_us);
 *   should its peer share the CPU after all, the back-off stops polling.
 */
#include <errno.h>
#include <sched.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"

#define NSEC_PER_USEC		1000ull
#define NSEC_PER_SEC		1000000000ull
#define EWMA_SHIFT		3
#define MISS_LIMIT		4
#define BACKOFF_MIN		8
#define BACKOFF_MAX		1024
#define SLACK_NS		(2 * NSEC_PER_USEC)
#define CPUS_RECHECK_NS		NSEC_PER_SEC

uint64_t loop_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * NSEC_PER_SEC + ts.tv_nsec;
}

/*
 * Must the calling thread share its one CPU with its peer? True with one
 * CPU online; with @affinity, also when the thread may run on one CPU.
 */
static bool thread_one_cpu(bool affinity)
{
	cpu_set_t set;

	if (sysconf(_SC_NPROCESSORS_ONLN) <= 1)
		return true;
	if (!affinity)
		return false;
	/* EINVAL: more CPUs than a cpu_set_t holds, surely more than one. */
	return !sched_getaffinity(0, sizeof(set), &set) &&
	       CPU_COUNT(&set) <= 1;
}

/* Set up the policy of the loop configuration @loop (options read). */
void loop_wait_init(struct ipcsock_loop *loop)
{
	struct loop_wait *w = &loop->wait;

	memset(w, 0, sizeof(*w));
	w->adaptive = loop->flags & IPCSOCK_LOOP_ADAPTIVE_WAIT;
	if (!w->adaptive)
		return;
	w->cap_ns = (loop->busy_poll_us ? loop->busy_poll_us :
		     IPCSOCK_ADAPTIVE_WAIT_CAP_US) * NSEC_PER_USEC;
	/* Start by polling half the cap: a few waits correct it. */
	w->ttc_ns = w->cap_ns / 4;
	w->backoff = BACKOFF_MIN;
	w->one_cpu = thread_one_cpu(!loop->busy_poll_us);
	w->cpus_checked_ns = loop_now_ns();
}

static uint64_t adaptive_budget(struct ipcsock_loop *loop, uint64_t now)
{
	struct loop_wait *w = &loop->wait;
	uint64_t budget;

	if (now >= w->cpus_checked_ns + CPUS_RECHECK_NS) {
		w->one_cpu = thread_one_cpu(!loop->busy_poll_us);
		w->cpus_checked_ns = now;
	}
	if (w->one_cpu)
		return 0;
	if (w->skip) {
		w->skip--;
		return 0;
	}
	budget = 2 * w->ttc_ns + SLACK_NS;
	return budget < w->cap_ns ? budget : w->cap_ns;
}

/*
 * A wait that may sleep begins: the nanoseconds to poll first, 0 for
 * none. *@start is the time it began (0 when nobody needs it), for
 * loop_wait_spun().
 */
uint64_t loop_wait_begin(struct ipcsock_loop *loop, uint64_t *start)
{
	struct loop_wait *w = &loop->wait;

	w->st.waits++;
	*start = 0;
	if (w->adaptive) {
		*start = loop_now_ns();
		return adaptive_budget(loop, *start);
	}
	if (!loop->busy_poll_us)
		return 0;
	*start = loop_now_ns();
	return loop->busy_poll_us * NSEC_PER_USEC;
}

static void ttc_sample(struct loop_wait *w, uint64_t ns)
{
	uint64_t top = 2 * w->cap_ns;

	if (ns > top)
		ns = top;
	w->ttc_ns = w->ttc_ns - (w->ttc_ns >> EWMA_SHIFT) +
		    (ns >> EWMA_SHIFT);
}

/*
 * The poll begun at @start ended, @found if it reaped a completion; called
 * once the backend has turned what it found into channel state. It is a
 * hit only if that made a callback due (or a peer's exit known): the
 * loop's own completions (a ring send's, a receive buffer coming back)
 * come within microseconds of the wait's start and say nothing of when
 * the peer answers. Counted as hits they taught a ring-sends ping-pong a
 * budget of a few microseconds, too short for the reply, and it slept:
 * round trips 3-6 times longer (review, ringsends_busypoll.c). Such a
 * poll teaches nothing; dispatch waits again with a poll of its own.
 */
void loop_wait_spun(struct ipcsock_loop *loop, uint64_t start, bool found)
{
	struct loop_wait *w = &loop->wait;
	uint64_t took = loop_now_ns() - start;
	bool hit = found && (!list_empty(&loop->ready) ||
			     !list_empty(&loop->peer_exited));

	w->st.spins++;
	w->st.spin_ns += took;
	if (hit)
		w->st.spin_hits++;
	if (!w->adaptive || (found && !hit))
		return;
	if (hit) {
		ttc_sample(w, took);
		w->misses = 0;
		w->backoff = BACKOFF_MIN;
		return;
	}
	ttc_sample(w, 2 * took);
	if (++w->misses < MISS_LIMIT)
		return;
	/* Give up for a while; one more miss after that gives up again. */
	w->skip = w->backoff;
	w->misses = MISS_LIMIT - 1;
	if (w->backoff < BACKOFF_MAX)
		w->backoff *= 2;
}

/* A wait slept in the kernel. */
void loop_wait_slept(struct ipcsock_loop *loop)
{
	loop->wait.st.sleeps++;
}

int ipcsock_loop_get_stats(const struct ipcsock_loop *loop,
			   struct ipcsock_loop_stats *st, size_t sz)
{
	struct ipcsock_loop_stats now;
	size_t n = sz < sizeof(now) ? sz : sizeof(now);

	if (!loop || !st || sz < sizeof(now.waits))
		return -EINVAL;
	if (loop_inherited(loop))
		return -ECHILD;
	now = loop->wait.st;
	now.ttc_ns = loop->wait.adaptive ? loop->wait.ttc_ns : 0;
	memcpy(st, &now, n);
	if (sz > n)
		memset((char *)st + n, 0, sz - n);
	return n;
}
