// SPDX-License-Identifier: MIT
/*
 * fuzz-peer - a libFuzzer harness that plays a hostile peer.
 *
 * Each input is one conversation. The harness binds a library socket to
 * one end of a fresh AF_UNIX SOCK_SEQPACKET pair and keeps the other end
 * raw: from it, it sends whatever datagrams the input describes (valid
 * messages, broken headers, short and zero-length datagrams, up to the
 * kernel's size limit, 0-255 fds of every kind including both ends of the
 * channel itself, bursts, fds the receiver cannot install because its
 * RLIMIT_NOFILE was lowered, peer shutdown and close), and it drives the
 * library's loop between them. It also calls the send side with arguments
 * from the input (bad lengths, fd counts, bad fds, NULLs) and reads what
 * the library sends back.
 *
 * The harness keeps a model of what it sent and checks, after every input
 * (abort() on any violation, which libFuzzer reports as a crash):
 *  - every message delivered is exactly one the harness sent whole and
 *    valid, in order: bytes, fd count, the identity (st_dev, st_ino) of
 *    each fd, FD_CLOEXEC on each;
 *  - a broken datagram, or one whose fds did not all arrive, is never
 *    delivered: the channel fails through hangup with err < 0 once the
 *    messages before it are receivable, and nothing after it is delivered
 *    (one exception, see reads_like_eof(): a zero-length datagram that
 *    nothing with bytes follows before the peer closes is end of file);
 *  - an orderly close gives hangup(0), or -ECONNRESET when the library's
 *    messages were left unread; no hangup without a reason, none twice,
 *    none after a local close; ready_read only with a message pending;
 *  - send and send_batch return what the documented checks say, and what
 *    they queue reaches the peer whole and in order;
 *  - after teardown the loop is idle and the process has exactly the
 *    descriptors it had before the input (/proc/self/fd).
 *
 * The loops (io_uring sending directly or always on the ring, and epoll;
 * each with default and with small options) and a pool of files to pass
 * live across inputs; the socket pair and the library socket are new for
 * every input, and everything of theirs is gone at its end.
 *
 * Input format: byte 0 is the configuration (see enum fz_conf), then
 * operations, each one byte (low 4 bits: operation, high 4 bits: its
 * argument) followed by the bytes that operation reads. Reads past the end
 * give 0. "fuzz-peer -seed=DIR" writes the seed corpus to DIR and exits.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "ipcsock.h"

/* The wire format, written out again here rather than taken from lib/. */
struct fz_wire_hdr {
	uint32_t len;
	uint16_t nr_fds;
	uint8_t version;
	uint8_t flags;
};

_Static_assert(sizeof(struct fz_wire_hdr) == 8, "wire header is 8 bytes");

#define FZ_WIRE_VERSION		1
#define FZ_HDR			sizeof(struct fz_wire_hdr)

/* More than SCM_MAX_FD: the kernel must refuse those. */
#define FZ_PEER_MAX_FDS		255
#define FZ_MAX_SENT		1024
#define FZ_MAX_LIB_SENT		1024
#define FZ_MAX_BATCH		7
/* Largest datagram the peer sends, once its SO_SNDBUF is raised. */
#define FZ_BIG_SNDBUF		(512u * 1024)
#define FZ_TXBUF_LEN		(2 * FZ_BIG_SNDBUF)
/* Small loops: few buffers and slots, so that throttling is cheap. */
#define FZ_SMALL_MSG		4096u
#define FZ_SMALL_QUEUE		4u
#define FZ_SMALL_BUFFERS	4u
/*
 * How long a conversation may take to settle before it counts as stuck:
 * milliseconds normally, seconds on a loaded machine.
 */
#define FZ_SETTLE_MS		10000
#define FZ_IDLE_MS		10000
/* Dispatches a peer send waits for room before it gives up. */
#define FZ_SEND_RETRIES		16
/* SO_SNDBUF of the library's end for CONF_TIGHT: it fills after a few. */
#define FZ_TIGHT_SNDBUF		4096
/* An fd number that is never open (below the usual RLIMIT_NOFILE). */
#define FZ_UNUSED_FD		19999

enum fz_op {
	OP_SEND,		/* one datagram, see op_send() */
	OP_BURST,		/* valid datagrams without dispatch between */
	OP_DISPATCH,		/* arg + 1 dispatches, 0 timeout */
	OP_RECV,		/* ipcsock_receive() up to arg + 1 times */
	OP_LIB_SEND,		/* send / send_batch, see op_lib_send() */
	OP_DRAIN,		/* the peer reads up to arg + 1 datagrams */
	OP_PEER_CLOSE,		/* arg & 1: shutdown(SHUT_WR), else close */
	OP_NOFILE,		/* one datagram while RLIMIT_NOFILE is low */
	OP_SNDBUF,		/* raise the peer's SO_SNDBUF */
	OP_FLAGS,		/* callback behaviour, see op_flags() */
	OP_LOCAL_CLOSE,		/* arg & 1: ipcsock_free, else ipcsock_close */
	NR_OPS
};

/* Byte 0 of an input. */
enum fz_conf {
	CONF_BACKEND	= 3 << 0,	/* enum fz_backend */
	CONF_SMALL	= 1 << 2,	/* small loop options */
	CONF_CONSUMER	= 3 << 3,	/* enum fz_consumer */
	CONF_NO_DRAIN	= 1 << 5,	/* free without settling first */
	CONF_TIGHT	= 1 << 6,	/* small SO_SNDBUF on the library's end */
	CONF_PER_CALL3	= 1 << 7,	/* 3 messages per callback, not 1 */
};

enum fz_backend {
	BE_URING,		/* io_uring, direct sends when nothing waits */
	BE_EPOLL,
	BE_URING_RING,		/* io_uring, IPCSOCK_LOOP_RING_SENDS */
	NR_BE,
};

enum fz_consumer {
	CONSUMER_ALL,		/* ready_read receives everything */
	CONSUMER_SOME,		/* ready_read receives at most per_call */
	CONSUMER_MANUAL,	/* no ready_read: OP_RECV only */
	CONSUMER_LAZY,		/* every other ready_read receives nothing */
};

/* Files the harness passes around; the last four are per input. */
enum fz_pool {
	POOL_MEMFD_A,
	POOL_MEMFD_B,
	POOL_PIPE_R,
	POOL_PIPE_W,
	POOL_SOCK_A,		/* another socket pair */
	POOL_SOCK_B,
	POOL_EVENTFD,
	POOL_DEVNULL,
	POOL_LOOP,		/* ipcsock_loop_fd() of the loop in use */
	POOL_LIB,		/* the library's end of the channel */
	POOL_LIB_DUP,		/* a dup of it, the harness's */
	POOL_REMOTE,		/* the peer's own end */
	NR_POOL
};

enum fz_status {
	DG_VALID,		/* must be delivered */
	DG_MAYBE,		/* valid, but its fds may not all arrive */
	DG_INVALID,		/* must never be delivered */
};

/* One datagram the peer sent, or one message the library sent. */
struct fz_msg {
	uint8_t status;
	uint8_t seed;		/* payload bytes are pattern(seed, i) */
	bool empty;		/* no bytes at all: reads like EOF */
	uint16_t nr_fds;
	uint32_t len;		/* payload bytes after the header */
	uint8_t fds[FZ_PEER_MAX_FDS];	/* pool indices */
};

struct fz_file {
	int fd;
	dev_t dev;
	ino_t ino;
};

struct fz_loop {
	struct ipcsock_loop *loop;
	struct ipcsock *unbound;	/* never bound: -ENOTCONN */
	unsigned int max_msg;
	unsigned int queue_len;
	int fd;
	const char *name;
};

struct fz {
	struct fz_loop *fl;
	struct ipcsock *sock;		/* NULL once freed */
	int remote;			/* -1 once closed */
	int lib_dup;
	int kmax;			/* largest datagram the peer can send */

	unsigned int consumer;
	unsigned int per_call;
	unsigned int ready_calls;
	bool drain;

	/* Behaviour set by OP_FLAGS. */
	bool close_in_hangup;
	bool echo;
	unsigned int close_at;		/* close when this many delivered */
	bool close_free;

