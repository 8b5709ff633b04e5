/* SPDX-License-Identifier: MIT */
/*
 * fanin: N channels into one server loop. The server process echoes every
 * message on the channel it came from; a few client processes drive the
 * other ends with plain system calls. README.md says what is measured.
 */
#ifndef IPCSOCK_BENCH_FANIN_H
#define IPCSOCK_BENCH_FANIN_H

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>

#include "bench.h"

#define FANIN_MSG_LEN		64u	/* the payload */

/*
 * The library's wire format (README.md, Wire format), which the raw
 * clients and floor-epoll speak: each datagram is this header, then the
 * payload.
 */
struct fanin_wire {
	uint32_t len;
	uint16_t nr_fds;
	uint8_t version;	/* 1 */
	uint8_t flags;		/* 0 */
};

/*
 * Version 2, a record: the header above (len: the bytes after it), then
 * this, then per message an entry and its payload, padded to 16 bytes.
 */
struct fanin_rec {
	uint32_t nr_msgs;
	uint32_t zero;
};

struct fanin_entry {
	uint32_t len;
	uint16_t nr_fds;
	uint16_t zero;
};

#define FANIN_REC_HDR_LEN	(sizeof(struct fanin_wire) + \
				 sizeof(struct fanin_rec))
#define FANIN_ENTRY_SIZE(len) \
	((sizeof(struct fanin_entry) + (uint64_t)(len) + 15) & ~(uint64_t)15)

#define FANIN_DGRAM_LEN		(sizeof(struct fanin_wire) + FANIN_MSG_LEN)
/* The largest datagram a client takes: a record is at most 16 KiB. */
#define FANIN_RECV_LEN		16384u
#define FANIN_MAX_WINDOW	64u
#define FANIN_MAX_CHANNELS	65536u
#define FANIN_MAX_PROCS		16u
#define FANIN_MAX_ROWS		16u

/* The server's view of the channels, which every implementation reports to. */
struct fanin_srv {
	unsigned int nr;		/* channels */
	uint32_t *next_seq;		/* per channel: the next message's */
	unsigned int window;
	uint32_t warm_at;		/* echoes that make a channel warm */
	unsigned int warm;		/* channels that are warm */
	unsigned int hung_up;		/* channels whose client closed */
	uint64_t echoed;		/* messages echoed so far */
	int err;			/* sticky: the first failure */
	void *priv;			/* the implementation's */
};

/*
 * A server implementation: takes over @fds (the server ends of the
 * channels, in channel order), echoes every message through
 * fanin_srv_check() and reports each channel's end once to
 * fanin_srv_hangup().
 */
struct fanin_server_ops {
	const char *name;
	/* On failure the fds not yet taken are closed by the caller. */
	int (*open)(struct fanin_srv *s, const int *fds);
	/* One turn of the event loop; @timeout_ms -1 waits, 0 does not. */
	int (*turn)(struct fanin_srv *s, int timeout_ms);
	void (*close)(struct fanin_srv *s);
};

enum fanin_impl_id {
	FANIN_IPCSOCK_URING,
	FANIN_IPCSOCK_URING_SWW,
	FANIN_IPCSOCK_SHARED,
	FANIN_IPCSOCK_EPOLL,
	FANIN_FLOOR_EPOLL,
	FANIN_FLOOR_URING,
	FANIN_NR_IMPLS,
};

extern const struct fanin_server_ops fanin_ipcsock_uring;
extern const struct fanin_server_ops fanin_ipcsock_uring_sww;
extern const struct fanin_server_ops fanin_ipcsock_shared;
extern const struct fanin_server_ops fanin_ipcsock_epoll;
extern const struct fanin_server_ops fanin_floor_epoll;
extern const struct fanin_server_ops fanin_floor_uring;
extern const struct fanin_server_ops *const fanin_impls[FANIN_NR_IMPLS];

/* Checks one received message of channel @chan; 0 or -EPROTO (sticky). */
static inline int fanin_srv_check(struct fanin_srv *s, unsigned int chan,
				  const void *data, size_t len)
{
	const struct bench_hdr *h = data;

	if (len != FANIN_MSG_LEN || h->seq != s->next_seq[chan] ||
	    h->idx != (uint16_t)chan) {
		if (!s->err)
			s->err = -EPROTO;
		return -EPROTO;
	}
	if (++s->next_seq[chan] == s->warm_at)
		s->warm++;
	s->echoed++;
	return 0;
}

