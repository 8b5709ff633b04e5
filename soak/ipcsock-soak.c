// SPDX-License-Identifier: MIT
/*
 * ipcsock-soak - two processes talk through libipcsock for a while, and
 * every message, every fd and every byte is checked; fd count, RSS and
 * heap are sampled each second. soak/README.md says how.
 *
 * Exit status: 0 when every round passed, 1 on any failure, 2 on bad use.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <malloc.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <ipcsock.h>

#define SOAK_MAGIC		0x4b414f53u	/* "SOAK" */
#define SOAK_FD_MAGIC		0x44464b53u	/* "SKFD" */
#define SOAK_HDR_LEN		32u
/* Messages, bytes and fds one send_batch call carries at most. */
#define SOAK_MAX_BATCH		64u
#define SOAK_BATCH_BYTES	(1u << 20)
#define SOAK_BATCH_FDS		1024u
/* The usual fd count is 0..SOAK_SMALL_FDS. */
#define SOAK_SMALL_FDS		8u
/*
 * After the warm-up, the bytes malloc has handed out may grow by
 * SOAK_HEAP_SLACK (send slots growing to the largest control message they
 * carried: at most 1 KiB each), RSS by SOAK_RSS_SLACK. RSS also counts
 * what fragmentation keeps mapped: send slots that grow in steps of a few
 * hundred bytes free and reallocate 64-256 KiB each time, and glibc's
 * heap creeps up by a few MiB before it levels off (measured: up to
 * +3.8 MiB in a 75 s round of 256 KiB messages, with the malloc'd bytes
 * flat). The malloc'd bytes are the precise leak check; RSS catches what
 * malloc does not see.
 */
#define SOAK_HEAP_SLACK		(512ull << 10)
#define SOAK_RSS_SLACK		(8ull << 20)

/*
 * AddressSanitizer keeps freed memory in quarantine (256 MiB by default)
 * and has its own allocator: RSS grows by design and mallinfo2() says
 * nothing. Memory is not bounded then; LeakSanitizer looks at exit.
 */
#if defined(__SANITIZE_ADDRESS__)
#define SOAK_MEM_CHECKS		0
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define SOAK_MEM_CHECKS		0
#endif
#endif
#ifndef SOAK_MEM_CHECKS
#define SOAK_MEM_CHECKS		1
#endif
/* Time a round may take beyond its deadline to wind down. */
#define SOAK_GRACE_MS		5000u
#define SOAK_SAMPLE_MS		1000u
/* Leaked fds named in a failure report, at most. */
#define SOAK_LEAKS_SHOWN	8u
#define SOAK_REC_BYTES		16384u	/* a record's bytes at most */
#define SOAK_MAX_INHERITED	64u

enum soak_type {
	SOAK_DATA = 1,
	SOAK_END,
	SOAK_BYE,
};

/* A direction names its sender. */
enum soak_dir {
	DIR_FROM_PARENT = 0,
	DIR_FROM_PEER = 1,
};

enum soak_mode {
	MODE_FLOOD,	/* send, dispatch(0), send again */
	MODE_STEADY,	/* a batch per dispatch of up to 1 ms */
	MODE_IDLE,	/* only receive */
};

struct soak_hdr {
	uint32_t magic;
	uint16_t type;
	uint16_t dir;
	uint64_t seq;
	uint32_t len;
	uint32_t nr_fds;
	uint32_t csum;		/* FNV-1a of the bytes after the header */
	uint32_t reserved;
};

_Static_assert(sizeof(struct soak_hdr) == SOAK_HDR_LEN, "header size");

/* The content of every memfd a message carries. */
struct soak_fd_id {
	uint32_t magic;
	uint16_t dir;
	uint16_t idx;
	uint64_t seq;
	uint32_t nr_fds;
	uint32_t reserved;
};

struct soak_plan {
	uint32_t len;
	uint32_t nr_fds;
	uint32_t off;		/* of the bytes after the header, in the pool */
};

struct soak_dir_stats {
	uint64_t msgs;
	uint64_t bytes;
	uint64_t fds;
	uint64_t calls;		/* send/send_batch calls, or callbacks */
};

/* What one process saw in one round; the peer's travels in its END. */
struct soak_report {
	struct soak_dir_stats tx;
	struct soak_dir_stats rx;
	uint64_t enobufs;
	uint64_t pauses;
	uint64_t rss_min;
	uint64_t rss_max;
	uint64_t rss_warm;
	uint64_t heap_max;
	uint64_t heap_warm;
	uint32_t fd_max;
	uint32_t fd_other;	/* fds other than message memfds, after warm-up */
	uint32_t samples;
	uint32_t failures;
};

struct soak_cfg {
	const char *name;
	enum ipcsock_backend backend[2];	/* parent, peer */
	unsigned int flags;
	unsigned int max_msg_size;
	unsigned int send_queue_len;
	unsigned int recv_buffers;
};

static const struct soak_cfg soak_rounds[] = {
	{
		.name = "io_uring -> epoll",
		.backend = { IPCSOCK_BACKEND_URING, IPCSOCK_BACKEND_EPOLL },
	},
	{
		.name = "epoll -> io_uring",
		.backend = { IPCSOCK_BACKEND_EPOLL, IPCSOCK_BACKEND_URING },
	},
	{
		.name = "io_uring ring-sends -> io_uring ring-sends",
		.backend = { IPCSOCK_BACKEND_URING, IPCSOCK_BACKEND_URING },
		.flags = IPCSOCK_LOOP_RING_SENDS,
	},
	{
		.name = "io_uring -> io_uring, 256 KiB messages, short queues",
		.backend = { IPCSOCK_BACKEND_URING, IPCSOCK_BACKEND_URING },
		.max_msg_size = 256u << 10,
		.send_queue_len = 64,
		.recv_buffers = 8,
	},
};

#define ARRAY_SIZE(a)	(sizeof(a) / sizeof((a)[0]))
#define NR_ROUNDS	ARRAY_SIZE(soak_rounds)

/* One side of the conversation. */
struct soak_ep {
	const char *who;
	bool is_peer;
	struct ipcsock_loop *loop;
	struct ipcsock *sock;
	uint64_t seed;
	uint64_t rng;
	bool verbose;
	unsigned int out, in;		/* enum soak_dir */
	unsigned int max_msg;
	unsigned int queue_len;
	unsigned int recv_bufs;
	unsigned int rx_per_buf;	/* messages in one receive buffer */
	unsigned int max_fds;
	unsigned char *pool;		/* message bytes come from here */
	uint64_t prime;			/* messages before this are large */
	uint64_t prime_end;		/* the first pause ends */
	unsigned int prime_ms;

