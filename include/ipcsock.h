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
 * raises SO_SNDBUF at bind time when max_msg_size needs it. AF_UNIX also
 * puts all but 68 KiB of a datagram in one kernel allocation, at most
 * 4 MiB with 4 KiB pages, and refuses larger ones with ENOBUFS.
 */
#define IPCSOCK_MAX_MSG_SIZE_LIMIT	(1u << 22)

/*
 * Shared-ring mode: every user_data the library puts on the application's
 * ring has IPCSOCK_USER_DATA_TAG in its top 16 bits. The application must
 * not use such values itself (pointers and small integers never do).
 */
#define IPCSOCK_USER_DATA_TAG		0x1bc5ull
#define IPCSOCK_USER_DATA_IS_OURS(ud)	(((uint64_t)(ud) >> 48) == \
					 IPCSOCK_USER_DATA_TAG)

/**
 * enum ipcsock_backend - what drives a loop
 * @IPCSOCK_BACKEND_AUTO: io_uring, else epoll when the ring cannot be set up
 *	for any reason but lack of memory; the environment variable
 *	IPCSOCK_BACKEND (epoll, io_uring) chooses instead when set
 * @IPCSOCK_BACKEND_URING: io_uring or fail
 * @IPCSOCK_BACKEND_EPOLL: epoll
 *
 * Both behave the same towards the application and on the wire, so the two
 * ends of a channel may use different ones.
 */
enum ipcsock_backend {
	IPCSOCK_BACKEND_AUTO = 0,
	IPCSOCK_BACKEND_URING,
	IPCSOCK_BACKEND_EPOLL,
};

/**
 * struct ipcsock_loop_opts - options of a new loop
 * @sz: sizeof(struct ipcsock_loop_opts), as IPCSOCK_LOOP_OPTS() sets it
 * @backend: see &enum ipcsock_backend; default %IPCSOCK_BACKEND_AUTO
 * @max_msg_size: largest payload, in bytes, a message may carry either way;
 *	default %IPCSOCK_DEFAULT_MAX_MSG_SIZE, at most
 *	%IPCSOCK_MAX_MSG_SIZE_LIMIT. Both ends must use the same value:
 *	records are sized from the sender's limit, so a receiver with a
 *	smaller one fails the channel with -EMSGSIZE as soon as the sender
 *	packs messages into a record
 * @send_queue_len: messages a socket may hold queued for sending, after
 *	which sending fails with -ENOBUFS; default %IPCSOCK_DEFAULT_SEND_QUEUE
 * @recv_buffers: received datagrams a socket holds before it stops
 *	reading, which throttles the peer; a datagram is one message or a
 *	record of several, and its buffer is free again once its last
 *	message was received; default %IPCSOCK_DEFAULT_RECV_BUFFERS. A
 *	record counts as many buffers as it fills pages, or it has messages
 *	when fewer, so that records keep no more pages resident than their
 *	messages alone would (8 records of 16 KiB at the default). Their
 *	descriptors are the process's from the read on, before
 *	ipcsock_receive(): up to this many datagrams' count against
 *	RLIMIT_NOFILE at once, and one that does not fit fails the channel
 *	(-EMFILE). epoll reads up to 32 at a time, io_uring 12 at first and
 *	more as bursts come: size it for the limit on either backend.
 * @ring_entries: submission queue size of the loop's own io_uring; default
 *	%IPCSOCK_DEFAULT_RING_ENTRIES
 * @bgid_base: first io_uring provided-buffer group id the library may use,
 *	one per bound socket; matters on a shared ring; default
 *	%IPCSOCK_DEFAULT_BGID_BASE
 * @busy_poll_us: low-latency mode: before dispatch sleeps, poll for
 *	completions for up to this many microseconds, burning CPU to skip a
 *	sleep and a wake-up; worth it only with a core to spare; 0: off.
 *	With %IPCSOCK_LOOP_ADAPTIVE_WAIT, the most the adaptive policy may
 *	poll before one sleep instead (0: %IPCSOCK_ADAPTIVE_WAIT_CAP_US)
 * @flags: IPCSOCK_LOOP_* flags
 *
 * libbpf style: @sz lets fields be added later without breaking callers
 * built against an older header. A field left 0 takes its default.
 * ipcsock_loop_new(3) gives the limits of each field.
 */
struct ipcsock_loop_opts {
	size_t sz;
	enum ipcsock_backend backend;
	unsigned int max_msg_size;
	unsigned int send_queue_len;
	unsigned int recv_buffers;
	unsigned int ring_entries;
	unsigned int bgid_base;
	unsigned int busy_poll_us;
	unsigned int flags;
};

