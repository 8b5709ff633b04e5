/* SPDX-License-Identifier: MIT */
/*
 * timing.h - the clock and the percentiles of the camera examples, which
 * time their IPC per frame.
 */
#ifndef EXAMPLES_TIMING_H
#define EXAMPLES_TIMING_H

#include <stdint.h>
#include <stdlib.h>
#include <time.h>

#define NSEC_PER_SEC	1000000000ull
#define NSEC_PER_MSEC	1000000ull
#define NSEC_PER_USEC	1000ull

static inline uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * NSEC_PER_SEC + ts.tv_nsec;
}

static inline int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/* Sort @n durations (ns) for pct_us(). */
static inline void sort_ns(uint64_t *v, unsigned int n)
{
	qsort(v, n, sizeof(*v), cmp_u64);
}

/* Nearest-rank percentile of sorted durations @v (ns), in microseconds. */
static inline double pct_us(const uint64_t *v, unsigned int n,
			    unsigned int pct)
{
	unsigned int rank = (n * pct + 99) / 100;

	return (double)v[rank ? rank - 1 : 0] / NSEC_PER_USEC;
}

#endif /* EXAMPLES_TIMING_H */