static inline void fanin_srv_hangup(struct fanin_srv *s)
{
	s->hung_up++;
}

/* Sticky failure of the server, the first one kept. */
static inline void fanin_srv_fail(struct fanin_srv *s, int err)
{
	if (!s->err)
		s->err = err;
}

/* What the server process sends the coordinator, twice: idle, then done. */
struct fanin_srv_report {
	int32_t err;
	uint32_t pad;
	int64_t idle_rss_kib;	/* the channels bound, before any traffic */
	int64_t busy_rss_kib;	/* at the end of the window */
	uint64_t msgs;		/* echoed in the window */
	uint64_t ns;		/* the window */
	uint64_t cpu_ns;	/* the server's CPU time in the window */
};

/* What each client process sends once it has stopped. */
struct fanin_cli_report {
	int32_t err;
	uint32_t pad;
	int64_t idle_rss_kib;	/* its channels set up, before sending */
	int64_t busy_rss_kib;	/* when told to stop */
	uint64_t msgs;		/* echoes received and checked */
	uint64_t cpu_ns;	/* from the start of traffic to stop */
};

/* One run's configuration. */
struct fanin_cfg {
	unsigned int channels;
	unsigned int window;
	unsigned int procs;		/* client processes */
	unsigned int warmup_ms;
	unsigned int duration_ms;
};

/* fanin-server.c: the server process; returns its exit status. */
int fanin_server_main(const struct fanin_server_ops *ops,
		      const struct fanin_cfg *cfg, const int *fds, int ctl);

/* fanin-client.c: a client process driving @nr channels from @first. */
int fanin_client_main(const struct fanin_cfg *cfg, const int *fds,
		      unsigned int first, unsigned int nr, int ctl);
/* The datagram of message @seq of channel @chan, FANIN_DGRAM_LEN bytes. */
void fanin_msg_fill(void *buf, unsigned int chan, uint32_t seq);

/* Per round, NaN when the run failed. */
struct fanin_result {
	bool enabled;
	int err;
	unsigned int ok;
	double srv_cpu[BENCH_MAX_ROUNDS];	/* us per message */
	double all_cpu[BENCH_MAX_ROUNDS];	/* server + clients */
	double rate[BENCH_MAX_ROUNDS];		/* msgs/s */
	double srv_idle[BENCH_MAX_ROUNDS];	/* KiB per channel */
	double srv_busy[BENCH_MAX_ROUNDS];
	double all_idle[BENCH_MAX_ROUNDS];
	double all_busy[BENCH_MAX_ROUNDS];
	/* Medians over rounds; ratios per round, then their median. */
	double srv_cpu_med, all_cpu_med, rate_med, rate_min, rate_max;
	double srv_idle_med, srv_busy_med, all_idle_med, all_busy_med;
	struct bench_ratio vs_floor, vs_one;
};

struct fanin_row {
	struct fanin_cfg cfg;
	char skip[128];			/* why the row did not run, or "" */
	struct fanin_result res[FANIN_NR_IMPLS];
};

/* fanin.c: the coordinator. */
int fanin_run_one(const struct fanin_server_ops *ops,
		  const struct fanin_cfg *cfg, struct fanin_srv_report *srv,
		  struct fanin_cli_report *cli);
const char *fanin_prepare_row(const struct fanin_cfg *cfg);

/* fanin-report.c */
void fanin_result_add(struct fanin_result *r, const struct fanin_cfg *cfg,
		      unsigned int round, const struct fanin_srv_report *srv,
		      const struct fanin_cli_report *cli);
void fanin_summarize(struct fanin_row *rows, unsigned int nr,
		     unsigned int rounds);
void fanin_table(FILE *f, const struct fanin_row *rows, unsigned int nr,
		 unsigned int rounds);
unsigned int fanin_records(const struct fanin_row *rows, unsigned int nr,
			   struct bench_record *rec, unsigned int max);

#endif /* IPCSOCK_BENCH_FANIN_H */
