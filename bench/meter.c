// SPDX-License-Identifier: MIT
/*
 * The measured window of one process: time, CPU, context switches,
 * allocations, and the resident memory the channel added.
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "bench.h"

/*
 * Under callgrind each window's counts are dumped on their own (README.md);
 * outside valgrind these are a few no-op instructions.
 */
#if defined(__has_include)
#if __has_include("valgrind/callgrind.h")
#include <valgrind/callgrind.h>
#define HAVE_CALLGRIND 1
#endif
#endif

/* CPU time in ns; context switches (voluntary and not) in @csw. */
uint64_t cpu_ns(uint64_t *csw)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	if (csw)
		*csw = ru.ru_nvcsw + ru.ru_nivcsw;
	return ((uint64_t)ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) *
	       1000000000ull +
	       ((uint64_t)ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) * 1000;
}

static bool mapping_counts(const char *line)
{
	const char *p = line;
	int field;

	/* addr perms offset dev inode [path] */
	for (field = 0; field < 5; field++) {
		while (*p && *p != ' ')
			p++;
		while (*p == ' ')
			p++;
	}
	if (!*p || *p == '\n')
		return true;			/* anonymous */
	if (!strncmp(p, "[heap]", 6) || !strncmp(p, "anon_inode:", 11))
		return true;
	return false;				/* files, stack, vdso */
}

static void smaps_line(const char *line, bool *counting, int64_t *kib)
{
	if ((line[0] >= '0' && line[0] <= '9') ||
	    (line[0] >= 'a' && line[0] <= 'f'))
		*counting = mapping_counts(line);
	else if (*counting && !strncmp(line, "Rss:", 4))
		*kib += strtoll(line + 4, NULL, 10);
}

/* Parsed with read() into a static buffer: no allocation, no stdio. */
int64_t rss_kib(void)
{
	static char buf[65536];
	bool counting = false;
	int64_t kib = 0;
	size_t have = 0;
	ssize_t n;
	char *line, *nl;
	int fd;

	fd = open("/proc/self/smaps", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	for (;;) {
		n = read(fd, buf + have, sizeof(buf) - 1 - have);
		if (n <= 0)
			break;
		have += n;
		buf[have] = '\0';
		line = buf;
		while ((nl = strchr(line, '\n'))) {
			*nl = '\0';
			smaps_line(line, &counting, &kib);
			line = nl + 1;
		}
		have = buf + have - line;
		memmove(buf, line, have);
		if (have == sizeof(buf) - 1)
			have = 0;		/* absurdly long line */
	}
	close(fd);
	return kib;
}

void window_begin(struct bench_ctx *x)
{
	x->in_window = true;
#ifdef HAVE_CALLGRIND
	CALLGRIND_ZERO_STATS;
#endif
	x->w_allocs0 = alloc_count();
	memset(x->w_cnt0, 0, sizeof(x->w_cnt0));
	if (x->chan.impl && x->chan.impl->counters)
		x->chan.impl->counters(&x->chan, x->w_cnt0);
	x->w_cpu0 = cpu_ns(&x->w_csw0);
	x->w_t0 = now_ns();
}

void window_end(struct bench_ctx *x, uint64_t msgs)
{
	uint64_t t = now_ns(), csw, cpu = cpu_ns(&csw), allocs = alloc_count();

	if (!x->in_window)
		return;
#ifdef HAVE_CALLGRIND
	if (RUNNING_ON_VALGRIND) {
		char what[64];

		snprintf(what, sizeof(what), "%s window, %llu messages",
			 x->parent ? "parent" : "peer",
			 (unsigned long long)msgs);
		CALLGRIND_DUMP_STATS_AT(what);
	}
#endif
	x->in_window = false;
	x->side.ns = t - x->w_t0;
	x->side.cpu_ns = cpu - x->w_cpu0;
	x->side.csw = csw - x->w_csw0;
	x->side.allocs = allocs - x->w_allocs0;
	x->side.msgs = msgs;
	x->side.rss_kib = rss_kib() - x->rss0;
	if (x->chan.impl && x->chan.impl->counters) {
		unsigned int i;

		x->chan.impl->counters(&x->chan, x->side.cnt);
		for (i = 0; i < BENCH_NR_CNT; i++)
			x->side.cnt[i] -= x->w_cnt0[i];
	}
}
