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
 *   of the time from entering a wait to the completion that ended it,
 *   from waits that polled and waits that slept alike, each sample
 *   bounded so that one long idle gap is forgotten in a few waits;
 * - polls for twice that average (plus a little), never longer than the
 *   cap, and not at all when the average is above the cap: a peer that
 *   takes longer than a sleep and a wake-up is better waited for asleep;
 * - after MISS_LIMIT polls in a row that found nothing (the peer shares
 *   our CPU and cannot run while we poll, or it is busy) sleeps at once
 *   for the next `backoff` waits, doubling that up to BACKOFF_MAX with
 *   each further failed try, back to BACKOFF_MIN on the first hit;
 * - after the first YIELD_AFTER_NS, yields the CPU between looks
 *   (loop_wait_relax());
 * - never polls when the thread may run on one CPU only, where polling
 *   only delays the peer: sched_getaffinity(2), looked at again every
 *   CPUS_RECHECK_NS as the application may move the thread;
 * - costs an idle loop nothing: a wait that ends without a completion
 *   (timeout, signal) counts as the longest sample, so the average leaves
 *   the cap after a few idle waits, and a wait with no timeout sleeps
 *   once for as long as it takes.
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
/*
 * A 64-byte round trip between two polling processes on two CPUs took
 * 11-13 us here (README, Performance: ipcsock-uring-busy), one way half.
 */
#define YIELD_AFTER_NS		(10 * NSEC_PER_USEC)

uint64_t loop_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * NSEC_PER_SEC + ts.tv_nsec;
}

/* Can the calling thread run on one CPU only? */
static bool thread_one_cpu(void)
{
	cpu_set_t set;

	if (!sched_getaffinity(0, sizeof(set), &set))
		return CPU_COUNT(&set) <= 1;
	/* More CPUs than a cpu_set_t holds, surely more than one. */
	if (errno == EINVAL)
		return false;
	return sysconf(_SC_NPROCESSORS_ONLN) <= 1;
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
	/*
	 * Start from nothing (polls of SLACK_NS): the first waits teach
	 * the average, and a loop that never sees traffic never polls long.
	 */
	w->ttc_ns = 0;
	w->backoff = BACKOFF_MIN;
	w->one_cpu = thread_one_cpu();
	w->cpus_checked_ns = loop_now_ns();
}

static uint64_t adaptive_budget(struct loop_wait *w, uint64_t now)
{
	uint64_t budget;

	if (now - w->cpus_checked_ns >= CPUS_RECHECK_NS) {
		w->one_cpu = thread_one_cpu();
		w->cpus_checked_ns = now;
	}
	if (w->one_cpu || w->ttc_ns > w->cap_ns)
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
 * loop_wait_spun() and loop_wait_slept().
 */
uint64_t loop_wait_begin(struct ipcsock_loop *loop, uint64_t *start)
{
	struct loop_wait *w = &loop->wait;

	w->st.waits++;
	*start = 0;
	if (w->adaptive) {
		*start = loop_now_ns();
		return adaptive_budget(w, *start);
	}
	if (!loop->busy_poll_us)
		return 0;
	*start = loop_now_ns();
	return loop->busy_poll_us * NSEC_PER_USEC;
}

/*
 * Between two looks of an adaptive poll that has gone on for @spun ns:
 * once it is past what a peer on another CPU takes (YIELD_AFTER_NS), let
 * another task that waits for our CPU run, sched_yield(2). The peer woken
 * by our last send is often queued right here (the scheduler places a
 * task woken synchronously on the waker's CPU): it then answers during
 * the poll, which so ends in a hit and not in a sleep, and with both ends
 * runnable the scheduler's load balancing can move one of them to an
 * idle CPU, where polls pay most. Alone on the CPU, a yield returns at
 * once; on a loaded one it gives our time to others, as a sleep would.
 */
void loop_wait_relax(struct ipcsock_loop *loop, uint64_t spun)
{
	if (loop->wait.adaptive && spun >= YIELD_AFTER_NS)
		sched_yield();
}

static void ttc_sample(struct loop_wait *w, uint64_t ns)
{
	uint64_t top = 2 * w->cap_ns;

	if (ns > top)
		ns = top;
	w->ttc_ns = w->ttc_ns - (w->ttc_ns >> EWMA_SHIFT) +
		    (ns >> EWMA_SHIFT);
}

/* The poll begun at @start ended, @hit if it found a completion. */
void loop_wait_spun(struct ipcsock_loop *loop, uint64_t start, bool hit)
{
	struct loop_wait *w = &loop->wait;
	uint64_t took = loop_now_ns() - start;

	w->st.spins++;
	w->st.spin_ns += took;
	if (hit)
		w->st.spin_hits++;
	if (!w->adaptive)
		return;
	if (hit) {
		ttc_sample(w, took);
		w->misses = 0;
		w->backoff = BACKOFF_MIN;
		return;
	}
	/* The sleep that follows gives the sample. */
	if (++w->misses < MISS_LIMIT)
		return;
	/* Give up for a while; one more miss after that gives up again. */
	w->skip = w->backoff;
	w->misses = MISS_LIMIT - 1;
	if (w->backoff < BACKOFF_MAX)
		w->backoff *= 2;
}

/*
 * The wait begun at @start slept and is over, @completed if a completion
 * ended it (not a timeout or a signal).
 */
void loop_wait_slept(struct ipcsock_loop *loop, uint64_t start,
		     bool completed)
{
	struct loop_wait *w = &loop->wait;

	w->st.sleeps++;
	if (!w->adaptive)
		return;
	ttc_sample(w, completed ? loop_now_ns() - start : UINT64_MAX);
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
