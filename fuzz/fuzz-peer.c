// SPDX-License-Identifier: MIT
/*
 * fuzz-peer - a libFuzzer harness that plays a hostile peer.
 *
 * Each input is a conversation, or several in a row. The harness binds a
 * library socket to one end of a fresh AF_UNIX SOCK_SEQPACKET pair (or has
 * ipcsock_create() make the pair) and keeps the other end raw: from it,
 * it sends whatever datagrams the input describes (valid messages, broken
 * headers, short and zero-length datagrams, up to the kernel's size
 * limit, 0-255 fds of every kind including both ends of the channel
 * itself, bursts, fds the receiver cannot install because its
 * RLIMIT_NOFILE was lowered, peer shutdown and close), and it drives the
 * library's loop between them. It also calls the send side with arguments
 * from the input (bad lengths, fd counts, bad fds, NULLs) and reads what
 * the library sends back. The input may close the handle and bind it
 * again, for a new conversation on a new channel, at any point.
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
 *    messages were left unread (also when the end of file was a
 *    zero-length datagram); no hangup without a reason, none twice,
 *    none after a local close; ready_read only with a message pending;
 *  - send and send_batch return what the documented checks say, and what
 *    they queue reaches the peer whole and in order, with its own fds, in
 *    version 1 datagrams or records that keep every rule of the wire
 *    format (test_wire_check() in selftests/wire-test.h);
 *  - ipcsock_get_stats() agrees: once receive says -EAGAIN, the messages
 *    received are the messages delivered and no receive buffer is in use;
 *    before, at least as many were received and the one handed out holds
 *    a buffer;
 *  - ipcsock_create() returns a connected SOCK_SEQPACKET end with
 *    FD_CLOEXEC, ipcsock_bind() sets FD_CLOEXEC on the end it takes, a
 *    bind that must fail gives the documented error and leaves the fd to
 *    the caller and the handle unbound, a closed handle is unbound;
 *  - a handle closed and bound again (OP_REBIND, or EXT_KEEP from one
 *    input to the next) sees nothing of its old channel: every invariant
 *    above holds for each conversation on its own;
 *  - on a shared ring (see fuzz-peer-loop.c), handle_cqe takes exactly the
 *    completions tagged as the library's, the application's own requests
 *    come back to it untouched, dispatch never waits, a conversation that
 *    must still settle makes the ring complete something, and an idle loop
 *    has nothing left to complete;
 *  - an application's chain left open on a shared ring while the input
 *    calls into the library is not joined by the library's requests: it
 *    runs as the application built it, and the library's work is done;
 *  - more loops on the ring (OP_LOOPS, also around the wrap of the loop
 *    numbers, see fuzz-peer-multi.c) and more channels each get exactly
 *    their own completions and messages, once and in order;
 *  - a forked child's default loop is its own and works, and the parent's
 *    loop goes on working (OP_FORK, see fuzz-peer-fork.c);
 *  - after teardown the loop is idle and the process has exactly the
 *    descriptors it had before the input (/proc/self/fd).
 *
 * The loops (see fuzz-peer-loop.c) and a pool of files to pass live across
 * inputs, and so does a handle per loop that EXT_KEEP inputs close and
 * bind again; the socket pairs and the other library sockets are new for
 * every input, and everything of theirs is gone at its end.
 *
 * Input format: byte 0 is the configuration (see enum fz_conf). If its
 * backend code is 3 (BE_EXT), byte 1 chooses the loop among all of them,
 * the shared-ring, busy-polling and default ones included, and how the
 * channel is made (see enum fz_ext); codes 0-2 mean what they always
 * meant (code 3 used to be plain io_uring again, which no seed used).
 * Then operations, each one byte (low 4 bits: operation, high 4 bits: its
 * argument) followed by the bytes that operation reads. Reads past the
 * end give 0.
 * "fuzz-peer -write-seeds=DIR" writes the seed corpus to DIR and exits
 * (not -seed=, which is libFuzzer's own: its random seed).
 *
 * This file has the helpers, the checks at the end of a conversation and
 * the input loop; the library's callbacks are in fuzz-peer-lib.c, the
 * loops and the shared ring's application in fuzz-peer-loop.c, binding
 * and rebinding in fuzz-peer-chan.c, the raw peer end in fuzz-peer-raw.c,
 * the send side's argument checks in fuzz-peer-send.c, more loops and
 * channels in fuzz-peer-multi.c, the forked child in fuzz-peer-fork.c and
 * the seed corpus in fuzz-peer-seeds.c.
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

struct fz_file pool[NR_POOL];
struct fz_msg sent[FZ_MAX_SENT];
struct fz_msg lib_sent[FZ_MAX_LIB_SENT];
static struct fz the_fz;	/* callbacks of kept handles point here */
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