	/* Peer -> library. */
	unsigned int nr_sent;
	unsigned int delivered;
	bool broken_sent;		/* an invalid or maybe datagram went */
	bool remote_in_flight;		/* the peer sent its own end */
	bool remote_closed;
	bool remote_shut;
	bool must_reset;		/* closed with our reads pending */
	bool nofile_low;
	struct rlimit nofile;

	/* Library -> peer. */
	unsigned int lib_sent;
	unsigned int lib_read;
	bool lib_eof;

	/* What happened. */
	unsigned int hup_calls;
	int hup_err;
	unsigned int hup_unread;	/* lib_sent - lib_read at hangup */
	bool lib_closed;
};

static struct fz_loop fz_loops[NR_BE][2];
static struct fz_file pool[NR_POOL];
static struct fz_msg sent[FZ_MAX_SENT];
static struct fz_msg lib_sent[FZ_MAX_LIB_SENT];
static struct fz *cur;
static uint8_t *txbuf;		/* datagrams the peer sends */
static uint8_t *rxbuf;		/* datagrams the peer receives */
static size_t rxbuf_len;
static int fd_baseline;
static bool verbose;		/* IPCSOCK_FUZZ_VERBOSE=1: state per input */

/* ------------------------------------------------------------------ */
/* Small helpers */

struct fz_in {
	const uint8_t *p;
	size_t n;
};

static unsigned int in_u8(struct fz_in *in)
{
	if (!in->n)
		return 0;
	in->n--;
	return *in->p++;
}

static unsigned int in_u16(struct fz_in *in)
{
	unsigned int v = in_u8(in);

	return v | in_u8(in) << 8;
}

static unsigned int in_u24(struct fz_in *in)
{
	unsigned int v = in_u16(in);

	return v | in_u8(in) << 16;
}

static uint8_t pattern(unsigned int seed, size_t i)
{
	return seed * 37 + i * 11 + (i >> 9);
}

static void fill_pattern(uint8_t *buf, size_t len, unsigned int seed)
{
	size_t i;

	for (i = 0; i < len; i++)
		buf[i] = pattern(seed, i);
}

static bool check_pattern(const uint8_t *buf, size_t len, unsigned int seed)
{
	size_t i;

	for (i = 0; i < len; i++)
		if (buf[i] != pattern(seed, i))
			return false;
	return true;
}

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int count_fds(void)
{
	struct dirent *de;
	DIR *dir;
	int n = 0;

	dir = opendir("/proc/self/fd");
	if (!dir)
		return -1;
	while ((de = readdir(dir)))
		if (de->d_name[0] != '.')
			n++;
	closedir(dir);
	return n - 1;
}

static void dump_fds(void)
{
	char path[64], target[256];
	struct dirent *de;
	ssize_t n;
	DIR *dir;

	dir = opendir("/proc/self/fd");
	if (!dir)
		return;
	while ((de = readdir(dir))) {
		if (de->d_name[0] == '.' || atoi(de->d_name) == dirfd(dir))
			continue;
		snprintf(path, sizeof(path), "/proc/self/fd/%s", de->d_name);
		n = readlink(path, target, sizeof(target) - 1);
		target[n < 0 ? 0 : n] = '\0';
		fprintf(stderr, "fuzz-peer:   fd %s -> %s\n", de->d_name, target);
	}
	closedir(dir);
}

static void fz_state(const struct fz *fz)
{
	fprintf(stderr,
		"fuzz-peer: state: backend %s, sent %u, delivered %u, broken %d, remote %s, hangup %u (err %d), lib sent %u read %u, local close %d\n",
		fz->fl->name, fz->nr_sent, fz->delivered, fz->broken_sent,
		fz->remote_closed ? "closed" : fz->remote_shut ? "shut" : "open",
		fz->hup_calls, fz->hup_err, fz->lib_sent, fz->lib_read,
		fz->lib_closed);
}

