// SPDX-License-Identifier: MIT
/* Clocks, sorting, medians and percentiles. */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <time.h>

#include "bench.h"

uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + ts.tv_nsec;
}

void sleep_until_ns(uint64_t t)
{
	struct timespec ts = {
		.tv_sec = t / 1000000000ull,
		.tv_nsec = t % 1000000000ull,
	};

	while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) ==
	       EINTR)
		;
}

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? -1 : x > y;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

/* An implementation that never ran has no samples, and qsort(NULL, 0) is UB. */
void sort_u32(uint32_t *v, size_t n)
{
	if (n)
		qsort(v, n, sizeof(*v), cmp_u32);
}

void sort_double(double *v, size_t n)
{
	qsort(v, n, sizeof(*v), cmp_double);
}

double pct_u32(const uint32_t *v, size_t n, double p)
{
	size_t i;

	if (!n)
		return NAN;
	/* Nearest rank: the smallest value with at least p of them below. */
	i = (size_t)ceil(p * n);
	if (i > 0)
		i--;
	if (i >= n)
		i = n - 1;
	return v[i];
}

double median_double(const double *v, size_t n, double *min, double *max)
{
	double s[BENCH_MAX_ROUNDS * 2];
	size_t i, k = 0;

	for (i = 0; i < n && k < ARRAY_SIZE(s); i++)
		if (!isnan(v[i]))
			s[k++] = v[i];
	if (!k) {
		if (min)
			*min = NAN;
		if (max)
			*max = NAN;
		return NAN;
	}
	sort_double(s, k);
	if (min)
		*min = s[0];
	if (max)
		*max = s[k - 1];
	return k % 2 ? s[k / 2] : (s[k / 2 - 1] + s[k / 2]) / 2;
}