/*
 * io_uring backend: send every message as an IORING_OP_SENDMSG, also when
 * the socket has room now. By default a send with nothing queued before it
 * goes straight to sendmsg/sendmmsg(MSG_DONTWAIT), which costs one syscall
 * for the whole batch and no copy; only what the socket cannot take at once
 * is queued on the ring. This flag trades that speed for keeping all I/O
 * on the ring. A lone message in the libcamera wire mode on the loop's own
 * ring is copied and sent as a chain of two SENDMSGs, flag or not: it
 * still goes out before the send returns, and its peer wakes once for it,
 * not for its header and again for its payload.
 */
#define IPCSOCK_LOOP_RING_SENDS		(1u << 0)

/*
 * Adaptive waiting: before dispatch sleeps, it polls for completions only
 * while polling pays. A poll lasts about twice the recent time from
 * entering a wait to the completion that ended its poll (a moving
 * average), at most busy_poll_us or, when that is 0,
 * %IPCSOCK_ADAPTIVE_WAIT_CAP_US. A loop whose polls keep finding nothing
 * (the peer is slow or busy, the loop idle, or the peer shares our CPU)
 * sleeps at once and tries again rarely, less often the more it fails.
 * It never polls with one CPU online, nor, with the default cap, on a
 * thread allowed on one CPU only (taskset or a cpuset usually put the
 * peer there too); an application that pins its ends to two CPUs on
 * purpose gives busy_poll_us. A peer that answers within microseconds is
 * then seen without a sleep and a cross-CPU wake-up, and an idle loop
 * costs no CPU. Not the default: see the README's Performance section.
 * Ignored on a shared ring, where the application waits.
 * ipcsock_loop_get_stats() shows what the policy did.
 */
#define IPCSOCK_LOOP_ADAPTIVE_WAIT	(1u << 1)

/*
 * io_uring backend, the loop's own ring: what callbacks send during a
 * dispatch goes to the kernel with the loop's next wait, in the same
 * io_uring_enter, instead of in one of its own at the end of that
 * dispatch. Implies %IPCSOCK_LOOP_RING_SENDS. A server answering on many
 * channels then makes one system call a turn for all its replies and its
 * wait, and the peers its sends wake do not preempt it halfway through
 * its turn (the README's fanin figures). The messages wait until the
 * application dispatches again or calls ipcsock_loop_flush(): for a loop
 * driven by ipcsock_loop_dispatch() alone. Once ipcsock_loop_fd() was
 * called, dispatch submits at its end as without the flag, since the
 * application then sleeps on that fd. Sends outside dispatch go at once
 * as always. Ignored on epoll and on a shared ring, whose owner submits.
 */
#define IPCSOCK_LOOP_SUBMIT_WITH_WAIT	(1u << 2)

/*
 * Default bound of one adaptive poll, in microseconds: about twice a
 * small-message round trip between two processes on different CPUs
 * through sleeps and wake-ups on the machines we measured (25 us), so a
 * peer that answers at once is caught even when its reply comes as late
 * as a sleeping wait would have seen it, while a poll that finds nothing
 * wastes at most this much CPU before the loop sleeps.
 */
#define IPCSOCK_ADAPTIVE_WAIT_CAP_US	50

/**
 * IPCSOCK_LOOP_OPTS() - declare loop options with their size set
 * @name: the variable to declare, a struct ipcsock_loop_opts
 * @...: designated initialisers of the other fields, e.g. .flags = ...
 *
 * For C. C++ has designated initialisers only from C++20, and g++ -Wextra
 * warns of every field left out; C++ code value-initialises the struct and
 * sets .sz and the fields it wants (ipcsock.hpp's Loop takes such a struct).
 */
#define IPCSOCK_LOOP_OPTS(name, ...)					\
	struct ipcsock_loop_opts name = {				\
		.sz = sizeof(struct ipcsock_loop_opts),			\
		__VA_ARGS__						\
	}

struct ipcsock;
struct ipcsock_loop;
struct io_uring;
struct io_uring_cqe;

/**
 * struct ipcsock_payload - one message: bytes and file descriptors
 * @data: the bytes; may be NULL if @len is 0
 * @len: how many bytes, at most the loop's max_msg_size
 * @fds: the descriptors; may be NULL if @nr_fds is 0
 * @nr_fds: how many descriptors, at most %IPCSOCK_MAX_FDS
 *
 * A message travels in one datagram (two in %IPCSOCK_WIRE_LIBCAMERA mode),
 * alone or with others that were ready to go at the same time, and
 * arrives whole or not at all; it has bytes, descriptors or both. The
 * structure is a view: on send, the library copies the bytes and takes
 * its own references to the descriptors before the call returns; on
 * receive, @data and @fds point into library memory, read-only and valid
 * until the next receive on the socket, while the descriptors themselves
 * (new ones, close-on-exec) are the caller's to close. Received @data is
 * 16-byte aligned (8-byte in %IPCSOCK_WIRE_LIBCAMERA mode).
 */