__attribute__((format(printf, 1, 2), noreturn))
static void fz_fail(const char *fmt, ...)
{
	va_list ap;

	if (cur && cur->nofile_low)
		setrlimit(RLIMIT_NOFILE, &cur->nofile);
	fprintf(stderr, "fuzz-peer: invariant violated: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	if (cur)
		fz_state(cur);
	abort();
}

static void file_id(struct fz_file *f)
{
	struct stat st;

	if (fstat(f->fd, &st))
		fz_fail("fstat(%d) of a pool file: %s", f->fd, strerror(errno));
	f->dev = st.st_dev;
	f->ino = st.st_ino;
}

/* The pool index to send: ends that are gone stand in for something else. */
static unsigned int pool_pick(const struct fz *fz, unsigned int v)
{
	unsigned int i = v % NR_POOL;

	if (i == POOL_LIB && fz->lib_closed)
		i = POOL_LIB_DUP;
	if (i == POOL_REMOTE && fz->remote_closed)
		i = POOL_MEMFD_A;
	return i;
}

/*
 * nr pool indices: one byte each for a few, else one byte seeding a
 * sequence (repeats included: one file may travel many times).
 */
static void pick_fds(struct fz *fz, struct fz_in *in, unsigned int nr,
		     uint8_t *idx)
{
	unsigned int i, s;

	if (nr <= 4) {
		for (i = 0; i < nr; i++)
			idx[i] = pool_pick(fz, in_u8(in));
		return;
	}
	s = in_u8(in);
	for (i = 0; i < nr; i++)
		idx[i] = pool_pick(fz, s + i * (s | 1) + (i * i >> 3));
}

/* libFuzzer's -timeout alarm (SIGALRM) may end a wait with -EINTR. */
static void loop_dispatch(struct ipcsock_loop *loop, int timeout_ms)
{
	int ret = ipcsock_loop_dispatch(loop, timeout_ms);

	if (ret < 0 && ret != -EINTR)
		fz_fail("ipcsock_loop_dispatch: %d", ret);
}

static void fz_dispatch(struct fz *fz, int timeout_ms)
{
	loop_dispatch(fz->fl->loop, timeout_ms);
}

/* ------------------------------------------------------------------ */
/* The library's side: callbacks and what they receive */

static void fz_local_close(struct fz *fz, bool do_free)
{
	fz->lib_closed = true;
	if (do_free) {
		ipcsock_free(fz->sock);
		fz->sock = NULL;
	} else {
		ipcsock_close(fz->sock);
	}
}

/* One delivered message: exactly the next one the peer sent, whole. */
static void check_delivery(struct fz *fz, const struct ipcsock_payload *p)
{
	unsigned int idx = fz->delivered, i;
	const struct fz_msg *m;
	struct stat st;
	int fl;

	if (idx >= fz->nr_sent)
		fz_fail("message %u delivered, but only %u sent", idx,
			fz->nr_sent);
	m = &sent[idx];
	if (m->status == DG_INVALID)
		fz_fail("datagram %u is broken but was delivered", idx);
	if (p->len != m->len || p->nr_fds != m->nr_fds)
		fz_fail("message %u: %zu bytes %u fds, sent %u bytes %u fds",
			idx, p->len, p->nr_fds, m->len, m->nr_fds);
	if ((p->len && !p->data) || (p->nr_fds && !p->fds))
		fz_fail("message %u: NULL data or fds", idx);
	if (!check_pattern(p->data, p->len, m->seed))
		fz_fail("message %u: bytes differ from those sent", idx);
	for (i = 0; i < p->nr_fds; i++) {
		const struct fz_file *f = &pool[m->fds[i]];

		if (fstat(p->fds[i], &st))
			fz_fail("message %u fd %u (%d): %s", idx, i, p->fds[i],
				strerror(errno));
		if (st.st_dev != f->dev || st.st_ino != f->ino)
			fz_fail("message %u fd %u is not the file sent (pool %u)",
				idx, i, m->fds[i]);
		fl = fcntl(p->fds[i], F_GETFD);
		if (fl < 0 || !(fl & FD_CLOEXEC))
			fz_fail("message %u fd %u without FD_CLOEXEC", idx, i);
	}
	for (i = 0; i < p->nr_fds; i++)
		close(p->fds[i]);
	fz->delivered++;
}

/* Sent from the library: bytes and fds the peer must read in order. */
static void lib_record(struct fz *fz, const struct ipcsock_payload *p,
		       unsigned int seed, const uint8_t *idx)
{
	struct fz_msg *m = &lib_sent[fz->lib_sent++];

	m->status = DG_VALID;
	m->seed = seed;
	m->len = p->len;
	m->nr_fds = p->nr_fds;
	if (p->nr_fds)
		memcpy(m->fds, idx, p->nr_fds);
}

/*
 * What a send of @count messages may return besides success or the
 * argument errors: -EPIPE once the channel may have ended (and only that
 * after hangup), -ENOBUFS only if the queue may really be full.
 */
static bool send_state_ok(const struct fz *fz, int ret, unsigned int count)
{
	bool may_end = fz->hup_calls || fz->broken_sent || fz->remote_closed ||
		       fz->remote_shut;
	unsigned int unread = fz->lib_sent - fz->lib_read;

	if (ret == -EPIPE)
		return may_end;
	if (fz->hup_calls)
		return false;
	if (ret == -ENOBUFS)
		return count + unread > fz->fl->queue_len;
	return false;
}

/* A reply from inside ready_read: goes out when dispatch returns. */
static void fz_echo(struct fz *fz, size_t len)
{
	static uint8_t buf[32];
	uint8_t idx = POOL_MEMFD_B;
	int fd = pool[POOL_MEMFD_B].fd;
	struct ipcsock_payload p = {
		.data = buf,
		.len = len > 32 ? 32 : len,
		.fds = &fd,
		.nr_fds = len & 1,
	};
	unsigned int seed = 0xe0 + fz->lib_sent;
	int ret;

	/* Its fd would not dup while RLIMIT_NOFILE is low. */
	if (fz->lib_sent >= FZ_MAX_LIB_SENT || fz->nofile_low)
		return;
	if (!p.len && !p.nr_fds)
		p.len = 1;
	fill_pattern(buf, p.len, seed);
	ret = ipcsock_send(fz->sock, &p);
	if (!ret && fz->hup_calls)
		fz_fail("send from ready_read succeeded after hangup");
	if (!ret)
		lib_record(fz, &p, seed, &idx);
	else if (!send_state_ok(fz, ret, 1))
		fz_fail("send from ready_read: %d", ret);
}

static int recv_one(struct fz *fz)
{
	struct ipcsock_payload p;
	int ret;

	if (!fz->sock)
		return -ENOTCONN;
	ret = ipcsock_receive(fz->sock, &p);
	if (ret == -EAGAIN)
		return ret;
	if (ret == -ENOTCONN && fz->lib_closed)
		return ret;
	if (ret)
		fz_fail("ipcsock_receive: %d", ret);
	check_delivery(fz, &p);
	if (fz->echo && !fz->lib_closed)
		fz_echo(fz, p.len);
	return 0;
}

static void on_ready(struct ipcsock *sock, void *arg)
{
	struct fz *fz = arg;
	unsigned int n, max = 0;

	if (sock != fz->sock || fz->lib_closed)
		fz_fail("ready_read on a socket that is closed");
	fz->ready_calls++;
	if (fz->consumer == CONSUMER_SOME)
		max = fz->per_call;
	if (fz->consumer == CONSUMER_LAZY) {
		if (fz->ready_calls & 1)
			return;
		max = fz->per_call;
	}
	for (n = 0; !max || n < max; n++) {
		if (recv_one(fz)) {
			if (!n)
				fz_fail("ready_read with no message pending");
			break;
		}
		if (fz->delivered == fz->close_at) {
			fz_local_close(fz, fz->close_free);
			break;
		}
	}
}

static void on_hangup(struct ipcsock *sock, int err, void *arg)
{
	struct fz *fz = arg;

	if (sock != fz->sock || fz->lib_closed)
		fz_fail("hangup on a socket that is closed");
	if (++fz->hup_calls > 1)
		fz_fail("hangup ran twice (now err %d)", err);
	if (err > 0)
		fz_fail("hangup with err %d > 0", err);
	fz->hup_err = err;
	fz->hup_unread = fz->lib_sent - fz->lib_read;
	if (fz->close_in_hangup)
		fz_local_close(fz, false);
}

/* ------------------------------------------------------------------ */
/* The peer's side */

static bool dgram_valid(const struct fz *fz, const uint8_t *buf, size_t dlen,
			unsigned int nr_fds)
{
	struct fz_wire_hdr h;

	if (dlen < FZ_HDR)
		return false;
	memcpy(&h, buf, sizeof(h));
	return h.version == FZ_WIRE_VERSION && !h.flags &&
	       h.len == dlen - FZ_HDR && h.nr_fds == nr_fds &&
	       nr_fds <= IPCSOCK_MAX_FDS && h.len <= fz->fl->max_msg;
}

/* sendmsg from the raw end, giving the library room while it is full. */
static int peer_sendmsg(struct fz *fz, const void *buf, size_t len,
			const uint8_t *idx, unsigned int nr_fds, bool creds)
{
	static union {
		char buf[CMSG_SPACE(FZ_PEER_MAX_FDS * sizeof(int)) +
			 CMSG_SPACE(sizeof(struct ucred))];
		struct cmsghdr align;
	} ctrl;
	struct iovec iov = { .iov_base = (void *)buf, .iov_len = len };
	struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1 };
	struct cmsghdr *cmsg;
	unsigned int i, tries;
	size_t clen = 0;
	int *fds;

	memset(ctrl.buf, 0, sizeof(ctrl.buf));
	msg.msg_control = ctrl.buf;
	msg.msg_controllen = sizeof(ctrl.buf);
	cmsg = CMSG_FIRSTHDR(&msg);
	if (creds) {
		struct ucred uc = {
			.pid = getpid(),
			.uid = getuid(),
			.gid = getgid(),
		};

		cmsg->cmsg_level = SOL_SOCKET;
		cmsg->cmsg_type = SCM_CREDENTIALS;
		cmsg->cmsg_len = CMSG_LEN(sizeof(uc));
		memcpy(CMSG_DATA(cmsg), &uc, sizeof(uc));
		clen += CMSG_SPACE(sizeof(uc));
		cmsg = (struct cmsghdr *)(ctrl.buf + clen);
	}
	if (nr_fds) {
		cmsg->cmsg_level = SOL_SOCKET;
		cmsg->cmsg_type = SCM_RIGHTS;
		cmsg->cmsg_len = CMSG_LEN(nr_fds * sizeof(int));
		fds = (int *)CMSG_DATA(cmsg);
		for (i = 0; i < nr_fds; i++)
			fds[i] = pool[idx[i]].fd;
		clen += CMSG_SPACE(nr_fds * sizeof(int));
	}
	msg.msg_controllen = clen;
	if (!clen)
		msg.msg_control = NULL;
	for (tries = 0; ; tries++) {
		if (sendmsg(fz->remote, &msg, MSG_DONTWAIT | MSG_NOSIGNAL) >= 0)
			return 0;
		if (errno != EAGAIN || tries >= FZ_SEND_RETRIES ||
		    (fz->broken_sent && tries >= 2))
			return -errno;
		fz_dispatch(fz, tries >= 12);
	}
}

static void peer_record(struct fz *fz, size_t dlen, uint8_t seed,
			const uint8_t *idx, unsigned int nr_fds, bool maybe)
{
	struct fz_msg *m = &sent[fz->nr_sent++];
	unsigned int i;

	m->status = dgram_valid(fz, txbuf, dlen, nr_fds) ?
		    (maybe && nr_fds ? DG_MAYBE : DG_VALID) : DG_INVALID;
	m->seed = seed;
	m->empty = !dlen;
	m->len = dlen >= FZ_HDR ? dlen - FZ_HDR : 0;
	m->nr_fds = nr_fds;
	memcpy(m->fds, idx, nr_fds);
	if (m->status != DG_VALID)
		fz->broken_sent = true;
	for (i = 0; i < nr_fds; i++)
		if (idx[i] == POOL_REMOTE)
			fz->remote_in_flight = true;
}

static bool peer_can_send(const struct fz *fz)
{
	return !fz->remote_closed && !fz->remote_shut &&
	       fz->nr_sent < FZ_MAX_SENT;
}

/*
 * OP_SEND: [a] [size: 1-3 bytes by class] [fd count: 0-1 byte by class]
 * [fd picks] [seed] [header bytes, for a raw, perturbed or short header].
 *   a bits 0-1: header: correct, 8 raw bytes, one field off, none (< 8
 *               raw bytes in all)
 *   a bits 2-3: payload size: 0-15, 0-255, 0-(max_msg_size + 16), up to
 *               the kernel's limit for the peer's socket
 *   a bits 4-5: fds: none, 1-4, 0-255 (from a byte), 253
 *   a bit 6:    an SCM_CREDENTIALS message too
 */