	/* Sending: a batch is built, then retried until it is accepted. */
	unsigned char *arena;
	int *fds;
	struct ipcsock_payload pl[SOAK_MAX_BATCH];
	unsigned int nr_pl;
	unsigned int nr_fds;
	bool single;			/* ipcsock_send rather than _batch */
	uint64_t tx_seq;		/* next sequence number to send */
	enum soak_mode mode;
	uint64_t mode_end;
	bool stop;			/* no more data: send END */
	bool end_sent;
	bool bye_due;
	bool bye_sent;

	/* Receiving. */
	uint64_t rx_seq;		/* next sequence number expected */
	bool paused;
	uint64_t pause_end;
	uint64_t next_pause_roll;
	bool end_seen;
	bool finished;
	struct soak_report peer_rep;

	/* Sampling. */
	uint64_t t0;
	uint64_t warm_end;
	uint64_t next_sample;
	bool warm;
	struct soak_report rep;
};

static pid_t soak_child = -1;

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void fail(struct soak_ep *ep, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "ipcsock-soak: %s: FAIL: ", ep->who);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	ep->rep.failures++;
}

/* splitmix64's finaliser: message plans and the byte pool. */
static uint64_t mix64(uint64_t x)
{
	x += 0x9e3779b97f4a7c15ull;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
	return x ^ (x >> 31);
}

/* xorshift64*: the behaviour of one side (timing, batches, pauses). */
static uint64_t rnd(struct soak_ep *ep)
{
	ep->rng ^= ep->rng >> 12;
	ep->rng ^= ep->rng << 25;
	ep->rng ^= ep->rng >> 27;
	return ep->rng * 0x2545f4914f6cdd1dull;
}

static uint32_t fnv1a(const unsigned char *p, size_t len)
{
	uint32_t h = 0x811c9dc5u;

	while (len--) {
		h ^= *p++;
		h *= 0x01000193u;
	}
	return h;
}

/* What message @seq of direction @dir is: a function of the seed. */
static void plan_msg(const struct soak_ep *ep, unsigned int dir, uint64_t seq,
		     struct soak_plan *p)
{
	uint64_t r1 = mix64(ep->seed ^ mix64(seq << 1 | dir));
	uint64_t r2 = mix64(r1), r3 = mix64(r2);
	unsigned int sel = r1 % 16, n;

	if (seq < ep->prime)
		p->len = ep->max_msg;
	else if (sel == 0)
		p->len = 0;
	else if (sel == 1)
		p->len = ep->max_msg;
	else if (sel <= 8)
		p->len = r2 % (2 * SOAK_HDR_LEN + 1);
	else if (sel <= 12)
		p->len = r2 % 4097;
	else
		p->len = r2 % (ep->max_msg + 1ull);
	if (p->len > ep->max_msg)
		p->len = ep->max_msg;

	if (r3 % 1024 == 0)
		n = ep->max_fds;
	else if (r3 % 256 == 1)
		n = SOAK_SMALL_FDS + 1 +
		    (r3 >> 16) % (ep->max_fds - SOAK_SMALL_FDS);
	else
		n = (r3 >> 16) % (SOAK_SMALL_FDS + 1);
	if (!p->len && !n)
		n = 1;
	p->nr_fds = n;
	p->off = (r3 >> 40) % (ep->max_msg + 1ull);
}

static void make_hdr(struct soak_hdr *h, unsigned int type, unsigned int dir,
		     uint64_t seq, uint32_t len, uint32_t nr_fds,
		     uint32_t csum)
{
	memset(h, 0, sizeof(*h));
	h->magic = SOAK_MAGIC;
	h->type = type;
	h->dir = dir;
	h->seq = seq;
	h->len = len;
	h->nr_fds = nr_fds;
	h->csum = csum;
}

/* Write message @seq of our direction into @buf; returns its plan. */
static void build_msg(struct soak_ep *ep, uint64_t seq, unsigned char *buf,
		      struct soak_plan *p)
{
	struct soak_hdr h;
	uint32_t csum;

	plan_msg(ep, ep->out, seq, p);
	if (p->len >= SOAK_HDR_LEN) {
		memcpy(buf + SOAK_HDR_LEN, ep->pool + p->off,
		       p->len - SOAK_HDR_LEN);
		csum = fnv1a(buf + SOAK_HDR_LEN, p->len - SOAK_HDR_LEN);
	} else {
		csum = fnv1a(NULL, 0);
	}
	make_hdr(&h, SOAK_DATA, ep->out, seq, p->len, p->nr_fds, csum);
	memcpy(buf, &h, p->len < SOAK_HDR_LEN ? p->len : SOAK_HDR_LEN);
}

static int make_memfd(struct soak_ep *ep, uint64_t seq, unsigned int idx,
		      unsigned int nr_fds)
{
	struct soak_fd_id id = {
		.magic = SOAK_FD_MAGIC,
		.dir = ep->out,
		.idx = idx,
		.seq = seq,
		.nr_fds = nr_fds,
	};
	char name[64];
	int fd;

	snprintf(name, sizeof(name), "soak.%u.%" PRIu64 ".%u", ep->out, seq,
		 idx);
	fd = memfd_create(name, MFD_CLOEXEC);
	if (fd < 0) {
		fail(ep, "memfd_create: %s", strerror(errno));
		return -1;
	}
	if (pwrite(fd, &id, sizeof(id), 0) != sizeof(id)) {
		fail(ep, "memfd write: %s", strerror(errno));
		close(fd);
		return -1;
	}
	return fd;
}

static void close_pending_fds(struct soak_ep *ep)
{
	unsigned int i;

	for (i = 0; i < ep->nr_fds; i++)
		close(ep->fds[i]);
	ep->nr_fds = 0;
}

/* Drop a built batch that was never accepted: its numbers are reused. */
static void discard_pending(struct soak_ep *ep)
{
	close_pending_fds(ep);
	ep->nr_pl = 0;
}

/* Build the next batch: one message for ipcsock_send, or 1..64. */
static int build_batch(struct soak_ep *ep)
{
	unsigned int want, i, j;
	size_t bytes = 0;
	struct soak_plan p;

	ep->single = rnd(ep) % 2;
	want = ep->single ? 1 : 1 + rnd(ep) % SOAK_MAX_BATCH;
	ep->nr_pl = 0;
	ep->nr_fds = 0;
	for (i = 0; i < want; i++) {
		uint64_t seq = ep->tx_seq + i;
		unsigned char *buf = ep->arena + bytes;

		plan_msg(ep, ep->out, seq, &p);
		if (i && (bytes + p.len > SOAK_BATCH_BYTES ||
			  ep->nr_fds + p.nr_fds > SOAK_BATCH_FDS))
			break;
		build_msg(ep, seq, buf, &p);
		ep->pl[i].data = p.len ? buf : NULL;
		ep->pl[i].len = p.len;
		ep->pl[i].fds = p.nr_fds ? ep->fds + ep->nr_fds : NULL;
		ep->pl[i].nr_fds = p.nr_fds;
		for (j = 0; j < p.nr_fds; j++) {
			int fd = make_memfd(ep, seq, j, p.nr_fds);

			if (fd < 0) {
				close_pending_fds(ep);
				return -1;
			}
			ep->fds[ep->nr_fds++] = fd;
		}
		bytes += p.len;
		ep->nr_pl++;
	}
	return 0;
}