struct ipcsock_payload {
	const void *data;
	size_t len;
	const int *fds;
	unsigned int nr_fds;
};

/**
 * typedef ipcsock_ready_read_fn - a socket has received messages
 * @sock: the socket
 * @arg: the argument given to ipcsock_set_ready_read()
 *
 * Should receive until ipcsock_receive() returns -EAGAIN; if it leaves
 * messages, it runs again on a later dispatch.
 *
 * Context: Called from ipcsock_loop_dispatch() only. May call any function
 * of the library on any socket of the loop, including ipcsock_close() and
 * ipcsock_free() of @sock, but not ipcsock_loop_dispatch() or
 * ipcsock_loop_free() of its loop.
 */
typedef void (*ipcsock_ready_read_fn)(struct ipcsock *sock, void *arg);

/**
 * typedef ipcsock_hangup_fn - a socket's channel has ended
 * @sock: the socket, still bound until closed or freed
 * @err: 0 if the peer closed its end in order, -ECONNRESET if it closed
 *	with messages of ours unread, -ESRCH if a watched peer process
 *	exited (ipcsock_watch_pidfd()), another negative errno if the channel
 *	failed (-EMSGSIZE, -EMFILE, -EPROTO, ...). -ECONNRESET is best
 *	effort: messages the peer's library had received but its application
 *	had not are reported by a notice that a full socket or send queue
 *	leaves out, and then only what was still in its socket counts, so 0
 *	can come instead. Only the peer's ipcsock_close() sends that notice:
 *	a peer process that exits or crashes without it, with messages of
 *	ours in its library's buffers, gives 0 unless the kernel itself
 *	reports a reset. In %IPCSOCK_WIRE_LIBCAMERA mode never 0 or
 *	-ECONNRESET, but -ECONNREFUSED when a send found the peer's end
 *	closed
 * @arg: the argument given to ipcsock_set_hangup()
 *
 * Runs once per binding, after every message the peer sent before the end
 * has become receivable; messages not taken yet can still be received.
 *
 * Context: As &typedef ipcsock_ready_read_fn.
 */
typedef void (*ipcsock_hangup_fn)(struct ipcsock *sock, int err, void *arg);

/**
 * ipcsock_loop_new() - create an event loop with its own io_uring or epoll
 * @opts: options, or NULL for every default
 *
 * The loop drives the sockets made on it with ipcsock_new() and runs their
 * callbacks from ipcsock_loop_dispatch().
 *
 * Context: Any thread; the loop then belongs to the thread that uses it.
 * Return: The new loop, or NULL with errno set (EINVAL for bad options,
 * ENOMEM, ENOSYS, EPERM or EOPNOTSUPP when io_uring was demanded and is
 * unusable, EMFILE, ...).
 */
IPCSOCK_API struct ipcsock_loop *
ipcsock_loop_new(const struct ipcsock_loop_opts *opts);

/**
 * ipcsock_loop_new_shared() - create a loop inside the application's io_uring
 * @ring: the application's ring, which it keeps submitting to and reaping
 * @opts: options, or NULL for every default; ring_entries, busy_poll_us,
 *	%IPCSOCK_LOOP_ADAPTIVE_WAIT and %IPCSOCK_LOOP_SUBMIT_WITH_WAIT are
 *	ignored, the backend must be AUTO or URING
 *
 * The application hands every completion of @ring to
 * ipcsock_loop_handle_cqe(), must not use user_data values tagged with
 * %IPCSOCK_USER_DATA_TAG, and leaves buffer group ids from bgid_base up to
 * the library; ipcsock_loop_new_shared(3) has the full rules.
 *
 * Context: The thread that submits to @ring, which the loop then belongs to.
 * Return: The new loop, or NULL with errno set (EINVAL, EOPNOTSUPP on a
 * kernel before 6.0, ENOMEM).
 */
IPCSOCK_API struct ipcsock_loop *
ipcsock_loop_new_shared(struct io_uring *ring,
			const struct ipcsock_loop_opts *opts);

/**
 * ipcsock_loop_default() - the calling thread's default loop
 *
 * Created on the first call in each thread, as by ipcsock_loop_new(NULL);
 * freed when a thread other than the initial one exits.
 *
 * Context: Any thread; each gets its own loop.
 * Return: The loop, or NULL with errno set if it could not be created (a
 * later call tries again).
 */