static void op_send(struct fz *fz, struct fz_in *in, bool maybe)
{
	unsigned int a = in_u8(in), nr_fds, seed, b;
	uint8_t idx[FZ_PEER_MAX_FDS];
	struct fz_wire_hdr h;
	size_t size, dlen;
	bool sendable = peer_can_send(fz) && !fz->lib_closed;

	switch ((a >> 2) & 3) {
	case 0:
		size = in_u8(in) & 15;
		break;
	case 1:
		size = in_u8(in);
		break;
	case 2:
		size = in_u16(in) % (fz->fl->max_msg + 17);
		break;
	default:
		size = in_u24(in) % (fz->kmax - FZ_HDR + 1);
		break;
	}
	switch ((a >> 4) & 3) {
	case 0:
		nr_fds = 0;
		break;
	case 1:
		nr_fds = 1 + (in_u8(in) & 3);
		break;
	case 2:
		nr_fds = in_u8(in);
		break;
	default:
		nr_fds = IPCSOCK_MAX_FDS;
		break;
	}
	pick_fds(fz, in, nr_fds, idx);
	seed = in_u8(in);

	h.len = size;
	h.nr_fds = nr_fds;
	h.version = FZ_WIRE_VERSION;
	h.flags = 0;
	dlen = FZ_HDR + size;
	switch (a & 3) {
	case 1:
		for (b = 0; b < FZ_HDR; b++)
			((uint8_t *)&h)[b] = in_u8(in);
		break;
	case 2:
		b = in_u8(in);
		switch (b & 3) {
		case 0:
			h.len += (b >> 2) - 32 ? (b >> 2) - 32 : 1;
			break;
		case 1:
			h.nr_fds += (b >> 2) - 32 ? (b >> 2) - 32 : 1;
			break;
		case 2:
			h.version ^= (b >> 2) | 1;
			break;
		default:
			h.flags = (b >> 2) | 1;
			break;
		}
		break;
	case 3:
		dlen = size & 7;
		for (b = 0; b < dlen; b++)
			txbuf[b] = in_u8(in);
		break;
	}
	if (!sendable)
		return;
	if ((a & 3) != 3) {
		memcpy(txbuf, &h, sizeof(h));
		fill_pattern(txbuf + FZ_HDR, size, seed);
	}
	if (peer_sendmsg(fz, txbuf, dlen, idx, nr_fds, a & 0x40))
		return;
	peer_record(fz, dlen, seed, idx, nr_fds, maybe);
}

/* OP_BURST: [size] [fds] [fd seed]: 2 * (arg + 1) valid datagrams at once. */
static void op_burst(struct fz *fz, struct fz_in *in, unsigned int arg)
{
	unsigned int n = 2 * (arg + 1), size = in_u8(in), i, nr_fds;
	unsigned int f = in_u8(in), s = in_u8(in), j;
	uint8_t idx[8];
	struct fz_wire_hdr h;

	for (i = 0; i < n && peer_can_send(fz) && !fz->lib_closed; i++) {
		nr_fds = (f >> ((i & 3) * 2)) & 3;
		for (j = 0; j < nr_fds; j++)
			idx[j] = pool_pick(fz, s + i * 5 + j);
		h.len = (size + i * 3) % (fz->fl->max_msg + 1);
		h.nr_fds = nr_fds;
		h.version = FZ_WIRE_VERSION;
		h.flags = 0;
		memcpy(txbuf, &h, sizeof(h));
		fill_pattern(txbuf + FZ_HDR, h.len, s + i);
		if (peer_sendmsg(fz, txbuf, FZ_HDR + h.len, idx, nr_fds, false))
			return;
		peer_record(fz, FZ_HDR + h.len, s + i, idx, nr_fds, false);
	}
}

/*
 * OP_NOFILE: lower RLIMIT_NOFILE to the lowest free fd + arg, so that the
 * library can install only a few of the fds that arrive (MSG_CTRUNC),
 * send one datagram (an OP_SEND descriptor follows) and dispatch. What was
 * not yet received when the window opened may be cut as well.
 */
static void op_nofile(struct fz *fz, struct fz_in *in, unsigned int arg)
{
	struct rlimit rl;
	unsigned int i;
	int lowest;

	if (fz->lib_closed || !peer_can_send(fz)) {
		op_send(fz, in, true);
		return;
	}
	for (i = fz->delivered; i < fz->nr_sent; i++) {
		if (sent[i].status == DG_VALID && sent[i].nr_fds) {
			sent[i].status = DG_MAYBE;
			fz->broken_sent = true;
		}
	}
	lowest = fcntl(pool[POOL_MEMFD_A].fd, F_DUPFD_CLOEXEC, 0);
	if (lowest < 0)
		fz_fail("F_DUPFD: %s", strerror(errno));
	close(lowest);
	if (getrlimit(RLIMIT_NOFILE, &fz->nofile))
		fz_fail("getrlimit: %s", strerror(errno));
	rl = fz->nofile;
	rl.rlim_cur = lowest + arg;
	if (setrlimit(RLIMIT_NOFILE, &rl))
		fz_fail("setrlimit: %s", strerror(errno));
	fz->nofile_low = true;
	op_send(fz, in, true);
	for (i = 0; i < 1 + (arg & 3); i++)
		fz_dispatch(fz, 0);
	if (setrlimit(RLIMIT_NOFILE, &fz->nofile))
		fz_fail("setrlimit: %s", strerror(errno));
	fz->nofile_low = false;
}

/* OP_SNDBUF: a larger SO_SNDBUF lets the peer send larger datagrams. */
static void op_sndbuf(struct fz *fz, unsigned int arg)
{
	int val = (arg + 1) * (FZ_BIG_SNDBUF / 16), cur;
	socklen_t len = sizeof(cur);

	if (fz->remote_closed)
		return;
	if (setsockopt(fz->remote, SOL_SOCKET, SO_SNDBUF, &val, sizeof(val)) ||
	    getsockopt(fz->remote, SOL_SOCKET, SO_SNDBUF, &cur, &len))
		fz_fail("SO_SNDBUF: %s", strerror(errno));
	/* AF_UNIX: a datagram may take SO_SNDBUF less 32 bytes. */
	fz->kmax = cur - 32;
	if (fz->kmax > (int)FZ_TXBUF_LEN)
		fz->kmax = FZ_TXBUF_LEN;
}

static void op_peer_close(struct fz *fz, unsigned int arg)
{
	char c;

	if (fz->remote_closed)
		return;
	if (arg & 1) {
		if (!fz->remote_shut && shutdown(fz->remote, SHUT_WR))
			fz_fail("shutdown: %s", strerror(errno));
		fz->remote_shut = true;
		return;
	}
	/* Our unread queue makes the library see -ECONNRESET. */
	if (!fz->remote_shut && !fz->remote_in_flight &&
	    recv(fz->remote, &c, 1, MSG_PEEK | MSG_DONTWAIT) >= 0)
		fz->must_reset = true;
	close(fz->remote);
	fz->remote = -1;
	fz->remote_closed = true;
}

/*
 * The peer reads one datagram the library sent: the next one queued,
 * whole, with the files that were given to send.
 */