/* Offer the built batch; -ENOBUFS leaves it for the next try. */
static int send_pending(struct soak_ep *ep)
{
	unsigned int i;
	int ret;

	if (ep->single)
		ret = ipcsock_send(ep->sock, &ep->pl[0]);
	else
		ret = ipcsock_send_batch(ep->sock, ep->pl, ep->nr_pl);
	if (ret == -ENOBUFS) {
		ep->rep.enobufs++;
		return ret;
	}
	if (ret < 0) {
		fail(ep, "%s of %u messages from %" PRIu64 ": %s",
		     ep->single ? "send" : "send_batch", ep->nr_pl,
		     ep->tx_seq, strerror(-ret));
		return ret;
	}
	if (!ep->single && (unsigned int)ret != ep->nr_pl) {
		fail(ep, "send_batch of %u returned %d", ep->nr_pl, ret);
		return -EPROTO;
	}
	for (i = 0; i < ep->nr_pl; i++) {
		ep->rep.tx.bytes += ep->pl[i].len;
		ep->rep.tx.fds += ep->pl[i].nr_fds;
	}
	ep->rep.tx.msgs += ep->nr_pl;
	ep->rep.tx.calls++;
	ep->tx_seq += ep->nr_pl;
	/* The library has its own references now. */
	close_pending_fds(ep);
	ep->nr_pl = 0;
	return 0;
}

/* END (with this side's report) or BYE, numbered like the data. */
static int send_ctrl(struct soak_ep *ep, unsigned int type)
{
	unsigned char *buf = ep->arena;
	struct ipcsock_payload pl = { .data = buf };
	struct soak_hdr h;
	uint32_t len = SOAK_HDR_LEN;
	int ret;

	if (type == SOAK_END) {
		memcpy(buf + SOAK_HDR_LEN, &ep->rep, sizeof(ep->rep));
		len += sizeof(ep->rep);
	}
	make_hdr(&h, type, ep->out, ep->tx_seq, len, 0,
		 fnv1a(buf + SOAK_HDR_LEN, len - SOAK_HDR_LEN));
	memcpy(buf, &h, sizeof(h));
	pl.len = len;
	ret = ipcsock_send(ep->sock, &pl);
	if (ret == -ENOBUFS) {
		ep->rep.enobufs++;
		return ret;
	}
	if (ret < 0) {
		fail(ep, "send of %s: %s", type == SOAK_END ? "END" : "BYE",
		     strerror(-ret));
		return ret;
	}
	ep->tx_seq++;
	return 0;
}

static void on_ready(struct ipcsock *sock, void *arg);

static void pause_rx(struct soak_ep *ep, uint64_t until)
{
	ep->paused = true;
	ep->pause_end = until;
	ep->rep.pauses++;
	ipcsock_set_ready_read(ep->sock, NULL, NULL);
}

static void resume_rx(struct soak_ep *ep)
{
	ep->paused = false;
	ipcsock_set_ready_read(ep->sock, on_ready, ep);
}

/* Check one received fd against what message @seq must carry. */
static void check_fd(struct soak_ep *ep, int fd, uint64_t seq,
		     unsigned int idx, unsigned int nr_fds)
{
	struct soak_fd_id id;
	struct stat st;
	int flags;

	flags = fcntl(fd, F_GETFD);
	if (flags < 0) {
		fail(ep, "message %" PRIu64 " fd %u (%d): %s", seq, idx, fd,
		     strerror(errno));
		return;
	}
	if (!(flags & FD_CLOEXEC))
		fail(ep, "message %" PRIu64 " fd %u: no FD_CLOEXEC", seq, idx);
	if (fstat(fd, &st) || !S_ISREG(st.st_mode) ||
	    st.st_size != sizeof(id) ||
	    pread(fd, &id, sizeof(id), 0) != sizeof(id)) {
		fail(ep, "message %" PRIu64 " fd %u: not one of our memfds",
		     seq, idx);
		return;
	}
	if (id.magic != SOAK_FD_MAGIC || id.dir != ep->in || id.seq != seq ||
	    id.idx != idx || id.nr_fds != nr_fds)
		fail(ep, "message %" PRIu64 " fd %u carries the memfd of message %" PRIu64 " fd %u of %u (direction %u)",
		     seq, idx, id.seq, id.idx, id.nr_fds, id.dir);
}

static void check_data(struct soak_ep *ep, const struct ipcsock_payload *m)
{
	const unsigned char *data = m->data;
	uint64_t seq = ep->rx_seq;
	struct soak_hdr h, want;
	struct soak_plan p;
	unsigned int i;
	uint32_t csum;

	if (ep->end_seen) {
		fail(ep, "a message of %zu bytes + %u fds after END", m->len,
		     m->nr_fds);
		return;
	}
	plan_msg(ep, ep->in, seq, &p);
	if (m->len >= SOAK_HDR_LEN) {
		memcpy(&h, data, sizeof(h));
		if (h.magic == SOAK_MAGIC && h.dir == ep->in && h.seq != seq) {
			fail(ep, "got message %" PRIu64 " where %" PRIu64 " was due: %s",
			     h.seq, seq, h.seq > seq ? "messages lost" :
			     "reordered or duplicated");
			return;
		}
	}
	if (m->len != p.len || m->nr_fds != p.nr_fds) {
		fail(ep, "message %" PRIu64 ": %zu bytes + %u fds, sent as %u + %u (lost, reordered or truncated)",
		     seq, m->len, m->nr_fds, p.len, p.nr_fds);
		return;
	}
	if (m->len >= SOAK_HDR_LEN) {
		csum = fnv1a(data + SOAK_HDR_LEN, m->len - SOAK_HDR_LEN);
		make_hdr(&want, SOAK_DATA, ep->in, seq, p.len, p.nr_fds, csum);
		if (memcmp(&h, &want, sizeof(h)))
			fail(ep, "message %" PRIu64 ": bad header (checksum %08x, computed %08x)",
			     seq, h.csum, csum);
		else if (memcmp(data + SOAK_HDR_LEN, ep->pool + p.off,
				m->len - SOAK_HDR_LEN))
			fail(ep, "message %" PRIu64 ": bytes differ", seq);
	} else if (m->len) {
		make_hdr(&want, SOAK_DATA, ep->in, seq, p.len, p.nr_fds,
			 fnv1a(NULL, 0));
		if (memcmp(data, &want, m->len))
			fail(ep, "message %" PRIu64 ": its %zu bytes differ",
			     seq, m->len);
	}
	for (i = 0; i < m->nr_fds; i++)
		check_fd(ep, m->fds[i], seq, i, m->nr_fds);
	ep->rep.rx.msgs++;
	ep->rep.rx.bytes += m->len;
	ep->rep.rx.fds += m->nr_fds;
}

