/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The selftests' shared helpers (helpers.c): fd counting, bounded dispatch
 * loops, memfd helpers, a raw SOCK_SEQPACKET peer speaking the wire
 * format, the common per-test context (loop, sockets, fd baseline) that
 * every fixture embeds, and a callback recorder. Tests include selftest.h,
 * which includes this and the kselftest harness.
 *
 * Include this first: it needs _GNU_SOURCE before any system header.
 */
#ifndef IPCSOCK_SELFTEST_HELPERS_H
#define IPCSOCK_SELFTEST_HELPERS_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/resource.h>
#include <sys/types.h>

#include "ipcsock.h"
#include "wire-test.h"

/* Default bound for every wait in the tests. */
#define WAIT_MS		5000

uint64_t now_ms(void);
bool nofile_at_least(rlim_t need);
bool under_valgrind(void);
void child_close_other_fds(int keep);
bool pidfd_usable(void);

/* Descriptors of this process. */
int count_open_fds(void);
void dump_open_fds(const char *why);
bool fd_is_open(int fd);
bool fd_is_cloexec(int fd);
int fd_clear_cloexec(int fd);
bool same_file(int a, int b);
int memfd_with(const char *name, const char *content);
ssize_t fd_content(int fd, char *buf, size_t cap);
off_t fd_offset(int fd);
void close_fds_array(const int *fds, unsigned int n);
int max_open_fd(int below);

/*
 * Descriptor snapshot: which fd numbers below FD_SNAP_MAX are open. Used to
 * find the descriptors the library opened between two points.
 */
#define FD_SNAP_MAX	4096

struct fd_snap {
	unsigned char open[FD_SNAP_MAX];
};

void fd_snap_take(struct fd_snap *s);

/*
 * A third test variant: the io_uring backend with every send on the ring
 * (IPCSOCK_LOOP_RING_SENDS), so that the SENDMSG chain path runs even
 * when the socket has room and the direct path would take the message.
 */
#define BACKEND_URING_RING_SENDS	((enum ipcsock_backend)0x100)

enum ipcsock_backend real_backend(enum ipcsock_backend b);
const char *backend_name(enum ipcsock_backend b);
bool uring_available(void);
struct ipcsock_loop *loop_new(enum ipcsock_backend backend,
			      unsigned int max_msg_size,
			      unsigned int send_queue_len,
			      unsigned int recv_buffers);

struct io_uring;

/*
 * Loops the per-test context made inside a ring of its own (shared-ring
 * setups): loop_pump() finds their ring here, so that every helper that
 * waits on a loop drives a shared one as its application must.
 */
int shared_loop_add(struct ipcsock_loop *loop, struct io_uring *ring);
void shared_loop_del(struct ipcsock_loop *loop);
struct io_uring *shared_ring_of(struct ipcsock_loop *loop);
int loop_pump(struct ipcsock_loop *loop, int ms);

/*
 * Dispatch @loop until @cond holds or @timeout_ms passed; evaluates to the
 * final value of @cond. Every wait is bounded.
 */
#define dispatch_until(loop, cond, timeout_ms) ({			\
	uint64_t __deadline = now_ms() + (timeout_ms);			\
	bool __ok;							\
									\
	while (!(__ok = (cond)) && now_ms() < __deadline)		\
		loop_pump((loop), 5);					\
	__ok;								\
})

/* The same over two loops (both ends of a channel on different loops). */
#define dispatch2_until(l1, l2, cond, timeout_ms) ({			\
	uint64_t __deadline = now_ms() + (timeout_ms);			\
	bool __ok;							\
									\
	while (!(__ok = (cond)) && now_ms() < __deadline) {		\
		loop_pump((l1), 1);					\
		loop_pump((l2), 1);					\
	}								\
	__ok;								\
})

void loop_turn(struct ipcsock_loop *loop, struct io_uring *ring, int ms);
int dispatch_for(struct ipcsock_loop *loop, int ms);
int receive_wait(struct ipcsock_loop *loop, struct ipcsock *sock,
		 struct ipcsock_payload *p, int timeout_ms);
struct ipcsock_payload msg_of(const void *data, size_t len, int *fds,
			      unsigned int nr_fds);
int send_str(struct ipcsock *sock, const char *s);

