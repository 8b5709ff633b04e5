// SPDX-License-Identifier: MIT
/*
 * fuzz-peer: loops and channels beside the conversation's, and the loop
 * numbers.
 *
 * Loops on one shared ring tell their completions apart by a loop number
 * in user_data, 16 bits of it. The harness counts the loops it makes, so
 * it knows the number each one would get from a plain counter: at start
 * (loops_burn_to_wrap()) it makes and frees loops until that counter sits
 * just before the wrap, and the shared loops, made first, hold the
 * numbers right after it. It burns numbers with loops on a ring of its
 * own (burn_ring), which any scheme must number: a plain counter counts
 * every loop, one that numbers only shared loops counts these, and one
 * that skips the numbers of live loops must skip the shared loops' on the
 * way round. OP_LOOPS makes more loops on the input's ring (or like its
 * loop, if it is not shared) while the input's loop and its channel are
 * live, each loop with a channel of its own, and can first bring the
 * counter round to the input's loop's number: cheaply when it is near;
 * when it is not, at most once every FZ_BURN_EVERY_S seconds, round to
 * just before the wrap again, which brings every shared loop made at
 * start near (IPCSOCK_FUZZ_BURN_EVERY=0: every time, to reproduce). It
 * can also make and free a few epoll loops (a program's threads' default
 * loops), add channels to the input's loop (several at once on a ring
 * with a 4-entry SQ), send on all of them both ways, and close them all
 * at once.
 *
 * Every CQE of the library's must be taken by exactly the loop it belongs
 * to (ring_reap() offers it to the input's loop, then to these), and on
 * each of these channels, as on the conversation's: every message arrives
 * exactly once and in order, both ways, no hangup while the peer is open,
 * end of file at the peer once the channel is closed (after a reset
 * notice only if messages of the peer's were never delivered), and every
 * loop idle at the end. multi_end() checks it at the end of the input, before
 * the conversation's teardown, and frees the loops.
 */
#include <errno.h>
#include <liburing.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "fuzz-peer.h"

#define FZ_SIB_MAX		4
#define FZ_AUX_MAX		8
/* Messages each way on one of these channels, at most. */
#define FZ_AUX_MSGS		200
#define FZ_AUX_LEN		48
/* A burn of at most this many loops is cheap enough for any input. */
#define FZ_BURN_CHEAP		1024
#define FZ_BURN_EVERY_S		60
/*
 * The wire format's reset notice: a header alone with this flag, which
 * a library may send last when it closes with messages of ours it never
 * delivered.
 */
#define AUX_F_RESET		0x01

/* A loop made by OP_LOOPS, on the input's ring or like its loop. */
struct fz_sib {
	struct ipcsock_loop *loop;
	unsigned int number;		/* from a plain counter */
	unsigned int queue_len;
	unsigned int max_msg;
	unsigned long cqes;		/* handed over on a shared ring */
};

/* A channel of OP_LOOPS: its library end on some loop, the raw peer's. */
struct fz_aux {
	struct ipcsock *sock;
	int sib;			/* -1: the input's loop */
	int remote;
	unsigned int id;
	unsigned int queue_len;
	unsigned int max_msg;		/* its loop's max_msg_size */
	bool ring_sends;
	unsigned int tx, rx;		/* peer -> library */
	unsigned int ltx, lrx;		/* library -> peer */
	bool closed;			/* ipcsock_close() or _free() */
	bool freed;
	bool reset;			/* the peer read a reset notice */
	bool eof;			/* the peer read end of file */
};

static struct fz_sib sibs[FZ_SIB_MAX];
static unsigned int nr_sibs;
static struct fz_aux auxs[FZ_AUX_MAX];
static unsigned int nr_aux;
static struct fz_loop *multi_fl;	/* the input's loop, while in use */

/* Loops made in this process: the count a plain counter would keep. */
static unsigned long loops_made;
static unsigned long loops_burned;
static uint64_t burn_ms, burn_last_ms;
static bool burned_far;