static void check_ctrl(struct soak_ep *ep, const struct ipcsock_payload *m,
		       const struct soak_hdr *h)
{
	const unsigned char *data = m->data;
	uint32_t csum = fnv1a(data + SOAK_HDR_LEN, m->len - SOAK_HDR_LEN);
	const char *what = h->type == SOAK_END ? "END" : "BYE";

	if (h->seq != ep->rx_seq || h->dir != ep->in || h->len != m->len ||
	    h->nr_fds || m->nr_fds || h->csum != csum) {
		fail(ep, "bad control message (type %u, message %" PRIu64 ", %" PRIu64 " due)",
		     h->type, h->seq, ep->rx_seq);
		return;
	}
	if (h->type == SOAK_END && !ep->end_seen &&
	    m->len == SOAK_HDR_LEN + sizeof(ep->peer_rep)) {
		memcpy(&ep->peer_rep, data + SOAK_HDR_LEN,
		       sizeof(ep->peer_rep));
		ep->end_seen = true;
		if (ep->is_peer)
			ep->stop = true;
		else if (!ep->end_sent)
			fail(ep, "the peer sent END first");
		else
			ep->bye_due = true;
	} else if (h->type == SOAK_BYE && ep->is_peer && ep->end_sent &&
		   m->len == SOAK_HDR_LEN) {
		ep->finished = true;
	} else {
		fail(ep, "unexpected %s (type %u)", what, h->type);
	}
}

static void on_ready(struct ipcsock *sock, void *arg)
{
	struct soak_ep *ep = arg;
	struct ipcsock_payload m;
	unsigned int limit = ~0u, i;
	struct soak_hdr h;
	int ret;

	ep->rep.rx.calls++;
	/* Now and then leave messages behind for the next dispatch. */
	if (rnd(ep) % 4 == 0)
		limit = 1 + rnd(ep) % 8;
	while (limit-- && !ep->rep.failures) {
		ret = ipcsock_receive(sock, &m);
		if (ret == -EAGAIN)
			break;
		if (ret < 0) {
			fail(ep, "receive: %s", strerror(-ret));
			break;
		}
		if (m.len >= SOAK_HDR_LEN)
			memcpy(&h, m.data, sizeof(h));
		if (m.len >= SOAK_HDR_LEN && h.magic == SOAK_MAGIC &&
		    h.type != SOAK_DATA)
			check_ctrl(ep, &m, &h);
		else
			check_data(ep, &m);
		for (i = 0; i < m.nr_fds; i++)
			close(m.fds[i]);
		ep->rx_seq++;
	}
}

static void on_hangup(struct ipcsock *sock, int err, void *arg)
{
	struct soak_ep *ep = arg;

	(void)sock;
	if (!ep->is_peer && ep->bye_sent && !err) {
		ep->finished = true;
		return;
	}
	fail(ep, "hangup(%d%s%s) %s", err, err ? ": " : "",
	     err ? strerror(-err) : "",
	     ep->is_peer ? "from the parent" : "before the peer's END and BYE");
}

/* ---------------------------------------------------------------------- */
/* Sampling: /proc/self/fd and RSS. */

struct soak_census {
	unsigned int total;
	unsigned int memfds;	/* of our messages */
	unsigned int other;
	unsigned int stale;	/* memfds the library should not hold */
};

/*
 * May this process hold this message memfd now? Ours while the library
 * may still have the message queued (the newest queue_len accepted, or
 * the batch not yet accepted); the peer's while the message is received
 * but not yet delivered: at most recv_bufs datagrams, each one message
 * or a record of up to rx_per_buf of them (README, "Wire format").
 */
static bool memfd_expected(const struct soak_ep *ep, unsigned int dir,
			   uint64_t seq)
{
	if (dir == ep->out)
		return seq + ep->queue_len >= ep->tx_seq;
	if (dir == ep->in)
		return seq >= ep->rx_seq &&
		       seq < ep->rx_seq + (uint64_t)ep->recv_bufs *
				     ep->rx_per_buf;
	return false;
}

static int census(struct soak_ep *ep, struct soak_census *c, bool report)
{
	struct dirent *de;
	char link[256];
	unsigned int dir, idx;
	uint64_t seq;
	ssize_t n;
	DIR *d;
	int dfd;

	memset(c, 0, sizeof(*c));
	d = opendir("/proc/self/fd");
	if (!d) {
		fail(ep, "/proc/self/fd: %s", strerror(errno));
		return -1;
	}
	dfd = dirfd(d);
	while ((de = readdir(d))) {
		if (de->d_name[0] == '.' || atoi(de->d_name) == dfd)
			continue;
		c->total++;
		n = readlinkat(dfd, de->d_name, link, sizeof(link) - 1);
		link[n < 0 ? 0 : n] = '\0';
		if (sscanf(link, "/memfd:soak.%u.%" SCNu64 ".%u", &dir, &seq,
			   &idx) != 3) {
			c->other++;
			continue;
		}
		c->memfds++;
		if (memfd_expected(ep, dir, seq))
			continue;
		if (report && c->stale < SOAK_LEAKS_SHOWN)
			fail(ep, "fd leak: fd %s is %s (tx next %" PRIu64 ", rx next %" PRIu64 ")",
			     de->d_name, link, ep->tx_seq, ep->rx_seq);
		c->stale++;
	}
	closedir(d);
	return 0;
}

static uint64_t rss_bytes(void)
{
	unsigned long size = 0, resident = 0;
	FILE *f = fopen("/proc/self/statm", "r");

	if (!f)
		return 0;
	if (fscanf(f, "%lu %lu", &size, &resident) != 2)
		resident = 0;
	fclose(f);
	return (uint64_t)resident * sysconf(_SC_PAGESIZE);
}

/* Bytes in use from malloc; 0 where the allocator does not say (ASan). */
static uint64_t heap_bytes(void)
{
	struct mallinfo2 mi = mallinfo2();

	return mi.uordblks + mi.hblkhd;
}

static double mib(uint64_t b)
{
	return b / (1024.0 * 1024.0);
}