static int peer_read_one(struct fz *fz)
{
	static union {
		char buf[CMSG_SPACE(IPCSOCK_MAX_FDS * sizeof(int))];
		struct cmsghdr align;
	} ctrl;
	struct iovec iov = { .iov_base = rxbuf, .iov_len = rxbuf_len };
	struct msghdr msg = {
		.msg_iov = &iov,
		.msg_iovlen = 1,
		.msg_control = ctrl.buf,
		.msg_controllen = sizeof(ctrl.buf),
	};
	const struct fz_msg *m;
	struct cmsghdr *cmsg;
	unsigned int nr = 0, i;
	struct fz_wire_hdr h;
	int *fds = NULL;
	struct stat st;
	ssize_t n;

	if (fz->remote_closed || fz->lib_eof)
		return 0;
	n = recvmsg(fz->remote, &msg, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
	if (n < 0) {
		if (errno == EAGAIN || errno == ECONNRESET)
			return 0;
		fz_fail("peer recvmsg: %s", strerror(errno));
	}
	for (cmsg = CMSG_FIRSTHDR(&msg); cmsg; cmsg = CMSG_NXTHDR(&msg, cmsg)) {
		if (cmsg->cmsg_level != SOL_SOCKET ||
		    cmsg->cmsg_type != SCM_RIGHTS || fds)
			fz_fail("library sent an unexpected control message");
		fds = (int *)CMSG_DATA(cmsg);
		nr = (cmsg->cmsg_len - CMSG_LEN(0)) / sizeof(int);
	}
	if (!n && !nr) {
		if (!fz->lib_closed)
			fz_fail("library sent an empty datagram or hung up");
		fz->lib_eof = true;
		return 0;
	}
	if (msg.msg_flags & (MSG_TRUNC | MSG_CTRUNC))
		fz_fail("library sent a datagram too large: flags %#x",
			msg.msg_flags);
	if (fz->lib_read >= fz->lib_sent)
		fz_fail("library sent a message it was never given");
	m = &lib_sent[fz->lib_read];
	if ((size_t)n < FZ_HDR)
		fz_fail("library sent a %zd-byte datagram", n);
	memcpy(&h, rxbuf, sizeof(h));
	if (h.version != FZ_WIRE_VERSION || h.flags || h.len != n - FZ_HDR ||
	    h.nr_fds != nr)
		fz_fail("library sent a bad header: len %u fds %u v%u flags %u (datagram %zd, %u fds)",
			h.len, h.nr_fds, h.version, h.flags, n, nr);
	if (h.len != m->len || nr != m->nr_fds ||
	    !check_pattern(rxbuf + FZ_HDR, h.len, m->seed))
		fz_fail("library message %u differs from the one given to send",
			fz->lib_read);
	for (i = 0; i < nr; i++) {
		if (fstat(fds[i], &st) || st.st_dev != pool[m->fds[i]].dev ||
		    st.st_ino != pool[m->fds[i]].ino)
			fz_fail("library message %u fd %u is not the file given",
				fz->lib_read, i);
		close(fds[i]);
	}
	fz->lib_read++;
	return 1;
}

/* ------------------------------------------------------------------ */
/* The send side's argument checks */

/* What payload_check() documents for one payload, 0 if it is fine. */
static int payload_err(const struct ipcsock_payload *p, unsigned int max)
{
	if (!p->len && !p->nr_fds)
		return -EINVAL;
	if ((!p->data && p->len) || (!p->fds && p->nr_fds))
		return -EINVAL;
	if (p->nr_fds > IPCSOCK_MAX_FDS)
		return -EINVAL;
	if (p->len > max)
		return -EMSGSIZE;
	return 0;
}

/*
 * OP_LIB_SEND: [a] then per payload [b] [len: 0-2 bytes] [fd count: 0-1
 * byte] [fd picks] [bad fd: 2 bytes].
 *   a bits 0-1: ipcsock_send, send_batch, send_batch(NULL payloads),
 *               the never-bound handle (or NULL with bit 5)
 *   a bits 2-4: batch count (0-7)
 *   a bit 5:    NULL payload / NULL socket
 *   a bit 6:    for the never-bound handle: send rather than send_batch
 *   b bits 0-1: length: 0, 0-255, max_msg_size (+1 with bit 7), 0-65535
 *   b bit 2:    data NULL
 *   b bit 3:    fds NULL
 *   b bits 4-5: fd count: 0, 1-4, 253 or 254 (bit 7), 0-255
 *   b bit 6:    one of the fds is bad
 */
static void op_lib_send(struct fz *fz, struct fz_in *in)
{
	static int fdv[FZ_MAX_BATCH][FZ_PEER_MAX_FDS];
	static uint8_t idx[FZ_MAX_BATCH][FZ_PEER_MAX_FDS];
	struct ipcsock_payload pl[FZ_MAX_BATCH];
	unsigned int a = in_u8(in), how = a & 3, count = (a >> 2) & 7;
	unsigned int nr_pl, i, j, b, seed = in_u8(in);
	bool bad_fd = false, any_err = false;
	size_t max_len = 0;
	int errs[FZ_MAX_BATCH], ret, want_first = 0;
	struct ipcsock *target = fz->sock;
	size_t len;

	nr_pl = how == 0 || (how == 3 && (a & 0x40)) ? 1 : count;
	if (!nr_pl)
		nr_pl = 1;
	memset(pl, 0, sizeof(pl));
	for (i = 0; i < nr_pl; i++) {
		b = in_u8(in);
		switch (b & 3) {
		case 0:
			len = 0;
			break;
		case 1:
			len = in_u8(in);
			break;
		case 2:
			len = fz->fl->max_msg + !!(b & 0x80);
			break;
		default:
			len = in_u16(in);
			break;
		}
		switch ((b >> 4) & 3) {
		case 0:
			pl[i].nr_fds = 0;
			break;
		case 1:
			pl[i].nr_fds = 1 + (in_u8(in) & 3);
			break;
		case 2:
			pl[i].nr_fds = IPCSOCK_MAX_FDS + !!(b & 0x80);
			break;
		default:
			pl[i].nr_fds = in_u8(in);
			break;
		}
		pick_fds(fz, in, pl[i].nr_fds, idx[i]);
		for (j = 0; j < pl[i].nr_fds; j++) {
			/* Its own end in its own queue waits for the unix GC. */
			if (idx[i][j] == POOL_REMOTE)
				idx[i][j] = POOL_MEMFD_A;
			fdv[i][j] = pool[idx[i][j]].fd;
		}
		pl[i].len = len;
		if (len > max_len)
			max_len = len;
		pl[i].data = b & 4 ? NULL : txbuf + FZ_HDR;
		pl[i].fds = b & 8 ? NULL : fdv[i];
		if ((b & 0x40) && pl[i].nr_fds) {
			unsigned int pos = in_u8(in) % pl[i].nr_fds;
			static const int bad[] = { -1, INT_MIN, 1 << 30,
						   FZ_UNUSED_FD, 0 };

			fdv[i][pos] = bad[in_u8(in) % 5];
			if (!fdv[i][pos]) {
				/* The lowest free number: dups will take it. */
				fdv[i][pos] = fcntl(pool[0].fd, F_DUPFD, 0);
				if (fdv[i][pos] < 0)
					fz_fail("F_DUPFD: %s", strerror(errno));
				close(fdv[i][pos]);
			}
			if (pl[i].fds)
				bad_fd = true;
		}
		errs[i] = payload_err(&pl[i], fz->fl->max_msg);
		if (errs[i])
			any_err = true;
	}
	/* Every payload's bytes are the pattern of the seed: one buffer. */
	fill_pattern(txbuf + FZ_HDR, max_len, seed);
	if (fz->lib_sent + nr_pl > FZ_MAX_LIB_SENT)
		return;

	if (how == 3) {
		target = a & 0x20 ? NULL : fz->fl->unbound;
		if (a & 0x40)
			ret = ipcsock_send(target, &pl[0]);
		else
			ret = ipcsock_send_batch(target, pl, count);
		want_first = target ? -ENOTCONN : -EINVAL;
		if (ret != want_first)
			fz_fail("send on %s handle: %d, want %d",
				target ? "an unbound" : "a NULL", ret,
				want_first);
		return;
	}
	if (!fz->sock)
		return;
	if (how == 0)
		ret = ipcsock_send(target, a & 0x20 ? NULL : &pl[0]);
	else if (how == 1)
		ret = ipcsock_send_batch(target, pl, count);
	else
		ret = ipcsock_send_batch(target, NULL, count);

	if (fz->lib_closed)
		want_first = -ENOTCONN;
	else if (how == 2 || (how == 1 && !count) || (how == 0 && (a & 0x20)))
		want_first = -EINVAL;
	if (want_first) {
		if (ret != want_first)
			fz_fail("send: %d, want %d", ret, want_first);
		return;
	}
	if (any_err) {
		/* The checks come first: one of the payloads' errors. */
		for (i = 0; i < nr_pl; i++)
			if (errs[i] && ret == errs[i])
				return;
		fz_fail("send of %u payloads with bad arguments: %d", nr_pl,
			ret);
	}
	if (ret >= 0) {
		if (bad_fd)
			fz_fail("send with a bad fd succeeded: %d", ret);
		if (fz->hup_calls)
			fz_fail("send succeeded after hangup: %d", ret);
		if (ret != (how == 0 ? 0 : (int)nr_pl))
			fz_fail("send: %d, want %u", ret, how ? nr_pl : 0);
		for (i = 0; i < nr_pl; i++)
			lib_record(fz, &pl[i], seed, idx[i]);
		return;
	}
	if (ret == -EBADF && bad_fd)
		return;
	if (!send_state_ok(fz, ret, nr_pl))
		fz_fail("send of %u payloads: %d", nr_pl, ret);
}

/* OP_FLAGS: bit 0 close in hangup, bit 1 reply from ready_read, bits 2-3:
 * close (1) or free (2) the socket from ready_read after [n & 15] + 1 more
 * messages.
 */
static void op_flags(struct fz *fz, struct fz_in *in, unsigned int arg)
{
	unsigned int n;

	fz->close_in_hangup = arg & 1;
	fz->echo = arg & 2;
	if (arg & 12) {
		n = in_u8(in);
		fz->close_at = fz->delivered + 1 + (n & 15);
		fz->close_free = (arg & 12) == 8;
	}
}

/* ------------------------------------------------------------------ */
/* One input */

/*
 * The first datagram not delivered that may not be (@maybe: counting those
 * whose fds may not have arrived): -1 if none.
 */
static int first_bad(const struct fz *fz, bool maybe)
{
	unsigned int i;

	for (i = fz->delivered; i < fz->nr_sent; i++)
		if (sent[i].status == DG_INVALID ||
		    (maybe && sent[i].status == DG_MAYBE))
			return i;
	return -1;
}

/*
 * Done when the library has said all it will: hangup (and what was
 * receivable before it is received), or every datagram delivered on a
 * channel that has no reason to end.
 */
static bool fz_settled(struct fz *fz)
{
	if (fz->lib_closed)
		return true;
	while (!recv_one(fz))
		;
	if (fz->lib_closed || fz->hup_calls)
		return true;
	/* The end of file, or the failure, is still to come. */
	if (fz->remote_closed || fz->remote_shut || first_bad(fz, true) >= 0)
		return false;
	return fz->delivered == fz->nr_sent;
}

static void fz_settle(struct fz *fz)
{
	uint64_t end = now_ms() + FZ_SETTLE_MS;
	unsigned int i;

	for (i = 0; !fz_settled(fz); i++) {
		if (now_ms() > end)
			fz_fail("stuck: %u of %u datagrams delivered, no hangup",
				fz->delivered, fz->nr_sent);
		fz_dispatch(fz, i >= 64);
	}
	/* A healthy channel: everything the library was given arrives. */
	if (fz->lib_closed || fz->hup_calls || fz->remote_closed ||
	    fz->remote_shut)
		return;
	end = now_ms() + FZ_SETTLE_MS;
	for (i = 0; fz->lib_read < fz->lib_sent; i++) {
		if (peer_read_one(fz))
			continue;
		if (now_ms() > end)
			fz_fail("library lost messages: %u of %u arrived",
				fz->lib_read, fz->lib_sent);
		fz_dispatch(fz, i >= 64);
	}
}

/*
 * A zero-length datagram reads exactly like end of file. One the peer sent
 * just before closing cannot be told from the close itself when nothing
 * after it has bytes (SIOCINQ counts bytes; fds on a zero-byte datagram
 * would take reading past any number of empty ones): hangup(0) is right
 * for it too. A datagram with bytes after it shows it was no end of file.
 */
static bool reads_like_eof(const struct fz *fz, unsigned int bad)
{
	unsigned int i;

	if ((!fz->remote_closed && !fz->remote_shut) || sent[bad].nr_fds)
		return false;
	for (i = bad; i < fz->nr_sent; i++)
		if (!sent[i].empty)
			return false;
	return true;
}

static void fz_verify(struct fz *fz, bool settled)
{
	int bad = first_bad(fz, true);

	if (!fz->hup_calls) {
		if (settled && !fz->lib_closed && fz->delivered != fz->nr_sent)
			fz_fail("settled with %u of %u delivered",
				fz->delivered, fz->nr_sent);
		return;
	}
	if (fz->hup_err < 0 && fz->hup_err != -ECONNRESET) {
		/* A failure needs a datagram that was not whole or valid. */
		if (bad < 0)
			fz_fail("channel failed (%d) without a broken datagram",
				fz->hup_err);
		if (settled && !fz->lib_closed &&
		    (unsigned int)bad != fz->delivered)
			fz_fail("channel failed (%d) with valid message %u undelivered",
				fz->hup_err, fz->delivered);
		return;
	}
	/*
	 * End of file: after every datagram, none of them broken. One whose
	 * fds may not have arrived did arrive whole, or the channel would
	 * have failed; it may still wait to be received.
	 */
	bad = first_bad(fz, false);
	if (bad >= 0 && reads_like_eof(fz, bad)) {
		if (settled && !fz->lib_closed &&
		    (unsigned int)bad != fz->delivered)
			fz_fail("hangup(%d) with valid message %u undelivered",
				fz->hup_err, fz->delivered);
		return;
	}
	if (bad >= 0)
		fz_fail("hangup(%d) although datagram %d was broken%s",
			fz->hup_err, bad,
			sent[bad].empty ? " (zero-length)" : "");
	if (!fz->remote_closed && !fz->remote_shut)
		fz_fail("hangup(%d) while the peer is open", fz->hup_err);
	if (settled && !fz->lib_closed && fz->delivered != fz->nr_sent)
		fz_fail("hangup(%d) with %u of %u delivered", fz->hup_err,
			fz->delivered, fz->nr_sent);
	if (fz->hup_err == -ECONNRESET && !fz->hup_unread && !fz->must_reset)
		fz_fail("hangup(-ECONNRESET) with nothing of ours unread");
	if (!fz->hup_err && fz->must_reset)
		fz_fail("hangup(0): the peer closed with our messages unread");
}

static void fz_teardown(struct fz *fz)
{
	struct ipcsock_loop *loop = fz->fl->loop;
	uint64_t end;
	int n;

	if (fz->sock)
		ipcsock_free(fz->sock);
	fz->sock = NULL;
	if (!fz->remote_closed)
		close(fz->remote);
	close(fz->lib_dup);
	end = now_ms() + FZ_IDLE_MS;
	while (!ipcsock_loop_idle(loop)) {
		if (now_ms() > end)
			fz_fail("loop not idle after every socket was freed");
		loop_dispatch(loop, 1);
	}
	n = count_fds();
	if (n != fd_baseline) {
		dump_fds();
		fz_fail("%d fds open after the input, %d before", n,
			fd_baseline);
	}
}

static void fz_run(struct fz *fz, struct fz_in *in)
{
	unsigned int op, arg, i;

	while (in->n) {
		op = in_u8(in);
		arg = op >> 4;
		op &= 15;
		switch (op) {
		case OP_SEND:
			op_send(fz, in, false);
			break;
		case OP_BURST:
			op_burst(fz, in, arg);
			break;
		case OP_DISPATCH:
			for (i = 0; i <= arg; i++)
				fz_dispatch(fz, 0);
			break;
		case OP_RECV:
			for (i = 0; i <= arg && !recv_one(fz); i++)
				;
			break;
		case OP_LIB_SEND:
			op_lib_send(fz, in);
			break;
		case OP_DRAIN:
			for (i = 0; i <= arg && peer_read_one(fz); i++)
				;
			break;
		case OP_PEER_CLOSE:
			op_peer_close(fz, arg);
			break;
		case OP_NOFILE:
			op_nofile(fz, in, arg);
			break;
		case OP_SNDBUF:
			op_sndbuf(fz, arg);
			break;
		case OP_FLAGS:
			op_flags(fz, in, arg);
			break;
		case OP_LOCAL_CLOSE:
			if (!fz->lib_closed)
				fz_local_close(fz, arg & 1);
			break;
		default:
			/* Spare codes: more plain sends, the common case. */
			op_send(fz, in, false);
			break;
		}
	}
}

/* ------------------------------------------------------------------ */
/* Set-up */

static void loop_setup(struct fz_loop *fl, enum fz_backend be, bool small)
{
	static const char * const names[NR_BE][2] = {
		[BE_URING] = { "io_uring", "io_uring-small" },
		[BE_EPOLL] = { "epoll", "epoll-small" },
		[BE_URING_RING] = { "io_uring-ring", "io_uring-ring-small" },
	};
	IPCSOCK_LOOP_OPTS(opts,
		.backend = be == BE_EPOLL ? IPCSOCK_BACKEND_EPOLL :
					    IPCSOCK_BACKEND_URING,
		.max_msg_size = small ? FZ_SMALL_MSG : 0,
		.send_queue_len = small ? FZ_SMALL_QUEUE : 0,
		.recv_buffers = small ? FZ_SMALL_BUFFERS : 0,
		.flags = be == BE_URING_RING ? IPCSOCK_LOOP_RING_SENDS : 0,
	);

	fl->name = names[be][small];
	fl->loop = ipcsock_loop_new(&opts);
	if (!fl->loop) {
		fprintf(stderr, "fuzz-peer: ipcsock_loop_new(%s): %s\n",
			fl->name, strerror(errno));
		exit(1);
	}
	fl->unbound = ipcsock_new(fl->loop);
	fl->fd = ipcsock_loop_fd(fl->loop);
	if (!fl->unbound || fl->fd < 0) {
		fprintf(stderr, "fuzz-peer: loop set-up failed\n");
		exit(1);
	}
	fl->max_msg = small ? FZ_SMALL_MSG : IPCSOCK_DEFAULT_MAX_MSG_SIZE;
	fl->queue_len = small ? FZ_SMALL_QUEUE : IPCSOCK_DEFAULT_SEND_QUEUE;
}

static void pool_setup(void)
{
	int p[2], s[2];
	unsigned int i;

	pool[POOL_MEMFD_A].fd = memfd_create("fuzz-a", MFD_CLOEXEC);
	pool[POOL_MEMFD_B].fd = memfd_create("fuzz-b", MFD_CLOEXEC);
	if (pipe2(p, O_CLOEXEC) ||
	    socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, s)) {
		perror("fuzz-peer: pool");
		exit(1);
	}
	pool[POOL_PIPE_R].fd = p[0];
	pool[POOL_PIPE_W].fd = p[1];
	pool[POOL_SOCK_A].fd = s[0];
	pool[POOL_SOCK_B].fd = s[1];
	pool[POOL_EVENTFD].fd = eventfd(0, EFD_CLOEXEC);
	pool[POOL_DEVNULL].fd = open("/dev/null", O_RDWR | O_CLOEXEC);
	for (i = 0; i < POOL_LOOP; i++) {
		if (pool[i].fd < 0) {
			perror("fuzz-peer: pool");
			exit(1);
		}
		file_id(&pool[i]);
	}
}