void loop_counted(struct fz_loop *fl)
{
	fl->number = ++loops_made & 0xffff;
}

/*
 * Make and free @n loops: shared ones on burn_ring with @shared (about
 * 10 us each), else epoll loops, as a program's threads would make.
 */
static void burn_loops(unsigned long n, bool shared)
{
	IPCSOCK_LOOP_OPTS(opts, .backend = IPCSOCK_BACKEND_EPOLL);
	static struct io_uring *burn_ring;
	uint64_t t = now_ms();
	struct ipcsock_loop *loop;
	unsigned long i;
	int err;

	if (shared && !burn_ring) {
		burn_ring = calloc(1, sizeof(*burn_ring));
		err = burn_ring ? io_uring_queue_init(2, burn_ring, 0) :
				  -ENOMEM;
		if (err)
			fz_fail("io_uring_queue_init: %s", strerror(-err));
	}
	for (i = 0; i < n; i++) {
		loop = shared ? ipcsock_loop_new_shared(burn_ring, NULL) :
				ipcsock_loop_new(&opts);
		if (!loop)
			fz_fail("ipcsock_loop_new%s after %lu loops: %s",
				shared ? "_shared" : "", loops_made,
				strerror(errno));
		loops_made++;
		ipcsock_loop_free(loop);
	}
	loops_burned += n;
	burn_ms += now_ms() - t;
}

static void burn(unsigned long n)
{
	burn_loops(n, true);
}

/* The next loops made take 65534, 65535, 0, 1, ...: the shared loops'. */
void loops_burn_to_wrap(void)
{
	burn((65533 - loops_made) & 0xffff);
}

/*
 * The next loop made takes @number again: the shared loops made at start
 * have the numbers just after the wrap. When the counter is past it, go
 * round to just before the wrap first (most of a turn, about a second),
 * at most once every FZ_BURN_EVERY_S seconds.
 */
static void burn_to(unsigned int number)
{
	static long every = -1;
	const char *env;

	if (every < 0) {
		env = getenv("IPCSOCK_FUZZ_BURN_EVERY");
		every = env ? atol(env) : FZ_BURN_EVERY_S;
	}
	if (((number - (loops_made + 1)) & 0xffff) > FZ_BURN_CHEAP) {
		if (burned_far && now_ms() - burn_last_ms < every * 1000ull)
			return;
		burned_far = true;
		burn_last_ms = now_ms();
		loops_burn_to_wrap();
	}
	burn((number - (loops_made + 1)) & 0xffff);
}

/* ------------------------------------------------------------------ */
/* Loops beside the input's */

static void sib_new(struct fz_loop *fl, bool small)
{
	IPCSOCK_LOOP_OPTS(opts,
		.backend = ipcsock_loop_backend(fl->loop),
		.max_msg_size = small ? FZ_SMALL_MSG : 0,
		.send_queue_len = small ? FZ_SMALL_QUEUE : 0,
		.recv_buffers = small ? FZ_SMALL_BUFFERS : 0,
		.flags = fl->ring_sends ? IPCSOCK_LOOP_RING_SENDS : 0,
		/* Clear of the input's loop's groups (0x7000, 0xff00 up). */
		.bgid_base = 0x1000 * (nr_sibs + 1),
	);
	struct fz_sib *sb = &sibs[nr_sibs];

	if (fl->ring)
		sb->loop = ipcsock_loop_new_shared(fl->ring, &opts);
	else
		sb->loop = ipcsock_loop_new(&opts);
	if (!sb->loop)
		fz_fail("another loop like %s: %s", fl->name, strerror(errno));
	sb->number = ++loops_made & 0xffff;
	sb->queue_len = small ? FZ_SMALL_QUEUE : IPCSOCK_DEFAULT_SEND_QUEUE;
	sb->max_msg = small ? FZ_SMALL_MSG : IPCSOCK_DEFAULT_MAX_MSG_SIZE;
	sb->cqes = 0;
	nr_sibs++;
}