static void sample(struct soak_ep *ep, uint64_t now)
{
	struct soak_report *r = &ep->rep;
	struct soak_census c;
	uint64_t rss, heap;

	if (census(ep, &c, true))
		return;
	rss = rss_bytes();
	heap = heap_bytes();
	if (heap > r->heap_max)
		r->heap_max = heap;
	if (c.stale > SOAK_LEAKS_SHOWN)
		fail(ep, "fd leak: %u message memfds in all", c.stale);
	if (!r->samples || rss < r->rss_min)
		r->rss_min = rss;
	if (rss > r->rss_max)
		r->rss_max = rss;
	if (c.total > r->fd_max)
		r->fd_max = c.total;
	r->samples++;
	if (ep->verbose)
		fprintf(stderr, "  %-6s %3" PRIu64 " s: fds %u (%u memfds), RSS %.1f MiB, heap %.2f MiB, rx %" PRIu64 ", tx %" PRIu64 "%s\n",
			ep->who, (now - ep->t0) / 1000, c.total, c.memfds,
			mib(rss), mib(heap), ep->rx_seq, ep->tx_seq,
			ep->warm ? "" : " (warm-up)");
	if (!ep->warm) {
		if (now >= ep->warm_end) {
			ep->warm = true;
			r->fd_other = c.other;
			r->rss_warm = rss;
			r->heap_warm = heap;
		}
	} else {
		if (c.other != r->fd_other)
			fail(ep, "%u fds besides message memfds, %u at the end of the warm-up",
			     c.other, r->fd_other);
		if (SOAK_MEM_CHECKS && rss > r->rss_warm + SOAK_RSS_SLACK)
			fail(ep, "RSS grew from %.1f MiB to %.1f MiB after the warm-up",
			     mib(r->rss_warm), mib(rss));
		if (SOAK_MEM_CHECKS && heap > r->heap_warm + SOAK_HEAP_SLACK)
			fail(ep, "malloc'd memory grew from %.2f MiB to %.2f MiB after the warm-up",
			     mib(r->heap_warm), mib(heap));
	}
	while (ep->next_sample <= now)
		ep->next_sample += SOAK_SAMPLE_MS;
}

/* ---------------------------------------------------------------------- */

static void behave(struct soak_ep *ep, uint64_t now)
{
	unsigned int r;

	if (now < ep->prime_end) {
		ep->mode = MODE_FLOOD;
	} else if (now >= ep->mode_end) {
		r = rnd(ep) % 8;
		ep->mode = r < 4 ? MODE_FLOOD : r < 7 ? MODE_STEADY : MODE_IDLE;
		ep->mode_end = now + 50 + rnd(ep) % 450;
	}
	if (ep->paused && (ep->stop || now >= ep->pause_end))
		resume_rx(ep);
	if (!ep->paused && !ep->stop && now >= ep->next_pause_roll) {
		ep->next_pause_roll = now + 100;
		if (rnd(ep) % 8 == 0)
			pause_rx(ep, now + 10 + rnd(ep) % 290);
	}
}

/*
 * Send and receive until the conversation is over: the peer when BYE has
 * come, the parent when the peer hung up after BYE. The parent stops
 * sending at @deadline; both give up at @hard_deadline.
 */
static void ep_run(struct soak_ep *ep, uint64_t deadline,
		   uint64_t hard_deadline)
{
	uint64_t now;
	int timeout, ret;

	/*
	 * Prime: both sides start deaf and send only the largest messages,
	 * so that both send queues fill to their bound and every receive
	 * buffer is written whole before the warm-up ends. The library's
	 * memory is then at its high-water mark, and what RSS does later
	 * says whether anything leaks.
	 */
	ep->prime_end = now_ms() + ep->prime_ms;
	pause_rx(ep, ep->prime_end);
	ipcsock_set_hangup(ep->sock, on_hangup, ep);
	while (!ep->finished && !ep->rep.failures) {
		now = now_ms();
		if (now >= ep->next_sample)
			sample(ep, now);
		if (ep->rep.failures)
			break;
		if (now >= hard_deadline) {
			fail(ep, "the round did not end in time (sent %" PRIu64 ", received %" PRIu64 "%s%s)",
			     ep->tx_seq, ep->rx_seq,
			     ep->end_sent ? ", END sent" : "",
			     ep->end_seen ? ", END received" : "");
			break;
		}
		if (!ep->is_peer && !ep->stop && now >= deadline)
			ep->stop = true;
		behave(ep, now);

		timeout = 20;
		if (ep->stop) {
			if (ep->nr_pl)
				discard_pending(ep);
			if (!ep->end_sent) {
				ret = send_ctrl(ep, SOAK_END);
				if (!ret)
					ep->end_sent = true;
				else if (ret != -ENOBUFS)
					break;
			} else if (ep->bye_due && !ep->bye_sent) {
				ret = send_ctrl(ep, SOAK_BYE);
				if (!ret)
					ep->bye_sent = true;
				else if (ret != -ENOBUFS)
					break;
			}
		} else if (ep->mode != MODE_IDLE) {
			if (!ep->nr_pl && build_batch(ep))
				break;
			ret = send_pending(ep);
			if (ret && ret != -ENOBUFS)
				break;
			if (!ret)
				timeout = ep->mode == MODE_FLOOD ? 0 : 1;
		}
		ret = ipcsock_loop_dispatch(ep->loop, timeout);
		if (ret < 0) {
			fail(ep, "dispatch: %s", strerror(-ret));
			break;
		}
	}
	if (ep->nr_pl)
		discard_pending(ep);
}

static int ep_init(struct soak_ep *ep, const struct soak_cfg *cfg,
		   unsigned int side, uint64_t seed, unsigned int max_fds,
		   unsigned int round)
{
	size_t pool_len;
	uint64_t x;
	size_t i;

	ep->seed = seed;
	ep->rng = mix64(seed ^ 0x50a6ull ^ (uint64_t)round << 8 ^ side) | 1;
	ep->out = side;
	ep->in = !side;
	ep->max_msg = cfg->max_msg_size ?: IPCSOCK_DEFAULT_MAX_MSG_SIZE;
	ep->queue_len = cfg->send_queue_len ?: IPCSOCK_DEFAULT_SEND_QUEUE;
	ep->recv_bufs = cfg->recv_buffers ?: IPCSOCK_DEFAULT_RECV_BUFFERS;
	/* The library rounds it up to a power of two. */
	for (i = 1; i < ep->recv_bufs; i <<= 1)
		;
	ep->recv_bufs = i;
	/*
	 * Messages a receive buffer may hold: a record of ours is filled
	 * up to 16 KiB and is never larger than a version 1 datagram (8
	 * header bytes and max_msg); its 16 header bytes come first, and
	 * each message takes at least 16 more (README, "Wire format").
	 */
	ep->rx_per_buf = ep->max_msg + 8 < SOAK_REC_BYTES ?
			 ep->max_msg + 8 : SOAK_REC_BYTES;
	ep->rx_per_buf = ep->rx_per_buf < 32 ? 1 : (ep->rx_per_buf - 16) / 16;
	ep->max_fds = max_fds;
	ep->prime = ep->queue_len + 2 * ep->recv_bufs + SOAK_MAX_BATCH;

	/*
	 * Touched in full now, so that only the library's memory can grow
	 * after the warm-up.
	 */
	pool_len = 2 * (size_t)ep->max_msg + SOAK_HDR_LEN;
	ep->pool = malloc(pool_len);
	ep->arena = malloc(SOAK_BATCH_BYTES + ep->max_msg);
	ep->fds = malloc((SOAK_BATCH_FDS + IPCSOCK_MAX_FDS) * sizeof(int));
	if (!ep->pool || !ep->arena || !ep->fds)
		return -ENOMEM;
	for (i = 0, x = seed; i < pool_len; i++) {
		if (!(i % 8))
			x = mix64(x);
		ep->pool[i] = x >> (i % 8 * 8);
	}
	memset(ep->arena, 0, SOAK_BATCH_BYTES + ep->max_msg);
	memset(ep->fds, 0xff, (SOAK_BATCH_FDS + IPCSOCK_MAX_FDS) * sizeof(int));
	return 0;
}