static void fz_setup_once(void)
{
	unsigned int i;

	if (txbuf)
		return;
	txbuf = malloc(FZ_TXBUF_LEN);
	rxbuf_len = FZ_HDR + IPCSOCK_DEFAULT_MAX_MSG_SIZE + 64;
	rxbuf = malloc(rxbuf_len);
	if (!txbuf || !rxbuf)
		exit(1);
	verbose = getenv("IPCSOCK_FUZZ_VERBOSE");
	/* A hang-up must show as EPIPE, never as a signal. */
	signal(SIGPIPE, SIG_IGN);
	pool_setup();
	for (i = 0; i < 2 * NR_BE; i++)
		loop_setup(&fz_loops[i / 2][i & 1], i / 2, i & 1);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fz_in in = { .p = data, .n = size };
	unsigned int conf, i;
	struct fz fz;
	int sv[2], err;
	socklen_t len = sizeof(int);

	fz_setup_once();
	conf = in_u8(&in);
	memset(&fz, 0, sizeof(fz));
	/* Code 3 is plain io_uring again. */
	fz.fl = &fz_loops[(conf & CONF_BACKEND) % NR_BE][!!(conf & CONF_SMALL)];
	fz.consumer = (conf & CONF_CONSUMER) >> 3;
	fz.per_call = conf & CONF_PER_CALL3 ? 3 : 1;
	fz.drain = !(conf & CONF_NO_DRAIN);
	fz.close_at = UINT_MAX;
	cur = &fz;

	fd_baseline = count_fds();
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv))
		fz_fail("socketpair: %s", strerror(errno));
	/* Bind raises it again as far as the largest message needs. */
	err = FZ_TIGHT_SNDBUF;
	if ((conf & CONF_TIGHT) &&
	    setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &err, sizeof(err)))
		fz_fail("SO_SNDBUF: %s", strerror(errno));
	fz.sock = ipcsock_new(fz.fl->loop);
	if (!fz.sock)
		fz_fail("ipcsock_new failed");
	err = ipcsock_bind(fz.sock, sv[0]);
	if (err)
		fz_fail("ipcsock_bind: %d", err);
	fz.remote = sv[1];
	fz.lib_dup = fcntl(sv[0], F_DUPFD_CLOEXEC, 0);
	if (fz.lib_dup < 0 ||
	    getsockopt(fz.remote, SOL_SOCKET, SO_SNDBUF, &fz.kmax, &len))
		fz_fail("set-up: %s", strerror(errno));
	fz.kmax -= 32;
	pool[POOL_LOOP].fd = fz.fl->fd;
	pool[POOL_LIB].fd = sv[0];
	pool[POOL_LIB_DUP].fd = fz.lib_dup;
	pool[POOL_REMOTE].fd = fz.remote;
	for (i = POOL_LOOP; i < NR_POOL; i++)
		file_id(&pool[i]);
	if (fz.consumer != CONSUMER_MANUAL)
		ipcsock_set_ready_read(fz.sock, on_ready, &fz);
	ipcsock_set_hangup(fz.sock, on_hangup, &fz);

	fz_run(&fz, &in);
	if (fz.drain)
		fz_settle(&fz);
	fz_verify(&fz, fz.drain);
	if (verbose)
		fz_state(&fz);
	fz_teardown(&fz);
	cur = NULL;
	return 0;
}