bool multi_handle_cqe(struct fz_loop *fl, const struct io_uring_cqe *cqe)
{
	unsigned int i;
	int ret;

	if (fl != multi_fl)
		return false;
	for (i = 0; i < nr_sibs; i++) {
		ret = ipcsock_loop_handle_cqe(sibs[i].loop, cqe);
		if (ret == 1) {
			sibs[i].cqes++;
			return true;
		}
		if (ret)
			fz_fail("handle_cqe of loop %u (number %u): %d", i,
				sibs[i].number, ret);
	}
	return false;
}

void multi_dispatch(struct fz_loop *fl)
{
	unsigned int i;

	if (fl != multi_fl)
		return;
	for (i = 0; i < nr_sibs; i++)
		loop_dispatch(sibs[i].loop, 0);
}

/* ------------------------------------------------------------------ */
/* Channels beside the conversation's */

static unsigned int aux_len(unsigned int id, unsigned int i, bool lib)
{
	return 1 + (i * (lib ? 5 : 7) + id) % FZ_AUX_LEN;
}

static unsigned int aux_seed(unsigned int id, unsigned int i, bool lib)
{
	return (lib ? 0xc0 : 0x40) + id * 16 + i;
}

static void aux_ready(struct ipcsock *sock, void *arg)
{
	struct fz_aux *a = arg;
	struct ipcsock_payload p;
	int ret;

	if (sock != a->sock || a->closed)
		fz_fail("channel %u of OP_LOOPS: ready_read after close",
			a->id);
	while (!(ret = ipcsock_receive(sock, &p))) {
		if (a->rx >= a->tx)
			fz_fail("channel %u of OP_LOOPS: message %u delivered, %u sent (another loop's?)",
				a->id, a->rx, a->tx);
		if (p.len != aux_len(a->id, a->rx, false) || p.nr_fds ||
		    !check_pattern(p.data, p.len,
				   aux_seed(a->id, a->rx, false)))
			fz_fail("channel %u of OP_LOOPS: message %u is not the one sent (%zu bytes, %u fds)",
				a->id, a->rx, p.len, p.nr_fds);
		a->rx++;
	}
	if (ret != -EAGAIN)
		fz_fail("channel %u of OP_LOOPS: ipcsock_receive: %d", a->id,
			ret);
}

static void aux_hangup(struct ipcsock *sock, int err, void *arg)
{
	struct fz_aux *a = arg;

	fz_fail("channel %u of OP_LOOPS: hangup(%d) while its peer is open (%u of %u received)",
		a->id, err, a->rx, a->tx);
	(void)sock;
}

/* A channel on the input's loop (@sib -1) or on one of OP_LOOPS's. */
static void aux_new(struct fz_loop *fl, int sib, bool create)
{
	struct ipcsock_loop *loop = sib < 0 ? fl->loop : sibs[sib].loop;
	struct fz_aux *a = &auxs[nr_aux];
	int sv[2], ret;

	memset(a, 0, sizeof(*a));
	a->id = nr_aux;
	a->sib = sib;
	a->queue_len = sib < 0 ? fl->queue_len : sibs[sib].queue_len;
	a->max_msg = sib < 0 ? fl->max_msg : sibs[sib].max_msg;
	a->ring_sends = fl->ring_sends;
	a->sock = ipcsock_new(loop);
	if (!a->sock)
		fz_fail("ipcsock_new: %s", strerror(errno));
	ipcsock_set_ready_read(a->sock, aux_ready, a);
	ipcsock_set_hangup(a->sock, aux_hangup, a);
	if (create) {
		ret = ipcsock_create(a->sock);
		a->remote = ret;
	} else {
		if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv))
			fz_fail("socketpair: %s", strerror(errno));
		ret = ipcsock_bind(a->sock, sv[0]);
		a->remote = sv[1];
		if (ret)
			close(sv[0]);
	}
	if (ret < 0) {
		if (!chain_refused(fl, ret))
			fz_fail("channel %u of OP_LOOPS: %s: %d", a->id,
				create ? "ipcsock_create" : "ipcsock_bind",
				ret);
		if (a->remote >= 0)
			close(a->remote);
		ipcsock_free(a->sock);
		return;
	}
	nr_aux++;
}