IPCSOCK_API struct ipcsock_loop *ipcsock_loop_default(void);

/**
 * ipcsock_loop_free() - destroy a loop
 * @loop: the loop, or NULL
 *
 * Sockets still bound on @loop are closed; their handles must still be
 * freed with ipcsock_free(). A loop on a shared ring must be idle first
 * (ipcsock_loop_idle()).
 *
 * Context: The loop's thread, not from a callback running on @loop.
 */
IPCSOCK_API void ipcsock_loop_free(struct ipcsock_loop *loop);

/**
 * ipcsock_loop_fd() - a descriptor to watch a loop from another event loop
 * @loop: the loop
 *
 * The descriptor polls readable (level-triggered) whenever
 * ipcsock_loop_dispatch() has work; call that with a timeout of 0 then.
 * It belongs to the loop: do not read from it or close it.
 *
 * Context: The loop's thread.
 * Return: The descriptor, the same one on every call, or a negative errno
 * (-EINVAL, -EMFILE, -ENOMEM, ...).
 */
IPCSOCK_API int ipcsock_loop_fd(struct ipcsock_loop *loop);

/**
 * ipcsock_loop_dispatch() - wait for events and run the callbacks that are due
 * @loop: the loop
 * @timeout_ms: how long to wait: -1 without a limit, 0 not at all
 *
 * Submits what the library prepared, waits until a socket has messages or
 * its channel ended or a send queue shrank, then runs the ready_read and
 * hangup callbacks that are due. Never waits on a shared ring. A program
 * must keep calling it for its channels to make progress.
 *
 * Context: The loop's thread, not from a callback running on @loop. May
 * sleep up to @timeout_ms.
 * Return: The number of callbacks run (0 on a timeout or when a send queue
 * shrank), or a negative errno: -EINVAL, -ECHILD (a loop inherited over
 * fork()), -EBUSY from a callback, -EINTR if
 * a signal came before callbacks were due, or an error of
 * io_uring_enter(2) or epoll_wait(2).
 */
IPCSOCK_API int ipcsock_loop_dispatch(struct ipcsock_loop *loop,
				      int timeout_ms);

/**
 * ipcsock_loop_flush() - submit the requests the library has prepared
 * @loop: the loop
 *
 * Never needed for progress; lets a callback start a reply before it
 * returns, and a shared ring's owner submit without dispatching.
 *
 * Context: The loop's thread, also from callbacks. Does not wait.
 * Return: 0, or a negative errno (-EINVAL, -ECHILD for a loop inherited
 * over fork(), an error of io_uring_enter(2)).
 */
IPCSOCK_API int ipcsock_loop_flush(struct ipcsock_loop *loop);

/**
 * ipcsock_loop_handle_cqe() - hand a shared ring's completion to a loop
 * @loop: a loop made with ipcsock_loop_new_shared()
 * @cqe: a completion reaped from the ring, read during the call only
 *
 * Runs no callback: call ipcsock_loop_dispatch() with a timeout of 0 after a
 * batch of completions.
 *
 * Context: The loop's thread, which reaps the ring.
 * Return: 1 if @cqe was @loop's and has been handled (the application must
 * ignore it), 0 if it is not (the application's, or another loop's when
 * IPCSOCK_USER_DATA_IS_OURS()), also for a NULL argument. Never fails.
 */
IPCSOCK_API int ipcsock_loop_handle_cqe(struct ipcsock_loop *loop,
					const struct io_uring_cqe *cqe);

/**
 * ipcsock_loop_idle() - whether a loop has nothing in flight and nothing due
 * @loop: the loop
 *
 * Tells a shared ring's owner when a loop whose sockets are closed may be
 * freed. A bound socket on io_uring always has a receive in flight.
 *
 * Context: The loop's thread.
 * Return: true if no operation is in flight and no callback is due, or
 * @loop is NULL; false otherwise.
 */
IPCSOCK_API bool ipcsock_loop_idle(const struct ipcsock_loop *loop);

/**
 * ipcsock_loop_backend() - the backend a loop actually uses
 * @loop: the loop
 *
 * Context: The loop's thread.
 * Return: %IPCSOCK_BACKEND_URING or %IPCSOCK_BACKEND_EPOLL;
 * %IPCSOCK_BACKEND_AUTO only if @loop is NULL.
 */
IPCSOCK_API enum ipcsock_backend
ipcsock_loop_backend(const struct ipcsock_loop *loop);

/**
 * ipcsock_new() - allocate an unbound socket handle
 * @loop: the loop it runs on, or NULL for ipcsock_loop_default()
 *
 * Bind it with ipcsock_create() or ipcsock_bind(); it can be closed and
 * bound again any number of times.
 *
 * Context: The loop's thread.
 * Return: The handle, or NULL with errno set (ENOMEM, or the errors of
 * creating the default loop).
 */