/* ------------------------------------------------------------------ */
/* The seed corpus: "fuzz-peer -seed=DIR" writes it and exits. */

struct fz_seed {
	uint8_t b[256];
	size_t n;
};

static void put(struct fz_seed *s, unsigned int n, ...)
{
	va_list ap;

	va_start(ap, n);
	while (n--)
		s->b[s->n++] = va_arg(ap, unsigned int);
	va_end(ap);
}

#define PUT(s, ...)	put(s, sizeof((unsigned int[]){ __VA_ARGS__ }) / \
			       sizeof(unsigned int), __VA_ARGS__)
#define OP(op, arg)	((op) | (arg) << 4)

/* OP_SEND, correct header, 0-255 bytes, 1-4 fds from the given picks. */
static void seed_msg(struct fz_seed *s, unsigned int size, unsigned int nr,
		     unsigned int pick, unsigned int seed)
{
	unsigned int i;

	if (!nr) {
		PUT(s, OP(OP_SEND, 0), 1 << 2, size, seed);
		return;
	}
	PUT(s, OP(OP_SEND, 0), 1 << 2 | 1 << 4, size, nr - 1);
	for (i = 0; i < nr; i++)
		PUT(s, pick + i);
	PUT(s, seed);
}

static void seed_write(const char *dir, const char *name,
		       const struct fz_seed *s)
{
	char path[4096];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "wb");
	if (!f || fwrite(s->b, 1, s->n, f) != s->n || fclose(f)) {
		perror(path);
		exit(1);
	}
}

/*
 * The seed ends: write it for this backend. The io_uring loop that sends
 * everything on the ring gets only the seeds about sending (@ring true).
 */
static void seed_end(const char *dir, unsigned int e, const char *what,
		     struct fz_seed *s, bool ring)
{
	static const char * const backend[NR_BE] = {
		[BE_URING] = "uring",
		[BE_EPOLL] = "epoll",
		[BE_URING_RING] = "uring-ring",
	};
	char name[64];

	snprintf(name, sizeof(name), "%s-%s", backend[e], what);
	if (e != BE_URING_RING || ring)
		seed_write(dir, name, s);
	memset(s, 0, sizeof(*s));
	PUT(s, e);
}

