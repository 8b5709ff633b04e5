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
 *
 * This file has the model, the library's side and the input loop; the raw
 * peer end is in fuzz-peer-raw.c, the send side's argument checks in
 * fuzz-peer-send.c and the seed corpus in fuzz-peer-seeds.c.
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

#include "fuzz-peer.h"

static struct fz_loop fz_loops[NR_BE][2];
struct fz_file pool[NR_POOL];
struct fz_msg sent[FZ_MAX_SENT];
struct fz_msg lib_sent[FZ_MAX_LIB_SENT];
static struct fz *cur;
uint8_t *txbuf;
uint8_t *rxbuf;
size_t rxbuf_len;
static int fd_baseline;
static bool verbose;		/* IPCSOCK_FUZZ_VERBOSE=1: state per input */

/* ------------------------------------------------------------------ */
/* Small helpers */

unsigned int in_u8(struct fz_in *in)
{
	if (!in->n)
		return 0;
	in->n--;
	return *in->p++;
}

unsigned int in_u16(struct fz_in *in)
{
	unsigned int v = in_u8(in);

	return v | in_u8(in) << 8;
}

unsigned int in_u24(struct fz_in *in)
{
	unsigned int v = in_u16(in);

	return v | in_u8(in) << 16;
}

static uint8_t pattern(unsigned int seed, size_t i)
{
	return seed * 37 + i * 11 + (i >> 9);
}

void fill_pattern(uint8_t *buf, size_t len, unsigned int seed)
{
	size_t i;

	for (i = 0; i < len; i++)
		buf[i] = pattern(seed, i);
}

bool check_pattern(const uint8_t *buf, size_t len, unsigned int seed)
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

void fz_fail(const char *fmt, ...)
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
unsigned int pool_pick(const struct fz *fz, unsigned int v)
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
void pick_fds(struct fz *fz, struct fz_in *in, unsigned int nr,
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

void fz_dispatch(struct fz *fz, int timeout_ms)
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
void lib_record(struct fz *fz, const struct ipcsock_payload *p,
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
bool send_state_ok(const struct fz *fz, int ret, unsigned int count)
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