IPCSOCK_API struct ipcsock *ipcsock_new(struct ipcsock_loop *loop);

/**
 * enum ipcsock_wire - the format a socket speaks on its channel
 * @IPCSOCK_WIRE_NATIVE: the library's own: a SOCK_SEQPACKET socket, one
 *	datagram per message with a header that is checked; the peer's
 *	close, and its reset when it leaves messages unread, are reported
 * @IPCSOCK_WIRE_LIBCAMERA: libcamera's IPCUnixSocket: a SOCK_DGRAM socket,
 *	two datagrams per message (a header with the byte and fd counts, then
 *	the bytes with the fds), so that a libcamera process can be the peer.
 *	Every message is still checked, delivered whole and in order; a
 *	message with neither bytes nor fds cannot be sent (-EINVAL, as in
 *	libcamera). A datagram socket pair has no end of file: the peer's
 *	close is seen only when a send is refused (hangup -ECONNREFUSED),
 *	never while only receiving (ipcsock_watch_pidfd() sees the peer
 *	process exit), and there is no reset notice
 *
 * Both ends of a channel must use the same one. The mode is chosen per
 * socket handle, when it is made, and kept across close and rebind.
 */
enum ipcsock_wire {
	IPCSOCK_WIRE_NATIVE = 0,
	IPCSOCK_WIRE_LIBCAMERA,
};

/**
 * struct ipcsock_opts - options of a new socket handle
 * @sz: sizeof(struct ipcsock_opts), as IPCSOCK_OPTS() sets it
 * @wire: see &enum ipcsock_wire; default %IPCSOCK_WIRE_NATIVE
 *
 * libbpf style, as &struct ipcsock_loop_opts.
 */
struct ipcsock_opts {
	size_t sz;
	enum ipcsock_wire wire;
};

/**
 * IPCSOCK_OPTS() - declare socket options with their size set
 * @name: the variable to declare, a struct ipcsock_opts
 * @...: designated initialisers of the other fields, e.g. .wire = ...
 *
 * For C, as IPCSOCK_LOOP_OPTS(); ipcsock.hpp takes an enum instead.
 */
#define IPCSOCK_OPTS(name, ...)						\
	struct ipcsock_opts name = {					\
		.sz = sizeof(struct ipcsock_opts),			\
		__VA_ARGS__						\
	}

/**
 * ipcsock_new_opts() - allocate an unbound socket handle with options
 * @loop: the loop it runs on, or NULL for ipcsock_loop_default()
 * @opts: options, or NULL for every default (then as ipcsock_new())
 *
 * As ipcsock_new(); @opts->wire chooses the format every binding of the
 * handle speaks, and with it the socket type ipcsock_create() makes and
 * ipcsock_bind() accepts.
 *
 * Context: The loop's thread.
 * Return: The handle, or NULL with errno set: EINVAL for bad options (an
 * unknown @opts->wire, @opts->sz too small, or bytes past the fields this
 * library knows not zero), else as ipcsock_new().
 */
IPCSOCK_API struct ipcsock *ipcsock_new_opts(struct ipcsock_loop *loop,
					     const struct ipcsock_opts *opts);

/**
 * ipcsock_free() - close a socket handle and free it
 * @sock: the handle, or NULL
 *
 * Context: The loop's thread, also from the socket's own callbacks.
 */
IPCSOCK_API void ipcsock_free(struct ipcsock *sock);

/**
 * ipcsock_create() - make a new channel and bind a handle to one end
 * @sock: an unbound handle
 *
 * The other end, close-on-exec, is the caller's to hand to the peer (e.g.
 * a worker started with fork and exec) and then to close: while the caller
 * holds both ends, the channel cannot end. The pair is SOCK_SEQPACKET, or
 * SOCK_DGRAM for a handle in %IPCSOCK_WIRE_LIBCAMERA mode.
 *
 * Context: The loop's thread, also from callbacks.
 * Return: The peer's end, a descriptor, or a negative errno (-EINVAL,
 * -EBUSY if bound, -EMSGSIZE, -EMFILE, -EEXIST on a shared ring whose
 * application uses the buffer group id, -ENOMEM, ...); on failure the handle
 * stays unbound.
 */
IPCSOCK_API int ipcsock_create(struct ipcsock *sock);