static void aux_peer_send(struct fz_aux *a)
{
	struct test_wire_hdr h = { .version = TEST_WIRE_VERSION };
	uint8_t buf[TEST_WIRE_HDR_LEN + FZ_AUX_LEN];

	if (a->closed || a->tx >= FZ_AUX_MSGS)
		return;
	h.len = aux_len(a->id, a->tx, false);
	memcpy(buf, &h, sizeof(h));
	fill_pattern(buf + TEST_WIRE_HDR_LEN, h.len,
		     aux_seed(a->id, a->tx, false));
	/* A full socket: the message is simply not sent. */
	if (send(a->remote, buf, TEST_WIRE_HDR_LEN + h.len,
		 MSG_DONTWAIT | MSG_NOSIGNAL) >= 0)
		a->tx++;
	else if (errno != EAGAIN)
		fz_fail("channel %u of OP_LOOPS: peer send: %s", a->id,
			strerror(errno));
}

static void aux_lib_send(struct fz_loop *fl, struct fz_aux *a)
{
	uint8_t buf[FZ_AUX_LEN];
	struct ipcsock_payload p = { .data = buf };
	unsigned int unread = a->ltx - a->lrx;
	int ret;

	if (a->closed || a->ltx >= FZ_AUX_MSGS)
		return;
	p.len = aux_len(a->id, a->ltx, true);
	fill_pattern(buf, p.len, aux_seed(a->id, a->ltx, true));
	ret = ipcsock_send(a->sock, &p);
	if (!ret) {
		a->ltx++;
		return;
	}
	/*
	 * With RING_SENDS a message leaves the queue when its CQE is
	 * handled, which may be after the peer read it.
	 */
	if (ret == -ENOBUFS && (a->ring_sends || unread + 1 > a->queue_len))
		return;
	if (!chain_refused(fl, ret))
		fz_fail("channel %u of OP_LOOPS: ipcsock_send: %d (%u queued)",
			a->id, ret, unread);
}

/*
 * The peer reads what the library sent, a message or a record of them: 1
 * if it read something.
 */
static int aux_peer_read(struct fz_aux *a)
{
	/* A record is larger than any message here: room for the largest. */
	static uint8_t buf[TEST_WIRE_REC_MAX + 1];
	struct test_wire_split split;
	struct test_wire_msg m;
	struct test_wire_hdr h;
	const char *why;
	ssize_t n;

	if (a->eof)
		return 0;
	n = recv(a->remote, buf, sizeof(buf), MSG_DONTWAIT);
	if (n < 0 && errno == EAGAIN)
		return 0;
	/* Closed with our messages unread: end of file comes next. */
	if (n < 0 && errno == ECONNRESET && a->closed)
		return 0;
	if (n < 0)
		fz_fail("channel %u of OP_LOOPS: peer recv: %s", a->id,
			strerror(errno));
	if (!n) {
		if (!a->closed)
			fz_fail("channel %u of OP_LOOPS: end of file before the library's end was closed",
				a->id);
		a->eof = true;
		return 0;
	}
	memcpy(&h, buf, sizeof(h));
	if (a->reset)
		fz_fail("channel %u of OP_LOOPS: a datagram after the reset notice",
			a->id);
	if (n == TEST_WIRE_HDR_LEN && h.flags == AUX_F_RESET && !h.len &&
	    !h.nr_fds) {
		if (!a->closed || a->rx == a->tx)
			fz_fail("channel %u of OP_LOOPS: a reset notice, %s, %u of %u delivered",
				a->id, a->closed ? "closed" : "open", a->rx,
				a->tx);
		a->reset = true;
		return 1;
	}
	why = test_wire_check(&split, buf, n, 0, a->max_msg, true);
	if (why)
		fz_fail("channel %u of OP_LOOPS: library sent a bad datagram (%zd bytes): %s",
			a->id, n, why);
	while (test_wire_next(&split, &m)) {
		if (a->lrx >= a->ltx)
			fz_fail("channel %u of OP_LOOPS: the peer read message %u, %u sent (another loop's?)",
				a->id, a->lrx, a->ltx);
		if (m.len != aux_len(a->id, a->lrx, true) ||
		    !check_pattern(m.data, m.len,
				   aux_seed(a->id, a->lrx, true)))
			fz_fail("channel %u of OP_LOOPS: library message %u is not the one sent",
				a->id, a->lrx);
		a->lrx++;
	}
	return 1;
}