static void ep_exit(struct soak_ep *ep)
{
	free(ep->pool);
	free(ep->arena);
	free(ep->fds);
}

static struct ipcsock_loop *new_loop(const struct soak_cfg *cfg,
				     enum ipcsock_backend backend)
{
	IPCSOCK_LOOP_OPTS(opts,
		.backend = backend,
		.flags = cfg->flags,
		.max_msg_size = cfg->max_msg_size,
		.send_queue_len = cfg->send_queue_len,
		.recv_buffers = cfg->recv_buffers,
	);

	return ipcsock_loop_new(&opts);
}

/* ---------------------------------------------------------------------- */
/* The peer: exec'd by the parent with its end of the channel on argv. */

static int peer_main(const char *spec, const char *inherited, bool verbose)
{
	struct soak_ep ep = { .who = "peer", .is_peer = true,
			      .verbose = verbose };
	unsigned int round, backend, max_fds, warm_ms, alarm_s;
	struct soak_census c0, c1;
	struct soak_cfg cfg = { 0 };
	int fd, ret, off = 0, n;
	unsigned int inh[SOAK_MAX_INHERITED], nr_inh = 0, v;
	uint64_t seed;
	struct dirent *de;
	DIR *d;

	if (sscanf(spec, "%d,%u,%" SCNx64 ",%u,%u,%u,%u,%u,%u,%u,%u", &fd,
		   &round, &seed, &backend, &cfg.flags, &cfg.max_msg_size,
		   &cfg.send_queue_len, &cfg.recv_buffers, &max_fds, &warm_ms,
		   &alarm_s) != 11 || round >= NR_ROUNDS) {
		fprintf(stderr, "ipcsock-soak: bad --peer %s\n", spec);
		return 2;
	}
	/* Whatever happens to the parent, do not outlive the round. */
	alarm(alarm_s);
	while (inherited && nr_inh < SOAK_MAX_INHERITED &&
	       sscanf(inherited + off, "%u%n", &v, &n) == 1) {
		inh[nr_inh++] = v;
		off += n;
		if (inherited[off] != ',')
			break;
		off++;
	}

	/* No fd may come across exec but ours and the parent's own. */
	d = opendir("/proc/self/fd");
	while (d && (de = readdir(d))) {
		char link[256] = "";
		unsigned int i;
		int nr = atoi(de->d_name);

		if (de->d_name[0] == '.' || nr == dirfd(d) || nr == fd)
			continue;
		for (i = 0; i < nr_inh && inh[i] != (unsigned int)nr; i++)
			;
		if (i < nr_inh)
			continue;
		readlinkat(dirfd(d), de->d_name, link, sizeof(link) - 1);
		fail(&ep, "fd %d (%s) inherited across exec", nr, link);
	}
	if (d)
		closedir(d);

	ep.t0 = now_ms();
	ep.warm_end = ep.t0 + warm_ms;
	ep.prime_ms = warm_ms / 3;
	ep.next_sample = ep.t0 + SOAK_SAMPLE_MS;
	if (ep_init(&ep, &cfg, DIR_FROM_PEER, seed, max_fds, round)) {
		fail(&ep, "out of memory");
		return 1;
	}
	if (census(&ep, &c0, false))
		return 1;
	ep.loop = new_loop(&cfg, backend);
	if (!ep.loop) {
		fail(&ep, "ipcsock_loop_new: %s", strerror(errno));
		return 1;
	}
	ep.sock = ipcsock_new(ep.loop);
	ret = ep.sock ? ipcsock_bind(ep.sock, fd) : -ENOMEM;
	if (ret) {
		fail(&ep, "ipcsock_bind(%d): %s", fd, strerror(-ret));
		return 1;
	}
	if (!ep.rep.failures)
		ep_run(&ep, 0, UINT64_MAX);
	ipcsock_free(ep.sock);
	ipcsock_loop_free(ep.loop);
	ep_exit(&ep);
	/* The channel's fd was ours, and went with it. */
	if (!census(&ep, &c1, false) &&
	    (c1.total != c0.total - 1 || c1.memfds))
		fail(&ep, "%u fds open at the end (%u memfds), %u at the start besides the channel",
		     c1.total, c1.memfds, c0.total - 1);
	return ep.rep.failures ? 1 : 0;
}

/* ---------------------------------------------------------------------- */
/* The parent. */

struct soak_opts {
	unsigned int seconds;
	uint64_t seed;
	bool verbose;
	bool want[NR_ROUNDS];
	unsigned int nr_want;
	unsigned int max_fds;
	bool uring;
	char inherited[SOAK_MAX_INHERITED * 8];
	char self[4096];
};

/* Per side (parent, peer), over all rounds. */
struct soak_totals {
	struct soak_report side[2];
	unsigned int rounds;
};

static void print_dir(const char *what, const struct soak_dir_stats *s,
		      uint64_t enobufs)
{
	printf("  %-14s %10" PRIu64 " messages %9.1f MiB %10" PRIu64 " fds %8" PRIu64 " -ENOBUFS\n",
	       what, s->msgs, mib(s->bytes), s->fds, enobufs);
}

static void print_proc(const char *who, const struct soak_report *r)
{
	if (!r->samples) {
		printf("  %-14s no samples\n", who);
		return;
	}
	printf("  %-14s fds max %5u, RSS %.1f..%.1f MiB", who, r->fd_max,
	       mib(r->rss_min), mib(r->rss_max));
	if (r->rss_warm)
		printf(" (%.1f after warm-up)", mib(r->rss_warm));
	if (r->heap_max)
		printf(", heap max %.2f MiB", mib(r->heap_max));
	if (r->heap_warm)
		printf(" (%.2f after warm-up)", mib(r->heap_warm));
	printf(", %" PRIu64 " receive pauses\n", r->pauses);
}

/* Wait for the peer for up to @ms, then kill it. Returns its status. */
static int reap_peer(pid_t pid, unsigned int ms)
{
	uint64_t end = now_ms() + ms;
	int status;

	while (waitpid(pid, &status, WNOHANG) == 0) {
		if (now_ms() >= end) {
			kill(pid, SIGKILL);
			waitpid(pid, &status, 0);
			return -1;
		}
		usleep(10000);
	}
	return status;
}