/**
 * ipcsock_bind() - bind a handle to an existing channel end
 * @sock: an unbound handle
 * @fd: a connected AF_UNIX SOCK_SEQPACKET socket, e.g. the end a worker got;
 *	SOCK_DGRAM for a handle in %IPCSOCK_WIRE_LIBCAMERA mode
 *
 * On success the library owns @fd and closes it on ipcsock_close(); on
 * failure @fd stays the caller's.
 *
 * Context: The loop's thread, also from callbacks.
 * Return: 0, or a negative errno: as ipcsock_create(), and -EBADF,
 * -ENOTSOCK, -EAFNOSUPPORT, -EPROTOTYPE (also for a socket of the type
 * of the other wire mode), -ENOTCONN for an unsuitable @fd.
 */
IPCSOCK_API int ipcsock_bind(struct ipcsock *sock, int fd);

/**
 * ipcsock_close() - unbind a handle from its channel
 * @sock: the handle, or NULL; closing an unbound one does nothing
 *
 * Queued messages go to the kernel as far as the socket buffer takes them,
 * the rest are dropped (in %IPCSOCK_WIRE_LIBCAMERA mode a message goes
 * whole or not at all: a header whose payload the socket did not take is
 * followed by nothing); received messages not taken are discarded and their
 * descriptors closed. The peer's hangup callback gets 0, or -ECONNRESET if
 * messages it sent were left unread (in %IPCSOCK_WIRE_LIBCAMERA mode the
 * peer learns of the close only when it sends: -ECONNREFUSED). No hangup callback of @sock runs; its
 * callbacks stay set for the next binding.
 *
 * Context: The loop's thread, also from the socket's own callbacks. On a
 * loop with its own io_uring, waits one kernel round trip for the channel's
 * buffers.
 */
IPCSOCK_API void ipcsock_close(struct ipcsock *sock);

/**
 * ipcsock_is_bound() - whether a handle is bound to a channel
 * @sock: the handle
 *
 * A handle whose channel has ended stays bound until it is closed.
 *
 * Context: The loop's thread.
 * Return: true if @sock is bound, false if not or NULL.
 */
IPCSOCK_API bool ipcsock_is_bound(const struct ipcsock *sock);

/**
 * ipcsock_send() - queue one message
 * @sock: a bound handle
 * @payload: the message; the caller may reuse its memory and close its
 *	descriptors as soon as the call returns
 *
 * Never blocks and never raises SIGPIPE. Success means queued, not
 * delivered. Messages still in the library's send queue when the channel
 * ends are dropped, also when the peer closed in order: the hangup
 * callback then still gets 0; ipcsock_get_stats()'s @tx_dropped counts
 * them. What went out was taken by the kernel, not necessarily read: only
 * the peer can tell what arrived.
 * A peer's close the loop has not yet seen: a message the call hands to
 * the kernel itself (nothing queued before it) is refused, and the call
 * returns -EPIPE at once; one it queues (behind back-pressure, or always
 * with %IPCSOCK_LOOP_RING_SENDS) returns 0 and is dropped. Either way
 * nothing arrives, the hangup callback runs, and every send after it
 * returns -EPIPE.
 *
 * Context: The loop's thread, also from callbacks.
 * Return: 0, or a negative errno; nothing is queued on failure: -EINVAL,
 * -ENOTCONN, -ECHILD (a loop inherited over fork()), -EMSGSIZE, -EPIPE
 * once the channel has ended, -ETOOMANYREFS
 * (the channel stays usable), -ENOBUFS with the send queue full, -EBADF,
 * -EMFILE, -ENOMEM.
 */
IPCSOCK_API int ipcsock_send(struct ipcsock *sock,
			     const struct ipcsock_payload *payload);

/**
 * ipcsock_send_batch() - queue several messages, all or none
 * @sock: a bound handle
 * @payloads: the messages, in order
 * @count: how many, at least 1
 *
 * As ipcsock_send(); every message is checked before any is queued.
 *
 * Context: The loop's thread, also from callbacks.
 * Return: @count, or a negative errno as for ipcsock_send(), -ENOBUFS if
 * the send queue has room for fewer than @count. An error after the head
 * of the batch reached the kernel fails the channel too.
 */
IPCSOCK_API int ipcsock_send_batch(struct ipcsock *sock,
				   const struct ipcsock_payload *payloads,
				   unsigned int count);

/**
 * ipcsock_receive() - take the oldest message received
 * @sock: a bound handle
 * @payload: filled in with a view of the message (see &struct
 *	ipcsock_payload): the descriptors are the caller's to close, the
 *	memory behind @payload->data and @payload->fds the library's, valid
 *	until the next receive, close or free of @sock
 *
 * Context: The loop's thread, usually from the ready_read callback until it
 * returns -EAGAIN.
 * Return: 0, or a negative errno: -EAGAIN when no message is waiting,
 * -EINVAL, -ENOTCONN.
 */
