/* SPDX-License-Identifier: MIT */
/*
 * ipcsock-bench's shared types: implementations, scenarios, the context a
 * role works in, and results. What the program measures: README.md.
 */
#ifndef IPCSOCK_BENCH_H
#define IPCSOCK_BENCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/socket.h>
#include <sys/types.h>

#define ARRAY_SIZE(a)		(sizeof(a) / sizeof((a)[0]))

#define BENCH_MAX_FDS		8
#define BENCH_MAX_BATCH		64
#define BENCH_MIN_SIZE		16u
#define BENCH_MAX_SIZE		(64u * 1024)
#define BENCH_MAX_ROUNDS	64

/*
 * Warm-up is at least this many messages each way, whatever the time:
 * the library fills each of its send slots (256 by default) once before it
 * reaches its steady state.
 */
#define BENCH_WARMUP_MSGS	1024

/* Camera scenario: three requests and three replies per frame. */
#define CAMERA_EXCHANGES	3
#define CAMERA_FDS		2

/* Every message starts with this (sizes are at least BENCH_MIN_SIZE). */
struct bench_hdr {
	uint32_t seq;
	uint16_t flags;
	uint16_t idx;		/* camera: which request */
};

#define BENCH_F_MEASURE	0x1	/* first message of the measured window */
#define BENCH_F_STOP	0x2	/* ends the window; answered by the peer */
#define BENCH_F_DONE	0x4	/* stream: the receiver has seen STOP */

struct bench_msg {
	void *data;
	size_t len;
	int *fds;
	unsigned int nr_fds;
};

struct bench_chan;

/* The receiver owns @fds and closes them; @data is valid during the call. */
typedef void (*bench_rx_fn)(struct bench_chan *c, void *data, size_t len,
			    int *fds, unsigned int nr_fds);

/* The counters of bench_impl.counters(). */
enum {
	BENCH_CNT_TX_MSGS,
	BENCH_CNT_TX_DGRAMS,
	BENCH_CNT_RX_MSGS,
	BENCH_CNT_RX_DGRAMS,
	BENCH_NR_CNT,
};

struct bench_impl {
	const char *name;
	/* What socketpair() the parent makes for it. */
	int sock_type;
	/* Take over @fd; on failure it is still the caller's. */
	int (*open)(struct bench_chan *c, int fd);
	/* Release everything, the socket too. */
	void (*close)(struct bench_chan *c);
	/* Queue or write @n messages; returns 0 once all are accepted. */
	int (*send)(struct bench_chan *c, const struct bench_msg *msgs,
		    unsigned int n);
	/* Block until something happens; hand received messages to rx. */
	int (*wait)(struct bench_chan *c);
	/* Why this build lacks it (no commas or quotes), or NULL. */
	const char *missing;
	/*
	 * Optional: the channel's counters so far, to show coalescing:
	 * messages and datagrams sent, messages and datagrams received.
	 */
	void (*counters)(struct bench_chan *c, uint64_t v[BENCH_NR_CNT]);
};

struct bench_chan {
	const struct bench_impl *impl;
	int fd;
	size_t max_len;		/* largest message either side sends */
	unsigned int batch;	/* the scenario's batch size */
	bench_rx_fn rx;
	void *rx_arg;
	void *priv;		/* the implementation's state */
	int err;		/* sticky: hang-up or failure */
};

enum bench_impl_id {
	IMPL_IPCSOCK_URING,
	IMPL_IPCSOCK_EPOLL,
	IMPL_FLOOR_SENDMSG,
	IMPL_FLOOR_MMSG,
	IMPL_LIBCAMERA_STYLE,
	IMPL_IPCSOCK_URING_BUSY,
	IMPL_LIBCAMERA,
	IMPL_IPCSOCK_LCWIRE,
	IMPL_IPCSOCK_URING_ADAPTIVE,
	BENCH_NR_IMPLS,
};

extern const struct bench_impl impl_ipcsock_uring;
extern const struct bench_impl impl_ipcsock_epoll;
extern const struct bench_impl impl_floor_sendmsg;
extern const struct bench_impl impl_floor_mmsg;
extern const struct bench_impl impl_libcamera_style;
extern const struct bench_impl impl_ipcsock_uring_busy;
extern const struct bench_impl impl_libcamera;
extern const struct bench_impl impl_ipcsock_lcwire;
extern const struct bench_impl impl_ipcsock_uring_adaptive;
extern unsigned int bench_busy_poll_us;
extern const struct bench_impl *const bench_impls[BENCH_NR_IMPLS];

enum bench_scenario {
	BENCH_PINGPONG,
	BENCH_STREAM,
	BENCH_CAMERA,
	BENCH_FANIN,		/* its own suite: fanin.h */
	BENCH_LIVENESS,		/* its own suite: liveness.h */
	BENCH_NR_SCENARIOS,
};

