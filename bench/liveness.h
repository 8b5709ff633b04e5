/* SPDX-License-Identifier: MIT */
/*
 * The liveness scenario: SIGKILL of a peer blocked in its loop's wait to
 * the hangup callback of the other end, with ipcsock_watch_pidfd() and
 * on the socket's end of file alone, on an idle machine and with every
 * CPU busy.
 */
#ifndef IPCSOCK_BENCH_LIVENESS_H
#define IPCSOCK_BENCH_LIVENESS_H

#include <stdbool.h>
#include <stdio.h>

#include "ipcsock.h"

struct bench_record;

#define LIVENESS_KILLS		200
#define LIVENESS_QUICK_KILLS	40
#define LIVENESS_MAX_ROWS	10

struct liveness_row {
	const char *impl;		/* ipcsock-pidfd, -eof, floor-pidfd */
	bool watch;
	bool floor;			/* poll(2) on the pidfd, no library */
	enum ipcsock_backend peer;	/* the killed peer's loop */
	bool loaded;			/* every CPU busy meanwhile */
	unsigned int kills;
	double p50_us, p99_us, max_us;
	int err;
};

extern const struct bench_scenario_ops liveness_ops;

/* The rows of both loads, @kills each. */
unsigned int liveness_rows(struct liveness_row *rows, unsigned int kills);
int liveness_run(struct liveness_row *row);
void liveness_table(FILE *f, const struct liveness_row *rows, unsigned int n);
void liveness_record(struct bench_record *rec, const struct liveness_row *row);

#endif /* IPCSOCK_BENCH_LIVENESS_H */