static int run_round(const struct soak_opts *o, unsigned int k,
		     uint64_t deadline, uint64_t warm_ms,
		     struct soak_totals *t)
{
	const struct soak_cfg *base = &soak_rounds[k];
	struct soak_ep ep = { .who = "parent", .verbose = o->verbose };
	struct soak_cfg cfg = *base;
	enum ipcsock_backend be[2] = { base->backend[0], base->backend[1] };
	struct soak_census c0, c1;
	char spec[256], *argv[8];
	uint64_t start = now_ms();
	int remote, status, argc = 0;
	struct soak_report *pr;
	pid_t pid;

	if (!o->uring) {
		be[0] = be[1] = IPCSOCK_BACKEND_EPOLL;
		cfg.flags = 0;
	}
	printf("round %u: %s, %.0f s\n", k + 1, base->name,
	       (deadline - start) / 1000.0);
	fflush(stdout);

	ep.t0 = start;
	ep.warm_end = start + warm_ms;
	ep.prime_ms = warm_ms / 3;
	ep.next_sample = start + SOAK_SAMPLE_MS;
	if (ep_init(&ep, &cfg, DIR_FROM_PARENT, o->seed, o->max_fds, k)) {
		fail(&ep, "out of memory");
		return 1;
	}
	if (census(&ep, &c0, false))
		return 1;
	ep.loop = new_loop(&cfg, be[0]);
	if (!ep.loop) {
		fail(&ep, "ipcsock_loop_new: %s", strerror(errno));
		return 1;
	}
	ep.sock = ipcsock_new(ep.loop);
	remote = ep.sock ? ipcsock_create(ep.sock) : -ENOMEM;
	if (remote < 0) {
		fail(&ep, "ipcsock_create: %s", strerror(-remote));
		ipcsock_free(ep.sock);
		ipcsock_loop_free(ep.loop);
		return 1;
	}
	snprintf(spec, sizeof(spec), "%d,%u,%" PRIx64 ",%u,%u,%u,%u,%u,%u,%u,%u",
		 remote, k, o->seed, be[1], cfg.flags, cfg.max_msg_size,
		 cfg.send_queue_len, cfg.recv_buffers, o->max_fds,
		 (unsigned int)warm_ms,
		 (unsigned int)((deadline - start) / 1000 + SOAK_GRACE_MS / 1000 + 10));
	argv[argc++] = "ipcsock-soak";
	if (o->verbose)
		argv[argc++] = "-v";
	argv[argc++] = "--inherited";
	argv[argc++] = (char *)o->inherited;
	argv[argc++] = "--peer";
	argv[argc++] = spec;
	argv[argc] = NULL;

	fflush(NULL);
	pid = fork();
	if (pid == 0) {
		/* The one fd the peer gets: its end of the channel. */
		fcntl(remote, F_SETFD, 0);
		execv(o->self, argv);
		_exit(127);
	}
	close(remote);
	if (pid < 0) {
		fail(&ep, "fork: %s", strerror(errno));
	} else {
		soak_child = pid;
		ep_run(&ep, deadline, deadline + SOAK_GRACE_MS);
	}
	ipcsock_free(ep.sock);
	ipcsock_loop_free(ep.loop);
	ep_exit(&ep);
	if (pid > 0) {
		/* After a failure here, the peer sees the hangup and exits. */
		status = reap_peer(pid, SOAK_GRACE_MS);
		soak_child = -1;
		if (status == -1)
			fail(&ep, "the peer did not exit; killed");
		else if (WIFSIGNALED(status))
			fail(&ep, "the peer was killed by signal %d",
			     WTERMSIG(status));
		else if (WEXITSTATUS(status))
			fail(&ep, "the peer exited with status %d",
			     WEXITSTATUS(status));
	}
	if (!census(&ep, &c1, false) && (c1.total != c0.total || c1.memfds))
		fail(&ep, "%u fds open at the end of the round (%u memfds), %u at its start",
		     c1.total, c1.memfds, c0.total);

	pr = &ep.peer_rep;
	if (ep.end_seen && !ep.rep.failures) {
		if (pr->rx.msgs != ep.rep.tx.msgs ||
		    pr->rx.bytes != ep.rep.tx.bytes ||
		    pr->rx.fds != ep.rep.tx.fds)
			fail(&ep, "the peer received %" PRIu64 " messages, %" PRIu64 " bytes, %" PRIu64 " fds of %" PRIu64 ", %" PRIu64 ", %" PRIu64 " sent",
			     pr->rx.msgs, pr->rx.bytes, pr->rx.fds,
			     ep.rep.tx.msgs, ep.rep.tx.bytes, ep.rep.tx.fds);
		if (pr->tx.msgs != ep.rep.rx.msgs ||
		    pr->tx.bytes != ep.rep.rx.bytes ||
		    pr->tx.fds != ep.rep.rx.fds)
			fail(&ep, "received %" PRIu64 " messages, %" PRIu64 " bytes, %" PRIu64 " fds of the peer's %" PRIu64 ", %" PRIu64 ", %" PRIu64,
			     ep.rep.rx.msgs, ep.rep.rx.bytes, ep.rep.rx.fds,
			     pr->tx.msgs, pr->tx.bytes, pr->tx.fds);
	}

	print_dir("parent -> peer", &ep.rep.tx, ep.rep.enobufs);
	print_dir("peer -> parent", &pr->tx, pr->enobufs);
	print_proc("parent", &ep.rep);
	if (ep.end_seen)
		print_proc("peer", pr);
	printf("  %-14s %.1f s, %s\n", "", (now_ms() - start) / 1000.0,
	       ep.rep.failures ? "FAILED" : "ok");
	fflush(stdout);

	t->rounds++;
	for (unsigned int i = 0; i < 2; i++) {
		const struct soak_report *r = i ? pr : &ep.rep;
		struct soak_report *sum = &t->side[i];

		if (i && !ep.end_seen)
			break;
		sum->tx.msgs += r->tx.msgs;
		sum->tx.bytes += r->tx.bytes;
		sum->tx.fds += r->tx.fds;
		sum->enobufs += r->enobufs;
		sum->pauses += r->pauses;
		if (r->fd_max > sum->fd_max)
			sum->fd_max = r->fd_max;
		if (r->samples && (!sum->samples || r->rss_min < sum->rss_min))
			sum->rss_min = r->rss_min;
		if (r->rss_max > sum->rss_max)
			sum->rss_max = r->rss_max;
		if (r->heap_max > sum->heap_max)
			sum->heap_max = r->heap_max;
		sum->samples += r->samples;
	}
	return ep.rep.failures ? 1 : 0;
}

static void on_alarm(int sig)
{
	static const char msg[] =
		"ipcsock-soak: FAIL: still running long after the deadline\n";

	(void)sig;
	if (soak_child > 0)
		kill(soak_child, SIGKILL);
	if (write(2, msg, sizeof(msg) - 1) < 0)
		_exit(1);
	_exit(1);
}