static void seeds_write(const char *dir)
{
	unsigned int e, i, j;
	struct fz_seed s;

	for (e = 0; e < NR_BE; e++) {
		memset(&s, 0, sizeof(s));
		PUT(&s, e);

		seed_msg(&s, 5, 1, POOL_MEMFD_A, 1);
		seed_msg(&s, 0, 0, 0, 2);
		seed_msg(&s, 200, 3, POOL_PIPE_R, 3);
		PUT(&s, OP(OP_DISPATCH, 1), OP(OP_PEER_CLOSE, 0));
		seed_end(dir, e, "valid-close", &s, true);

		/* A valid message, one with version 0, one not delivered. */
		seed_msg(&s, 4, 1, POOL_SOCK_A, 1);
		PUT(&s, OP(OP_SEND, 0), 2 | 1 << 2 | 1 << 4, 9, 0,
		    POOL_MEMFD_B, 7, 2 | 1 << 2);
		seed_msg(&s, 4, 0, 0, 3);
		seed_end(dir, e, "bad-version", &s, false);

		PUT(&s, OP(OP_SEND, 0), 2, 3, 5, 3 | 4 << 2);
		seed_end(dir, e, "bad-flags", &s, false);

		PUT(&s, OP(OP_SEND, 0), 2 | 1 << 2, 40, 5, 0 | 31 << 2);
		seed_end(dir, e, "bad-len", &s, false);

		/* Two fds, the header says three. */
		PUT(&s, OP(OP_SEND, 0), 2 | 1 << 4, 1, 1, POOL_PIPE_W,
		    POOL_EVENTFD, 8, 1 | 33 << 2);
		seed_end(dir, e, "fd-count", &s, false);

		/* Five bytes and an fd: no room for a header. */
		PUT(&s, OP(OP_SEND, 0), 3 | 1 << 4, 5, 0, POOL_LIB, 1,
		    1, 0, 0, 0, 0);
		seed_end(dir, e, "short", &s, false);

		seed_msg(&s, 10, 0, 0, 4);
		PUT(&s, OP(OP_SEND, 0), 3, 0, 0);
		PUT(&s, OP(OP_DISPATCH, 3));
		seed_end(dir, e, "zero-length", &s, false);

		/* A raw header that happens to be right. */
		PUT(&s, OP(OP_SEND, 0), 1 | 1 << 2, 3, 9,
		    3, 0, 0, 0, 0, 0, 1, 0);
		seed_end(dir, e, "raw-header", &s, false);

		/* 73,744 bytes, then up to the kernel's limit. */
		PUT(&s, OP(OP_SEND, 0), 3 << 2, 0x10, 0x20, 0x01, 6);
		PUT(&s, OP(OP_SNDBUF, 15));
		PUT(&s, OP(OP_SEND, 0), 3 << 2, 0xff, 0xff, 0x07, 6);
		seed_end(dir, e, "too-big", &s, false);

		/* 253 fds, then 254 that the kernel refuses. */
		PUT(&s, OP(OP_SEND, 0), 3 << 4, 1, 0x35, 2);
		PUT(&s, OP(OP_SEND, 0), 2 << 4, 1, 254, 0x35, 2);
		PUT(&s, OP(OP_PEER_CLOSE, 0));
		seed_end(dir, e, "max-fds", &s, false);

		s.b[0] |= CONF_SMALL | CONSUMER_SOME << 3 | CONF_PER_CALL3;
		PUT(&s, OP(OP_BURST, 15), 100, 0x9c, 3);
		PUT(&s, OP(OP_PEER_CLOSE, 1));
		seed_end(dir, e, "burst-small", &s, false);

		PUT(&s, OP(OP_SEND, 0), 1 << 4, 2, 2, POOL_LIB,
		    POOL_LIB_DUP, POOL_REMOTE, 0);
		PUT(&s, OP(OP_PEER_CLOSE, 0));
		seed_end(dir, e, "own-ends", &s, false);

		/* One, a batch of three, EINVAL, a bad fd, unbound. */
		PUT(&s, OP(OP_LIB_SEND, 0), 0, 7, 1, 30);
		PUT(&s, OP(OP_LIB_SEND, 0), 1 | 3 << 2, 9,
		    1 | 1 << 4, 10, 1, POOL_MEMFD_A, POOL_LIB,
		    1, 20,
		    2 << 4, 0x21);
		PUT(&s, OP(OP_LIB_SEND, 0), 0, 1, 1 | 4, 10);
		PUT(&s, OP(OP_LIB_SEND, 0), 0, 1, 1 | 1 << 4 | 1 << 6,
		    5, 2, POOL_PIPE_R, POOL_PIPE_W, POOL_SOCK_A, 1, 4);
		PUT(&s, OP(OP_LIB_SEND, 0), 3, 1, 1, 5);
		PUT(&s, OP(OP_DRAIN, 15));
		seed_end(dir, e, "lib-send", &s, true);

		/* Replies left unread when the peer closes: -ECONNRESET. */
		PUT(&s, OP(OP_FLAGS, 2));
		seed_msg(&s, 3, 0, 0, 5);
		seed_msg(&s, 6, 1, POOL_DEVNULL, 6);
		PUT(&s, OP(OP_DISPATCH, 2), OP(OP_PEER_CLOSE, 0));
		seed_end(dir, e, "echo-reset", &s, true);

		seed_msg(&s, 8, 2, POOL_MEMFD_A, 1);
		PUT(&s, OP(OP_NOFILE, 2), 1 << 2 | 2 << 4, 16, 12, 0x41, 9);
		seed_msg(&s, 8, 1, POOL_MEMFD_B, 2);
		seed_end(dir, e, "nofile", &s, false);

		s.b[0] |= CONSUMER_MANUAL << 3;
		seed_msg(&s, 1, 1, POOL_EVENTFD, 1);
		seed_msg(&s, 2, 0, 0, 2);
		PUT(&s, OP(OP_DISPATCH, 0), OP(OP_RECV, 0));
		seed_msg(&s, 3, 2, POOL_LOOP, 3);
		seed_end(dir, e, "manual", &s, false);

		s.b[0] |= CONSUMER_SOME << 3;
		PUT(&s, OP(OP_FLAGS, 1));
		seed_msg(&s, 1, 0, 0, 1);
		seed_msg(&s, 2, 0, 0, 2);
		PUT(&s, OP(OP_SEND, 0), 2, 3, 5, 2 | 1 << 2);
		seed_end(dir, e, "close-in-hangup", &s, false);

		PUT(&s, OP(OP_FLAGS, 8), 1);
		seed_msg(&s, 1, 1, POOL_MEMFD_A, 1);
		seed_msg(&s, 2, 1, POOL_MEMFD_B, 2);
		seed_msg(&s, 3, 1, POOL_PIPE_R, 3);
		PUT(&s, OP(OP_DISPATCH, 3));
		seed_end(dir, e, "free-in-callback", &s, true);

		s.b[0] |= CONSUMER_MANUAL << 3 | CONF_NO_DRAIN;
		seed_msg(&s, 9, 4, POOL_SOCK_A, 1);
		PUT(&s, OP(OP_DISPATCH, 1), OP(OP_LOCAL_CLOSE, 0));
		seed_end(dir, e, "local-close", &s, false);

		/* The library's end fills: sends wait for room, in order. */
		for (i = 0; i < 2; i++) {
			PUT(&s, OP(OP_LIB_SEND, 0), 1 | 7 << 2, i);
			for (j = 0; j < 7; j++)
				PUT(&s, 3 | 1 << 4, 0x20, 0x4e, 0, POOL_PIPE_W);
		}
		PUT(&s, OP(OP_DRAIN, 3), OP(OP_DISPATCH, 0));
		seed_msg(&s, 20, 1, POOL_LIB, 1);
		seed_end(dir, e, "backpressure", &s, true);

		/* A small SO_SNDBUF and a 4-message queue: -ENOBUFS. */
		s.b[0] |= CONF_TIGHT | CONF_SMALL;
		for (i = 0; i < 5; i++) {
			PUT(&s, OP(OP_LIB_SEND, 0), 1 | 4 << 2, i);
			for (j = 0; j < 4; j++)
				PUT(&s, 3, 0xe8, 0x03);
		}
		PUT(&s, OP(OP_DRAIN, 1), OP(OP_DISPATCH, 0));
		seed_end(dir, e, "enobufs", &s, true);
	}
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	int i;

	for (i = 1; i < *argc; i++) {
		if (!strncmp((*argv)[i], "-seed=", 6)) {
			seeds_write((*argv)[i] + 6);
			exit(0);
		}
	}
	return 0;
}