/* One row of the suite. */
struct bench_cfg {
	enum bench_scenario scenario;
	unsigned int size;
	unsigned int nr_fds;
	unsigned int batch;
	unsigned int warmup_ms;
	unsigned int duration_ms;
	unsigned int fps;
	unsigned int frames;
	unsigned int warm_frames;
};

/* What one process measured over its window. */
struct bench_side {
	int32_t err;
	uint32_t pad;
	uint64_t msgs;		/* messages that crossed the channel */
	uint64_t ns;		/* length of the window */
	uint64_t cpu_ns;	/* user + system time of this process */
	uint64_t allocs;	/* heap allocations of this process */
	uint64_t csw;		/* context switches of this process */
	int64_t rss_kib;	/* resident memory the channel added */
	uint64_t cnt[BENCH_NR_CNT];	/* counters' growth, 0 if none */
};

/* What the parent knows about one run. */
struct bench_run {
	struct bench_side local;
	struct bench_side peer;
	uint32_t *samples;	/* latencies in ns, pingpong and camera */
	size_t nr_samples;
	uint64_t count;		/* stream: messages received in the window */
	uint64_t count_ns;	/* stream: time they took to arrive */
};

/* Everything a role works with. */
struct bench_ctx {
	struct bench_chan chan;
	const struct bench_cfg *cfg;
	bool parent;

	int memfds[BENCH_MAX_FDS];
	unsigned int nr_memfds;
	unsigned char *buf;		/* nr_msgs send buffers */
	size_t buf_stride;
	struct bench_msg msgs[BENCH_MAX_BATCH];
	unsigned int nr_msgs;

	uint32_t *samples;
	size_t nr_samples;
	size_t cap_samples;

	/* The window, see meter.c. */
	bool in_window;
	uint64_t w_t0, w_cpu0, w_csw0, w_allocs0;
	uint64_t w_cnt0[BENCH_NR_CNT];
	int64_t rss0;
	struct bench_side side;

	/* What message idx of the other side looks like (echo.c). */
	unsigned int nr_rx;
	unsigned int rx_len[CAMERA_EXCHANGES];
	unsigned int rx_fds[CAMERA_EXCHANGES];

	/* Scenario state. */
	unsigned int got;		/* replies received */
	uint16_t got_flags;
	bool stop;			/* the role is over */
	bool counting;
	uint64_t count;
	uint64_t count_t0;
	uint64_t count_ns;
	int err;
};

struct bench_scenario_ops {
	const char *name;
	int (*parent)(struct bench_ctx *x);
	int (*peer)(struct bench_ctx *x);
};

extern const struct bench_scenario_ops pingpong_ops;
extern const struct bench_scenario_ops stream_ops;
extern const struct bench_scenario_ops camera_ops;
extern const struct bench_scenario_ops fanin_ops;
extern const struct bench_scenario_ops liveness_ops;
extern const struct bench_scenario_ops *const bench_scenarios[BENCH_NR_SCENARIOS];

/* camera.c: sizes and fds of the three requests (parent) or replies. */
void camera_msgs(struct bench_ctx *x);

/* echo.c: request and reply, for pingpong and camera. */
void reply_rx(struct bench_chan *c, void *data, size_t len, int *fds,
	      unsigned int nr_fds);
int ctx_exchange(struct bench_ctx *x, unsigned int i, uint16_t flags);
int echo_peer(struct bench_ctx *x);

/* stats.c */
uint64_t now_ns(void);
void sleep_until_ns(uint64_t t);
void sort_u32(uint32_t *v, size_t n);
void sort_double(double *v, size_t n);
/* @v sorted; @p in [0, 1]; nearest rank. */
double pct_u32(const uint32_t *v, size_t n, double p);
/* Median, and the smallest and largest value, of the non-NaN values. */
double median_double(const double *v, size_t n, double *min, double *max);

/* meter.c */
void window_begin(struct bench_ctx *x);
void window_end(struct bench_ctx *x, uint64_t msgs);
int64_t rss_kib(void);
uint64_t cpu_ns(uint64_t *csw);

/* alloc-count.c, and glibc's allocator it hands the work to */
uint64_t alloc_count(void);
bool alloc_count_works(void);
void *__libc_malloc(size_t size);
void *__libc_calloc(size_t n, size_t size);
void *__libc_realloc(void *p, size_t size);
void *__libc_memalign(size_t align, size_t size);
void *__libc_valloc(size_t size);
void *__libc_pvalloc(size_t size);
void __libc_free(void *p);

/*
 * baseline.c: what the syscall baselines share. Their channel state starts
 * with a struct raw_chan, allocated and freed with it.
 */
struct raw_chan {
	unsigned char *rxbuf;
};

int raw_chan_open(struct bench_chan *c, int fd, size_t priv_size,
		  size_t rxlen);