uint64_t now_ms(void)
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
		"fuzz-peer: state: backend %s, sent %u, delivered %u, broken %d, remote %s, hangup %u (err %d), lib sent %u read %u, local close %d",
		fz->fl->name, fz->nr_sent, fz->delivered, fz->broken_sent,
		fz->remote_closed ? "closed" : fz->remote_shut ? "shut" : "open",
		fz->hup_calls, fz->hup_err, fz->lib_sent, fz->lib_read,
		fz->lib_closed);
	if (fz->convs > 1 || fz->create || fz->keep || fz->fl->ring)
		fprintf(stderr, ", conversation %u (%s%s)", fz->convs,
			fz->created ? "create" : "bind",
			fz->keep ? ", kept handle" : "");
	if (fz->fl->ring)
		fprintf(stderr, ", ring CQEs: library %lu, application %lu (%u out)",
			fz->fl->lib_cqes, fz->fl->app_cqes,
			fz->fl->app_inflight);
	if (fz->fl->chain.live)
		fprintf(stderr, ", the application's chain %s (head %s)",
			fz->fl->chain.open ? "open" : "ended",
			fz->fl->chain.head_done ? "done" : "out");
	fputc('\n', stderr);
	multi_state();
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

void file_id(struct fz_file *f)
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
void loop_dispatch(struct ipcsock_loop *loop, int timeout_ms)
{
	int ret = ipcsock_loop_dispatch(loop, timeout_ms);

	if (ret < 0 && ret != -EINTR && !(cur && chain_refused(cur->fl, ret)))
		fz_fail("ipcsock_loop_dispatch: %d", ret);
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
		    (sent[i].status == DG_RESET && i + 1 < fz->nr_sent) ||
		    (maybe && sent[i].status == DG_MAYBE))
			return i;
	return -1;
}

/* What must be delivered: all, or what came before our reset notice. */
static unsigned int deliverable(const struct fz *fz)
{
	return fz->reset_at ? fz->reset_at - 1 : fz->nr_sent;
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
	return fz->delivered == deliverable(fz);
}

void fz_settle(struct fz *fz)
{
	uint64_t end = now_ms() + FZ_SETTLE_MS;
	unsigned int i;

	/* What the library must still do may wait behind an open chain. */
	if (fz->fl->ring)
		app_chain_end(fz->fl, false);
	for (i = 0; !fz_settled(fz); i++) {
		if (now_ms() > end)
			fz_fail("stuck: %u of %u datagrams delivered, no hangup",
				fz->delivered, fz->nr_sent);
		fz_wait(fz, i, end);
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
		fz_wait(fz, i, end);
	}
}

/*
 * A zero-length datagram reads exactly like end of file. One the peer sent
 * just before closing cannot be told from the close itself when nothing
 * after it has bytes (SIOCINQ counts bytes; fds on a zero-byte datagram
 * would take reading past any number of empty ones): hangup(0) is right
 * for it too, or -ECONNRESET if the peer closed with messages of ours
 * unread, which the kernel leaves pending on the socket however the end
 * reads. A datagram with bytes after it shows it was no end of file.
 */
static bool reads_like_eof(const struct fz *fz, unsigned int bad)
{
	unsigned int i;

	if ((!fz->remote_closed && !fz->remote_shut) || sent[bad].nr_fds)
		return false;
	/* After a reset notice too: the notice, then the end. */
	for (i = bad + (sent[bad].status == DG_RESET); i < fz->nr_sent; i++)
		if (!sent[i].empty)
			return false;
	return true;
}

void fz_verify(struct fz *fz, bool settled)
{
	int bad = first_bad(fz, true);

	if (!fz->hup_calls) {
		if (settled && !fz->lib_closed &&
		    fz->delivered != deliverable(fz))
			fz_fail("settled with %u of %u delivered",
				fz->delivered, deliverable(fz));
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
		if (!fz->hup_err && fz->must_reset)
			fz_fail("hangup(0) after a zero-length datagram: the peer closed with our messages unread");
		return;
	}
	if (bad >= 0)
		fz_fail("hangup(%d) although datagram %d was broken%s",
			fz->hup_err, bad,
			sent[bad].empty ? " (zero-length)" : "");
	if (!fz->remote_closed && !fz->remote_shut)
		fz_fail("hangup(%d) while the peer is open", fz->hup_err);
	if (settled && !fz->lib_closed && fz->delivered != deliverable(fz))
		fz_fail("hangup(%d) with %u of %u delivered", fz->hup_err,
			fz->delivered, deliverable(fz));
	if (fz->hup_err == -ECONNRESET && !fz->hup_unread && !fz->must_reset &&
	    !fz->reset_at)
		fz_fail("hangup(-ECONNRESET) with nothing of ours unread");
	if (!fz->hup_err && (fz->must_reset || fz->reset_at))
		fz_fail("hangup(0): the peer closed with our messages unread");
}

