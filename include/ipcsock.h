/* SPDX-License-Identifier: MIT */
/*
 * libipcsock - ordered, whole-message IPC with fd passing between two
 * processes over an unnamed AF_UNIX SOCK_SEQPACKET socket pair, driven by
 * io_uring (or epoll where io_uring is unavailable).
 *
 * Every call that returns int gives 0, a count or an fd on success and a
 * negative errno on failure. The library never prints and never exits.
 * A loop and the sockets on it belong to one thread.
 */
#ifndef IPCSOCK_H
#define IPCSOCK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#ifndef IPCSOCK_API
#define IPCSOCK_API __attribute__((visibility("default")))
#endif

/* The kernel's SCM_MAX_FD: fds one message can carry. */
#define IPCSOCK_MAX_FDS			253

/* Defaults of struct ipcsock_loop_opts, used where a field is 0. */
#define IPCSOCK_DEFAULT_MAX_MSG_SIZE	(64u * 1024)
#define IPCSOCK_DEFAULT_SEND_QUEUE	256u
#define IPCSOCK_DEFAULT_RECV_BUFFERS	32u
#define IPCSOCK_DEFAULT_RING_ENTRIES	256u
#define IPCSOCK_DEFAULT_BGID_BASE	0x7000u

/*
 * Largest max_msg_size a loop accepts. A message travels as one datagram
 * and AF_UNIX limits a datagram to SO_SNDBUF - 32 bytes; the library
 * raises SO_SNDBUF at bind time when max_msg_size needs it.
 */
#define IPCSOCK_MAX_MSG_SIZE_LIMIT	(1u << 24)

/*
 * Shared-ring mode: every user_data the library puts on the application's
 * ring has IPCSOCK_USER_DATA_TAG in its top 16 bits. The application must
 * not use such values itself (pointers and small integers never do).
 */
#define IPCSOCK_USER_DATA_TAG		0x1bc5ull
#define IPCSOCK_USER_DATA_IS_OURS(ud)	(((uint64_t)(ud) >> 48) == \
					 IPCSOCK_USER_DATA_TAG)

enum ipcsock_backend {
	IPCSOCK_BACKEND_AUTO = 0,	/* io_uring, else epoll; env IPCSOCK_BACKEND */
	IPCSOCK_BACKEND_URING,
	IPCSOCK_BACKEND_EPOLL,
};

/*
 * Loop options, libbpf style: set .sz = sizeof(struct ipcsock_loop_opts)
 * (IPCSOCK_LOOP_OPTS does it) so that fields can be added later without
 * breaking callers built against an older header. A 0 field means default.
 */
struct ipcsock_loop_opts {
	size_t sz;
	enum ipcsock_backend backend;
	/* Largest payload (bytes) a message may carry. */
	unsigned int max_msg_size;
	/* Messages a socket may hold queued for sending; then -ENOBUFS. */
	unsigned int send_queue_len;
	/* Received messages a socket buffers before the peer is throttled. */
	unsigned int recv_buffers;
	/* io_uring submission queue size (own ring only). */
	unsigned int ring_entries;
	/* Shared ring: first provided-buffer group id the library may use. */
	unsigned int bgid_base;
	/*
	 * Low-latency mode: before dispatch sleeps, poll for completions for
	 * up to this many microseconds, burning CPU to skip a sleep and a
	 * wake-up. Worth it only with a core to spare. 0: off.
	 */
	unsigned int busy_poll_us;
	/* IPCSOCK_LOOP_* flags. */
	unsigned int flags;
};

/*
 * io_uring backend: send every message as an IORING_OP_SENDMSG, also when
 * the socket has room now. By default a send with nothing queued before it
 * goes straight to sendmsg/sendmmsg(MSG_DONTWAIT), which costs one syscall
 * for the whole batch and no copy; only what the socket cannot take at once
 * is queued on the ring. This flag trades that speed for keeping all I/O
 * on the ring.
 */
#define IPCSOCK_LOOP_RING_SENDS		(1u << 0)

#define IPCSOCK_LOOP_OPTS(name, ...)					\
	struct ipcsock_loop_opts name = {				\
		.sz = sizeof(struct ipcsock_loop_opts),			\
		__VA_ARGS__						\
	}

struct ipcsock;
struct ipcsock_loop;
struct io_uring;
struct io_uring_cqe;

/*
 * One message: bytes plus file descriptors, sent as one datagram.
 * On send, the library copies the bytes and takes its own references to
 * the fds; on receive, data points into library memory and fds are new
 * descriptors (FD_CLOEXEC) that the caller owns.
 */
struct ipcsock_payload {
	const void *data;
	size_t len;
	const int *fds;
	unsigned int nr_fds;
};

typedef void (*ipcsock_ready_read_fn)(struct ipcsock *sock, void *arg);
typedef void (*ipcsock_hangup_fn)(struct ipcsock *sock, int err, void *arg);

/* Loops. */
IPCSOCK_API struct ipcsock_loop *
ipcsock_loop_new(const struct ipcsock_loop_opts *opts);
IPCSOCK_API struct ipcsock_loop *
ipcsock_loop_new_shared(struct io_uring *ring,
			const struct ipcsock_loop_opts *opts);
IPCSOCK_API struct ipcsock_loop *ipcsock_loop_default(void);
IPCSOCK_API void ipcsock_loop_free(struct ipcsock_loop *loop);
IPCSOCK_API int ipcsock_loop_fd(struct ipcsock_loop *loop);
IPCSOCK_API int ipcsock_loop_dispatch(struct ipcsock_loop *loop,
				      int timeout_ms);
IPCSOCK_API int ipcsock_loop_flush(struct ipcsock_loop *loop);
IPCSOCK_API int ipcsock_loop_handle_cqe(struct ipcsock_loop *loop,
					const struct io_uring_cqe *cqe);
IPCSOCK_API bool ipcsock_loop_idle(const struct ipcsock_loop *loop);
IPCSOCK_API enum ipcsock_backend
ipcsock_loop_backend(const struct ipcsock_loop *loop);

/* Sockets. */
IPCSOCK_API struct ipcsock *ipcsock_new(struct ipcsock_loop *loop);
IPCSOCK_API void ipcsock_free(struct ipcsock *sock);
IPCSOCK_API int ipcsock_create(struct ipcsock *sock);
IPCSOCK_API int ipcsock_bind(struct ipcsock *sock, int fd);
IPCSOCK_API void ipcsock_close(struct ipcsock *sock);
IPCSOCK_API bool ipcsock_is_bound(const struct ipcsock *sock);
IPCSOCK_API int ipcsock_send(struct ipcsock *sock,
			     const struct ipcsock_payload *payload);
IPCSOCK_API int ipcsock_send_batch(struct ipcsock *sock,
				   const struct ipcsock_payload *payloads,
				   unsigned int count);
IPCSOCK_API int ipcsock_receive(struct ipcsock *sock,
				struct ipcsock_payload *payload);
IPCSOCK_API void ipcsock_set_ready_read(struct ipcsock *sock,
					ipcsock_ready_read_fn fn, void *arg);
IPCSOCK_API void ipcsock_set_hangup(struct ipcsock *sock,
				    ipcsock_hangup_fn fn, void *arg);

#ifdef __cplusplus
}
#endif

#endif /* IPCSOCK_H */