void raw_chan_close(struct bench_chan *c);
#define BENCH_CTRL_LEN	CMSG_SPACE(BENCH_MAX_FDS * sizeof(int))
/* A control buffer for up to BENCH_MAX_FDS fds. */
union bench_ctrl {
	struct cmsghdr align;
	unsigned char buf[BENCH_CTRL_LEN];
};
void bench_close_fds(const int *fds, unsigned int n);
void msghdr_set_fds(struct msghdr *mh, void *ctrl, const int *fds,
		    unsigned int nr_fds);
int msghdr_get_fds(struct msghdr *mh, int **fds, unsigned int *nr_fds);
ssize_t raw_chan_recv(struct bench_chan *c, union bench_ctrl *ctrl,
		      int **fds, unsigned int *nr_fds);

/* run.c */
int run_one(const struct bench_impl *impl, const struct bench_cfg *cfg,
	    struct bench_run *run);
int peer_main(int argc, char **argv);
void peer_set_exe(const char *argv0);
bool bench_err_unsupported(int err);
extern bool bench_pin;
int read_full(int fd, void *buf, size_t len);
int write_full(int fd, const void *buf, size_t len);

/* Helpers the scenarios share (run.c). */
int ctx_send(struct bench_ctx *x, unsigned int first, unsigned int n);
int ctx_wait_stop(struct bench_ctx *x);
struct bench_hdr *msg_hdr(struct bench_ctx *x, unsigned int i);

/* The results of one row, for one implementation, over all rounds. */
struct bench_ratio {
	double med, min, max;	/* NaN when not measured */
};

enum bench_ref {
	REF_SENDMSG,
	REF_MMSG,
	REF_LIBCAMERA,
	BENCH_NR_REFS,
};

struct bench_result {
	bool enabled;
	int err;			/* the last failure, 0 if none */
	unsigned int ok;		/* rounds that worked */
	/* Per round, NaN when the run failed. */
	double primary[BENCH_MAX_ROUNDS];	/* latency us, or msgs/s */
	double cpu[BENCH_MAX_ROUNDS];
	double csw[BENCH_MAX_ROUNDS];
	double allocs[BENCH_MAX_ROUNDS];
	double rss[BENCH_MAX_ROUNDS];
	double round_rec[BENCH_MAX_ROUNDS];	/* datagrams per message sent */
	double round_rx[BENCH_MAX_ROUNDS];	/* messages per one received */
	uint32_t *pool;			/* latency samples of every round */
	size_t nr_pool;
	/* Summary, NaN where it does not apply. */
	double median_us, p90_us, p99_us, p999_us, max_us;
	double round_min, round_max;	/* of the per-round figure */
	double msgs_per_s, mb_per_s;
	double cpu_us_per_msg, csw_per_msg, allocs_per_msg, rss_kib;
	double records_per_msg, msgs_per_rx;
	struct bench_ratio vs[BENCH_NR_REFS];
};

struct bench_row {
	struct bench_cfg cfg;
	struct bench_result res[BENCH_NR_IMPLS];
};

/*
 * One JSON or CSV record, whatever the scenario: NaN is null (an empty
 * cell), a NULL string null; a range that does not apply (valid false) is
 * left out of JSON. README.md lists the fields.
 */
struct bench_range {
	double min, max;
	bool valid;
};

struct bench_record {
	const char *scenario, *impl, *error;
	double size, fds, batch, fps, rounds;
	double median_us, p90_us, p99_us, p999_us, max_us;
	double msgs_per_s, mb_per_s;
	double cpu_us_per_msg, allocs_per_msg, rss_kib, ctxsw_per_msg;
	double records_per_msg, msgs_per_rx;
	struct bench_range median_us_range, msgs_per_s_range;
	struct bench_ratio vs[BENCH_NR_REFS];
	/* fanin */
	double channels, window, server_cpu_us_per_msg;
	double rss_kib_per_channel, idle_rss_kib_per_channel;
	double server_rss_kib_per_channel, server_idle_rss_kib_per_channel;
	struct bench_ratio vs_floor_epoll, vs_one_channel;
	/* liveness */
	const char *peer_backend, *load;
	double kills, p50_us;
};

/* Every number NaN, every string NULL, every range invalid. */
void record_init(struct bench_record *rec);

/* report.c */
void result_add_run(struct bench_result *r, const struct bench_cfg *cfg,
		    unsigned int round, const struct bench_run *run);
void row_summarize(struct bench_row *row, unsigned int rounds);
void report_table(FILE *f, const struct bench_row *rows, unsigned int n);
int report_records(const char *path, bool csv, const struct bench_row *rows,
		   unsigned int n, const struct bench_record *extra,
		   unsigned int nr_extra);
const char *ref_impl_name(enum bench_ref ref);
/* Table cells: a number ("-" for NaN), a ratio "med (min-max)". */
void put_num(FILE *f, int width, int prec, double v);
void put_ratio(FILE *f, const struct bench_ratio *q);

#endif /* IPCSOCK_BENCH_H */