IPCSOCK_API int ipcsock_receive(struct ipcsock *sock,
				struct ipcsock_payload *payload);

/**
 * ipcsock_set_ready_read() - set the callback for received messages
 * @sock: the handle, or NULL (then nothing happens)
 * @fn: the callback, or NULL to remove it
 * @arg: passed to @fn
 *
 * Set while messages are waiting, it runs on the next dispatch. It stays
 * set across close and a new bind.
 *
 * Context: The loop's thread, also from callbacks.
 */
IPCSOCK_API void ipcsock_set_ready_read(struct ipcsock *sock,
					ipcsock_ready_read_fn fn, void *arg);

/**
 * ipcsock_set_hangup() - set the callback for the end of the channel
 * @sock: the handle, or NULL (then nothing happens)
 * @fn: the callback, or NULL to remove it
 * @arg: passed to @fn
 *
 * An end that came while no hangup callback was set is reported to the
 * first one set later, on the next dispatch. It stays set across close and
 * a new bind.
 *
 * Context: The loop's thread, also from callbacks.
 */
IPCSOCK_API void ipcsock_set_hangup(struct ipcsock *sock,
				    ipcsock_hangup_fn fn, void *arg);

/**
 * ipcsock_watch_pidfd() - end the channel when the peer's process exits
 * @sock: a bound handle
 * @pidfd: a pidfd of the peer process, from pidfd_open(2) or
 *	clone3(CLONE_PIDFD); the library keeps a duplicate of its own, the
 *	caller's stays the caller's
 *
 * When the process exits, the channel ends without waiting for the kernel
 * to close the peer's socket (a process that ran io_uring keeps it open
 * for milliseconds after death; a datagram socket reports no hang-up at
 * all): every message already in the socket becomes receivable first,
 * then the hangup callback runs with -ESRCH. If the socket's end of file
 * is seen before the exit, the hangup is reported as without the watch (0
 * or -ECONNRESET). A socketpair cannot name its peer itself: SO_PEERPIDFD
 * names the process that created the pair, not the one its other end was
 * passed to. One watch per channel; it ends with the channel.
 *
 * Context: The loop's thread, also from callbacks.
 * Return: 0, or a negative errno: -EINVAL, -ENOTCONN, -ECHILD, -EBUSY (a
 * pidfd is already watched), -EBADF (@pidfd is not a pidfd), -EPIPE (the
 * channel has ended), -EMFILE, -ENOMEM.
 */
IPCSOCK_API int ipcsock_watch_pidfd(struct ipcsock *sock, int pidfd);

/**
 * struct ipcsock_stats - what a channel has done, ipcsock_get_stats()
 * @tx_msgs: messages ipcsock_send() and ipcsock_send_batch() accepted
 * @tx_bytes: their payload bytes
 * @tx_fds: their descriptors
 * @tx_datagrams: datagrams the kernel took from this end: the messages
 *	that went out (two each in %IPCSOCK_WIRE_LIBCAMERA mode), and the
 *	notice that closing dropped unread messages (ipcsock_close(3));
 *	messages still queued are not in it yet
 * @tx_direct: messages that went straight to the kernel during the send
 *	call, never queued
 * @tx_queued: messages copied into the send queue, to go out later
 * @tx_ring: datagrams of the send queue the kernel took as io_uring
 *	SENDMSG operations (%IPCSOCK_LOOP_RING_SENDS); without that flag the
 *	queue drains with sendmmsg(2) when the socket has room
 * @tx_nobufs: send calls refused with -ENOBUFS, the send queue full
 * @tx_queue_max: the most messages the send queue held at once
 * @rx_msgs: messages received and checked, ready for ipcsock_receive()
 * @rx_bytes: their payload bytes
 * @rx_fds: their descriptors
 * @rx_datagrams: datagrams read from the socket (two a message in
 *	%IPCSOCK_WIRE_LIBCAMERA mode), whether they became messages, notices
 *	of the peer's or protocol errors; not the end of file
 * @rx_bufs: receive buffers holding a message now: those waiting for
 *	ipcsock_receive() and the one it handed out last
 * @rx_bufs_max: the most receive buffers that ever held a message at once;
 *	when it reaches the loop's recv_buffers (fewer for records, see
 *	&struct ipcsock_loop_opts), the peer was throttled
 * @ended: 1 once the channel has ended (its hangup is due or was
 *	reported), else 0
 * @hangup_err: when @ended, the error the hangup callback gets (0, or a
 *	negative errno), else 0
 * @tx_records: of @tx_datagrams, the records: datagrams that carried
 *	several messages at once. Messages ready together (a batch, those
 *	queued while the socket was full, all but the first that callbacks
 *	send in one dispatch) go out packed into records, as many as one
 *	datagram takes; @tx_msgs / @tx_datagrams is the packing
 * @rx_records: of @rx_datagrams, the records
 * @tx_dropped: of @tx_msgs, those given up on while still queued: the
 *	peer went away or sending failed before they could go
 *	(ipcsock_send(3), hangup); @tx_msgs - @tx_dropped - what is still
 *	queued is what went out
 *
 * The counters are those of the socket's current binding: ipcsock_bind()
 * and ipcsock_create() start them at zero, and ipcsock_close() ends them.
 * Fields may be added at the end in later versions; ipcsock_get_stats()
 * takes the size of the caller's structure.
 */