/* One round of waiting for these channels: every loop gets a turn. */
static void multi_turn(struct fz *fz)
{
	struct fz_loop *fl = multi_fl;

	if (fl->ring) {
		fz_ring_turn(fl, 1);
		loop_dispatch(fl->loop, 0);
		multi_dispatch(fl);
	} else {
		fz_dispatch(fz, 1);
	}
}

static bool aux_settled(void)
{
	unsigned int i;
	bool done = true;

	for (i = 0; i < nr_aux; i++) {
		while (aux_peer_read(&auxs[i]))
			;
		if (!auxs[i].closed &&
		    (auxs[i].rx != auxs[i].tx || auxs[i].lrx != auxs[i].ltx))
			done = false;
		if (auxs[i].closed && !auxs[i].eof)
			done = false;
	}
	return done;
}

static void aux_close(struct fz_aux *a, bool do_free)
{
	if (a->closed)
		return;
	a->closed = true;
	if (do_free) {
		ipcsock_free(a->sock);
		a->freed = true;
	} else {
		ipcsock_close(a->sock);
		if (ipcsock_is_bound(a->sock))
			fz_fail("channel %u of OP_LOOPS: bound after ipcsock_close",
				a->id);
	}
}

/* At exit: what the expensive parts cost this process. */
void multi_totals(void)
{
	fprintf(stderr,
		"fuzz-peer: %lu loops made, %lu of them burned in %llu ms\n",
		loops_made, loops_burned, (unsigned long long)burn_ms);
}

void multi_state(void)
{
	unsigned int i;

	fprintf(stderr,
		"fuzz-peer: loops made %lu (%lu burned in %llu ms); next loop number %lu\n",
		loops_made, loops_burned, (unsigned long long)burn_ms,
		(loops_made + 1) & 0xffff);
	if (multi_fl && multi_fl->ring)
		fprintf(stderr, "fuzz-peer:   %s: loop number %u\n",
			multi_fl->name, multi_fl->number);
	for (i = 0; i < nr_sibs; i++)
		fprintf(stderr,
			"fuzz-peer:   OP_LOOPS loop %u: loop number %u, %lu CQEs handed over\n",
			i, sibs[i].number, sibs[i].cqes);
	for (i = 0; i < nr_aux; i++)
		fprintf(stderr,
			"fuzz-peer:   channel %u (loop %d): peer sent %u, received %u; library sent %u, peer read %u%s%s%s\n",
			i, auxs[i].sib, auxs[i].tx, auxs[i].rx, auxs[i].ltx,
			auxs[i].lrx, auxs[i].closed ? ", closed" : "",
			auxs[i].reset ? ", reset notice" : "",
			auxs[i].eof ? ", end of file" : "");
}

/*
 * The end of the input: every message of these channels arrived, then
 * closing each gives the peer end of file, every loop of OP_LOOPS gets
 * idle and is freed.
 */