/*
 * Free the handle, or close it if it is the loop's kept one: then it must
 * be unbound and no callback may run for it any more.
 */
static void fz_teardown(struct fz *fz)
{
	int n;

	fz->lib_closed = true;
	if (fz->sock && fz->sock == fz->fl->kept) {
		ipcsock_close(fz->sock);
		if (ipcsock_is_bound(fz->sock))
			fz_fail("the kept handle is bound after ipcsock_close");
	} else if (fz->sock) {
		ipcsock_free(fz->sock);
	}
	fz->sock = NULL;
	if (!fz->remote_closed)
		close(fz->remote);
	close(fz->lib_dup);
	fz_loop_quiesce(fz->fl);
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
			/* A busy-polling loop polls only if it may wait. */
			for (i = 0; i <= arg; i++)
				fz_dispatch(fz, !i && fz->fl->busy);
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
		case OP_APP:
			op_app(fz, in, arg);
			break;
		case OP_REBIND:
			op_rebind(fz, in, arg);
			break;
		case OP_LOOPS:
			op_loops(fz, in, arg);
			break;
		case OP_FORK:
			op_fork(fz, in, arg);
			break;
		case OP_RECORD:
			op_record(fz, in, arg);
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
	if (txbuf)
		return;
	txbuf = malloc(FZ_TXBUF_LEN);
	rxbuf_len = TEST_WIRE_HDR_LEN + IPCSOCK_DEFAULT_MAX_MSG_SIZE + 64;
	rxbuf = malloc(rxbuf_len);
	if (!txbuf || !rxbuf)
		exit(1);
	verbose = getenv("IPCSOCK_FUZZ_VERBOSE");
	/* A hang-up must show as EPIPE, never as a signal. */
	signal(SIGPIPE, SIG_IGN);
	pool_setup();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fz_in in = { .p = data, .n = size };
	struct fz *fz = &the_fz;
	unsigned int conf, ext = 0, kind, fsize;

	fz_setup_once();
	conf = in_u8(&in);
	kind = conf & CONF_BACKEND;
	if (kind == BE_EXT) {
		ext = in_u8(&in);
		kind = (ext & EXT_KIND) % NR_KINDS;
	}
	fsize = !(conf & CONF_SMALL) ? SIZE_DEFAULT :
	       ext & EXT_SQ8 ? SIZE_SMALL8 : SIZE_SMALL;
	memset(fz, 0, sizeof(*fz));
	fz->fl = fz_loop_get(kind, fsize);
	fz->consumer = (conf & CONF_CONSUMER) >> 3;
	fz->per_call = conf & CONF_PER_CALL3 ? 3 : 1;
	fz->drain = !(conf & CONF_NO_DRAIN);
	fz->tight = conf & CONF_TIGHT;
	fz->create = ext & EXT_CREATE;
	fz->keep = ext & EXT_KEEP;
	fz_conv_reset(fz);
	fork_reset();
	cur = fz;

	fd_baseline = count_fds();
	if (fz->keep && !fz->fl->kept)
		fz->fl->kept = ipcsock_new(fz->fl->loop);
	fz->sock = fz->keep ? fz->fl->kept : ipcsock_new(fz->fl->loop);
	if (!fz->sock)
		fz_fail("ipcsock_new failed");
	pool[POOL_LOOP].fd = fz->fl->fd;
	file_id(&pool[POOL_LOOP]);
	if (ext & EXT_CB_FIRST)
		fz_set_callbacks(fz);
	fz_chan_open(fz, fz->create, 0);
	if (!(ext & EXT_CB_FIRST))
		fz_set_callbacks(fz);

	fz_run(fz, &in);
	if (fz->drain)
		fz_settle(fz);
	fz_verify(fz, fz->drain);
	multi_end(fz);
	if (verbose)
		fz_state(fz);
	fz_teardown(fz);
	cur = NULL;
	return 0;
}

static void fz_totals(void)
{
	multi_totals();
	fork_totals();
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	uint64_t t;
	int i;

	for (i = 1; i < *argc; i++) {
		if (!strncmp((*argv)[i], "-write-seeds=", 13)) {
			seeds_write((*argv)[i] + 13);
			exit(0);
		}
	}
	/*
	 * The shared loops take the first numbers, then the counter goes
	 * round to just before the wrap: see fuzz-peer-multi.c.
	 */
	t = now_ms();
	fz_loops_early();
	loops_burn_to_wrap();
	fprintf(stderr, "fuzz-peer: loop numbers brought to the wrap in %llu ms\n",
		(unsigned long long)(now_ms() - t));
	atexit(fz_totals);
	return 0;
}