/* Numbers of the fds we got from whoever started us. */
static void list_inherited(char *buf, size_t size)
{
	struct dirent *de;
	size_t len = 0;
	unsigned int n = 0;
	DIR *d;

	buf[0] = '\0';
	d = opendir("/proc/self/fd");
	while (d && (de = readdir(d)) && n < SOAK_MAX_INHERITED) {
		if (de->d_name[0] == '.' || atoi(de->d_name) == dirfd(d))
			continue;
		len += snprintf(buf + len, size - len, "%s%s", n ? "," : "",
				de->d_name);
		n++;
		if (len >= size - 8)
			break;
	}
	if (d)
		closedir(d);
	if (!n)
		snprintf(buf, size, "-");
}

/*
 * Messages carry up to 253 fds, and each side may hold a send queue and
 * a batch of them: raise RLIMIT_NOFILE to its hard limit, and if that is
 * still small, send fewer fds per message.
 */
static unsigned int fd_budget(void)
{
	struct rlimit rl;
	rlim_t want = 65536;

	if (getrlimit(RLIMIT_NOFILE, &rl))
		return IPCSOCK_MAX_FDS;
	if (rl.rlim_max < want) {
		struct rlimit up = { want, want };

		if (!setrlimit(RLIMIT_NOFILE, &up))
			rl = up;
	}
	rl.rlim_cur = rl.rlim_max;
	setrlimit(RLIMIT_NOFILE, &rl);
	getrlimit(RLIMIT_NOFILE, &rl);
	if (rl.rlim_cur >= 16384)
		return IPCSOCK_MAX_FDS;
	printf("RLIMIT_NOFILE is %llu: messages carry at most %llu fds\n",
	       (unsigned long long)rl.rlim_cur,
	       (unsigned long long)(rl.rlim_cur / 64 > SOAK_SMALL_FDS + 1 ?
				    rl.rlim_cur / 64 : SOAK_SMALL_FDS + 1));
	return rl.rlim_cur / 64 > SOAK_SMALL_FDS + 1 ?
	       rl.rlim_cur / 64 : SOAK_SMALL_FDS + 1;
}

static void print_usage(FILE *f)
{
	fprintf(f,
		"usage: ipcsock-soak [-s SECONDS] [--seed N] [--rounds LIST] [-v]\n"
		"\n"
		"  -s, --seconds N   run this long in all (default 60), split between\n"
		"                    the rounds\n"
		"  --seed N          message contents (default: from the clock)\n"
		"  --rounds LIST     run only these rounds, e.g. 1,3 (default: all)\n"
		"  -v, --verbose     print every sample\n"
		"\nRounds:\n");
	for (unsigned int i = 0; i < NR_ROUNDS; i++)
		fprintf(f, "  %u  %s\n", i + 1, soak_rounds[i].name);
}

static bool probe_uring(void)
{
	IPCSOCK_LOOP_OPTS(opts, .backend = IPCSOCK_BACKEND_URING);
	struct ipcsock_loop *loop = ipcsock_loop_new(&opts);

	ipcsock_loop_free(loop);
	return loop;
}

int main(int argc, char **argv)
{
	struct soak_opts o = { .seconds = 60 };
	const char *peer = NULL, *inherited = NULL;
	struct soak_totals t = { 0 };
	uint64_t start, round_ms, warm_ms;
	unsigned int i, k, failed = 0;
	ssize_t n;

	o.seed = mix64((uint64_t)time(NULL) << 20 ^ getpid());
	for (i = 1; i < (unsigned int)argc; i++) {
		const char *a = argv[i], *v = i + 1 < (unsigned int)argc ?
					      argv[i + 1] : NULL;

		if (!strcmp(a, "-v") || !strcmp(a, "--verbose")) {
			o.verbose = true;
		} else if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
			print_usage(stdout);
			return 0;
		} else if (v && (!strcmp(a, "-s") || !strcmp(a, "--seconds"))) {
			o.seconds = strtoul(v, NULL, 0);
			i++;
		} else if (v && !strcmp(a, "--seed")) {
			o.seed = strtoull(v, NULL, 0);
			i++;
		} else if (v && !strcmp(a, "--rounds")) {
			for (const char *p = v; *p; p++) {
				k = strtoul(p, (char **)&p, 10);
				if (k < 1 || k > NR_ROUNDS || (*p && *p != ','))
					break;
				o.want[k - 1] = true;
				o.nr_want++;
				if (!*p)
					break;
			}
			i++;
		} else if (v && !strcmp(a, "--peer")) {
			peer = v;
			i++;
		} else if (v && !strcmp(a, "--inherited")) {
			inherited = v;
			i++;
		} else {
			print_usage(stderr);
			return 2;
		}
	}
	if (peer)
		return peer_main(peer, inherited, o.verbose);
	if (!o.seconds) {
		print_usage(stderr);
		return 2;
	}
	if (!o.nr_want) {
		for (k = 0; k < NR_ROUNDS; k++)
			o.want[k] = true;
		o.nr_want = NR_ROUNDS;
	}
	n = readlink("/proc/self/exe", o.self, sizeof(o.self) - 1);
	if (n <= 0) {
		perror("ipcsock-soak: /proc/self/exe");
		return 1;
	}
	o.self[n] = '\0';
	signal(SIGPIPE, SIG_IGN);
	o.max_fds = fd_budget();
	list_inherited(o.inherited, sizeof(o.inherited));
	o.uring = probe_uring();

	printf("ipcsock-soak: %u s, %u rounds, seed 0x%016" PRIx64 "%s%s\n",
	       o.seconds, o.nr_want, o.seed,
	       o.uring ? "" : " (io_uring unavailable: epoll only)",
	       SOAK_MEM_CHECKS ? "" :
	       " (AddressSanitizer: memory growth not checked)");
	start = now_ms();
	round_ms = o.seconds * 1000ull / o.nr_want;
	warm_ms = round_ms / 5;
	if (warm_ms < 1000)
		warm_ms = 1000;
	if (warm_ms > 10000)
		warm_ms = 10000;
	signal(SIGALRM, on_alarm);
	/* Rounds keep to one schedule: at worst the last overruns by its grace. */
	alarm(o.seconds + 2 * SOAK_GRACE_MS / 1000 + 10);

	for (k = 0, i = 0; k < NR_ROUNDS; k++) {
		if (!o.want[k])
			continue;
		i++;
		if (run_round(&o, k, start + i * round_ms, warm_ms, &t))
			failed++;
	}
	alarm(0);

	printf("total: %u rounds in %.1f s, seed 0x%016" PRIx64 "\n", t.rounds,
	       (now_ms() - start) / 1000.0, o.seed);
	print_dir("parent -> peer", &t.side[0].tx, t.side[0].enobufs);
	print_dir("peer -> parent", &t.side[1].tx, t.side[1].enobufs);
	print_proc("parent", &t.side[0]);
	print_proc("peer", &t.side[1]);
	printf("%s: %u of %u rounds failed\n", failed ? "FAIL" : "PASS",
	       failed, t.rounds);
	return failed ? 1 : 0;
}