void multi_end(struct fz *fz)
{
	uint64_t end = now_ms() + FZ_SETTLE_MS;
	unsigned int i;
	bool idle;

	if (multi_fl != fz->fl)
		return;
	if (multi_fl->ring)
		app_chain_end(multi_fl, false);
	while (!aux_settled()) {
		if (now_ms() > end) {
			multi_state();
			fz_fail("OP_LOOPS: channels not settled");
		}
		multi_turn(fz);
	}
	for (i = 0; i < nr_aux; i++)
		aux_close(&auxs[i], false);
	end = now_ms() + FZ_SETTLE_MS;
	for (;;) {
		idle = aux_settled();
		for (i = 0; i < nr_sibs; i++)
			idle = idle && ipcsock_loop_idle(sibs[i].loop);
		if (idle)
			break;
		if (now_ms() > end) {
			multi_state();
			fz_fail("OP_LOOPS: a closed channel gave no end of file, or a loop is not idle");
		}
		multi_turn(fz);
	}
	for (i = 0; i < nr_aux; i++) {
		if (auxs[i].lrx > auxs[i].ltx)
			fz_fail("channel %u of OP_LOOPS: more read than sent", i);
		if (!auxs[i].freed)
			ipcsock_free(auxs[i].sock);
		close(auxs[i].remote);
	}
	for (i = 0; i < nr_sibs; i++)
		ipcsock_loop_free(sibs[i].loop);
	nr_aux = 0;
	nr_sibs = 0;
	multi_fl = NULL;
}

/*
 * OP_LOOPS [b]: loops and channels beside the conversation's; they live
 * until the end of the input (multi_end()).
 *   arg bits 0-1: 0: (b & 3) + 1 more loops like the input's, on its ring
 *                    if it is shared, each with a channel (b bit 2:
 *                    made by ipcsock_create(), b bit 3: small options)
 *                 1: a channel on the input's loop (b & 7 = 0) or on
 *                    loop (b & 7) - 1 of these (b bit 3: create)
 *                 2: on each channel the peer sends b & 3 messages and
 *                    the library b >> 2 & 3
 *                 3: close every channel (b bit 0: ipcsock_free)
 *   arg bit 2:    first make and free (b >> 4) + 1 epoll loops (which a
 *                 plain counter counts too)
 *   arg bit 3:    first bring the loop counter round to the input's
 *                 loop's number (burn_to()), on a shared ring
 */
void op_loops(struct fz *fz, struct fz_in *in, unsigned int arg)
{
	struct fz_loop *fl = fz->fl;
	unsigned int b = in_u8(in), i, n;
	int sib;

	if (multi_fl && multi_fl != fl)
		fz_fail("harness: OP_LOOPS state of another loop");
	multi_fl = fl;
	/* The library's fds would not fit under a low RLIMIT_NOFILE. */
	if (fz->nofile_low)
		return;
	if (arg & 4)
		burn_loops((b >> 4) + 1, false);
	if ((arg & 8) && fl->ring)
		burn_to(fl->number);
	switch (arg & 3) {
	case 0:
		for (n = 0; n <= (b & 3) && nr_sibs < FZ_SIB_MAX; n++) {
			sib_new(fl, b & 8);
			if (nr_aux < FZ_AUX_MAX)
				aux_new(fl, nr_sibs - 1, b & 4);
		}
		break;
	case 1:
		sib = (int)(b & 7) - 1;
		if (sib >= (int)nr_sibs)
			sib = -1;
		if (nr_aux < FZ_AUX_MAX)
			aux_new(fl, sib, b & 8);
		break;
	case 2:
		for (i = 0; i < nr_aux; i++) {
			for (n = 0; n < (b & 3); n++)
				aux_peer_send(&auxs[i]);
			for (n = 0; n < ((b >> 2) & 3); n++)
				aux_lib_send(fl, &auxs[i]);
		}
		break;
	default:
		for (i = 0; i < nr_aux; i++)
			aux_close(&auxs[i], b & 1);
		break;
	}
}