/* The raw peer. */
ssize_t raw_send_hdr(int fd, const struct test_wire_hdr *hdr,
		     const void *data, size_t len, const int *fds,
		     unsigned int nr_fds);
ssize_t raw_send_msg(int fd, const void *data, size_t len, const int *fds,
		     unsigned int nr_fds);
ssize_t raw_recv(int fd, void *buf, size_t cap, int *fds,
		 unsigned int max_fds, unsigned int *nr_fds, int *msg_flags);
ssize_t raw_recv_msg(int fd, void *buf, size_t cap, int *fds,
		     unsigned int max_fds, unsigned int *nr_fds,
		     int *msg_flags);
unsigned long raw_recv_datagrams(void);
bool fd_wait_readable(int fd, int timeout_ms);
bool raw_wait_readable(struct ipcsock_loop *loop, int fd, int timeout_ms);

/*
 * Common per-test context. Every fixture embeds one; the setup creates the
 * loop on the variant's backend and records the fd baseline, the teardown
 * frees what is left (sockets, raw fds, extra loops, children) and checks
 * that the descriptor count is back to the baseline (selftest.h).
 */
#define CTX_SOCKS	4
#define CTX_LOOPS	2
#define CTX_FDS		4

struct ipcsock_test {
	enum ipcsock_backend backend;
	/*
	 * Shared-ring setups: the ring the test owns (set up with
	 * @ring_flags) and every loop of the context lives in, else NULL.
	 */
	struct io_uring *ring;
	unsigned int ring_flags;
	bool not_idle;		/* a shared loop was busy at teardown */
	int fd_base;		/* open fds before the loop existed */
	int fd_loop;		/* open fds once the loop exists */
	struct ipcsock_loop *loop;
	/* Extra loops (other options), freed after the sockets. */
	struct ipcsock_loop *loops[CTX_LOOPS];
	/* Sockets freed by teardown; set to NULL when a test frees one. */
	struct ipcsock *socks[CTX_SOCKS];
	/* Raw descriptors closed by teardown; -1 when unused. */
	int fds[CTX_FDS];
	/* A child process killed and reaped by teardown; 0 when none. */
	pid_t child;
};

int ctx_release(struct ipcsock_test *t);
int ctx_keep_sock(struct ipcsock_test *t, struct ipcsock *sock);
void ctx_forget_sock(struct ipcsock_test *t, struct ipcsock *sock);
int ctx_keep_fd(struct ipcsock_test *t, int fd);
void ctx_close_fd(struct ipcsock_test *t, int fd);
int ctx_keep_loop(struct ipcsock_test *t, struct ipcsock_loop *loop);
int ctx_ring_init(struct ipcsock_test *t, unsigned int ring_flags);
struct ipcsock_loop *ctx_loop_new(struct ipcsock_test *t, int slot,
				  unsigned int max_msg_size,
				  unsigned int send_queue_len,
				  unsigned int recv_buffers);

/*
 * A callback recorder: counts calls, checks the socket and argument it is
 * given, and (optionally) receives messages, up to @per_call per
 * ready_read call (0: all pending). Received messages are checked against
 * a sequence number in their first 4 bytes when @check_seq is set; their
 * fds are counted and closed.
 */
struct rec {
	struct ipcsock *sock;
	int ready;		/* ready_read calls */
	int hangup;		/* hangup calls */
	int hangup_err;
	int received;		/* messages received in callbacks */
	int received_at_hangup;	/* messages received when hangup ran */
	int fds;		/* fds received (and closed) */
	int bad;		/* wrong socket/arg, bad fds, bad order */
	int recv_err;		/* unexpected ipcsock_receive() error */
	unsigned int per_call;	/* 0: receive all in one call */
	bool no_receive;	/* ready_read receives nothing */
	bool check_seq;
	bool receive_in_hangup;	/* drain in the hangup callback */
	uint32_t next_seq;
	bool close_in_hangup;	/* ipcsock_close() from hangup */
};

int rec_drain(struct rec *r, struct ipcsock *sock, unsigned int max);
void rec_ready_read(struct ipcsock *sock, void *arg);
void rec_hangup(struct ipcsock *sock, int err, void *arg);
void rec_attach(struct rec *r, struct ipcsock *sock);

#endif /* IPCSOCK_SELFTEST_HELPERS_H */