struct ipcsock_stats {
	uint64_t tx_msgs;
	uint64_t tx_bytes;
	uint64_t tx_fds;
	uint64_t tx_datagrams;
	uint64_t tx_direct;
	uint64_t tx_queued;
	uint64_t tx_ring;
	uint64_t tx_nobufs;
	uint64_t tx_queue_max;
	uint64_t rx_msgs;
	uint64_t rx_bytes;
	uint64_t rx_fds;
	uint64_t rx_datagrams;
	uint64_t rx_bufs;
	uint64_t rx_bufs_max;
	uint32_t ended;
	int32_t hangup_err;
	uint64_t tx_records;
	uint64_t rx_records;
	uint64_t tx_dropped;
};

/**
 * ipcsock_get_stats() - read the counters of a socket's channel
 * @sock: a bound handle
 * @st: where to write them
 * @sz: sizeof(*@st) as the caller's header has it
 *
 * Fills the first @sz bytes of @st. A caller built against an older
 * header, with a smaller structure, gets the fields it knows; one built
 * against a newer header, with a larger structure, gets the fields this
 * library knows and zeroes after them, and learns from the return value
 * where they start. Counting is a few plain increments on paths the
 * library takes anyway; it is always on.
 *
 * Context: The loop's thread, also from callbacks, including the hangup
 * callback (an ended channel stays bound until closed).
 * Return: The bytes of @st this library filled in, min(@sz, its own
 * sizeof(struct ipcsock_stats)), or a negative errno: -EINVAL (@sock or
 * @st NULL, @sz smaller than one counter), -ENOTCONN (not bound), -ECHILD
 * (a loop inherited over fork()).
 */
IPCSOCK_API int ipcsock_get_stats(const struct ipcsock *sock,
				  struct ipcsock_stats *st, size_t sz);

/**
 * struct ipcsock_loop_stats - how a loop waited, ipcsock_loop_get_stats()
 * @waits: waits of ipcsock_loop_dispatch() that could sleep (a timeout
 *	other than 0, nothing due yet); none on a shared ring
 * @spins: of them, those that polled for completions first (busy_poll_us
 *	or %IPCSOCK_LOOP_ADAPTIVE_WAIT)
 * @spin_hits: polls that a completion ended, so the wait did not sleep,
 *	and that made a callback due (the loop's own completions, such as a
 *	ring send's, end a poll but are no hit)
 * @spin_ns: nanoseconds spent polling, hits and misses
 * @sleeps: waits that slept in the kernel
 * @ttc_ns: %IPCSOCK_LOOP_ADAPTIVE_WAIT: the moving average of the time
 *	from entering a wait to the hit that ended its poll (a poll
 *	that found nothing counts as twice its length), which sets the
 *	poll budget; 0 without the flag
 *
 * Fields may be added at the end in later versions, as to &struct
 * ipcsock_stats.
 */
struct ipcsock_loop_stats {
	uint64_t waits;
	uint64_t spins;
	uint64_t spin_hits;
	uint64_t spin_ns;
	uint64_t sleeps;
	uint64_t ttc_ns;
};

/**
 * ipcsock_loop_get_stats() - read how a loop waited
 * @loop: the loop
 * @st: where to write the counters
 * @sz: sizeof(*@st) as the caller's header has it
 *
 * Sizes work as in ipcsock_get_stats(). The counters start at zero when
 * the loop is made.
 *
 * Context: The loop's thread, also from callbacks.
 * Return: The bytes of @st this library filled in, or a negative errno:
 * -EINVAL (@loop or @st NULL, @sz smaller than one counter), -ECHILD (a
 * loop inherited over fork()).
 */
IPCSOCK_API int ipcsock_loop_get_stats(const struct ipcsock_loop *loop,
				       struct ipcsock_loop_stats *st,
				       size_t sz);

#ifdef __cplusplus
}
#endif

#endif /* IPCSOCK_H */
