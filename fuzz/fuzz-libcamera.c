// SPDX-License-Identifier: MIT
/*
 * fuzz-libcamera - a libFuzzer harness that plays a hostile peer of a
 * socket in the libcamera wire mode (IPCSOCK_WIRE_LIBCAMERA): libcamera's
 * IPCUnixSocket format on SOCK_DGRAM, a header datagram { u32 data;
 * u8 fds; } then a payload datagram carrying exactly the fds.
 *
 * Each input is one conversation on a fresh channel (ipcsock_create()).
 * From the raw end the harness sends what the input says: lone headers,
 * lone payloads, whole messages, payloads whose size or fd count differ
 * from their header (more fds than announced included), fds on a header,
 * headers over max_msg_size, empty datagrams, up to 255 fds (the kernel
 * refuses more than 253), large datagrams; it drives the loop, receives,
 * has the library send to it and reads that back, and closes its end.
 *
 * It keeps its own model of the format and checks, after every operation
 * and at the end (abort() on a violation, a crash to libFuzzer):
 *  - every message delivered is exactly the next whole, valid one the
 *    model expects: bytes, fd count, each fd's identity and FD_CLOEXEC;
 *  - once the model saw a datagram that breaks the format, nothing after
 *    the messages before it is delivered, and the channel fails with
 *    hangup(err < 0), once; without one, no hangup (but -ECONNREFUSED
 *    after the harness closed its end and the library sent);
 *  - what the library sends arrives as header then matching payload,
 *    in order, whole;
 *  - after the input the process has exactly the descriptors it had
 *    before (no fd of a bad message, or of a queued one, leaks) and a
 *    shared ring's loop is idle.
 *
 * Input: byte 0 chooses the loop (uring, epoll, ring sends, shared plain,
 * shared DEFER_TASKRUN) and the consumer; then operations, one byte each
 * (low 3 bits: operation, high 5: argument) with the bytes they read.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <liburing.h>

#include "ipcsock.h"

/* The format, written out again here rather than taken from lib/. */
struct lc_hdr {
	uint32_t data;
	uint8_t fds;
	uint8_t pad[3];
};

#define MAX_MSG		4096u		/* the loops' max_msg_size */
#define MAX_EXPECT	512
#define MAX_FDS_SEND	255		/* more than the kernel takes */
#define NR_FILES	4
#define SETTLE_MS	5000

enum { K_URING, K_EPOLL, K_RING_SENDS, K_SHARED, K_SHARED_DEFER, NR_KINDS };

enum {
	OP_HDR,		/* a header datagram: u16 data, u8 fds (lone or not) */
	OP_PAYLOAD,	/* a payload datagram: u16 len, arg: fds */
	OP_MSG,		/* a whole valid message: u16 len, arg % 8 fds */
	OP_TURN,	/* arg + 1 turns of the loop */
	OP_RECV,	/* receive up to arg + 1 messages */
	OP_LIB_SEND,	/* the library sends: u16 len, arg % 4 fds */
	OP_DRAIN,	/* the peer reads up to arg + 1 datagrams */
	OP_ODD,		/* arg: empty datagram, header with fds, big, close */
};

struct kind {
	struct ipcsock_loop *loop;
	struct io_uring ring;
	bool shared;
};

struct expect {
	uint32_t len;
	uint32_t sum;		/* of the bytes, see sum() */
	unsigned int nr_fds;
	unsigned int file[MAX_FDS_SEND];	/* index into files[] */
};

static struct kind kinds[NR_KINDS];
static int files[NR_FILES];
static struct stat file_st[NR_FILES];
static int fd_baseline;
static uint8_t buf[256 * 1024];

/* One conversation. */
static struct {
	struct kind *k;
	struct ipcsock *sock;
	int raw;
	bool manual;		/* no ready_read: OP_RECV only */
	/* The model's parser, as the library must see the stream. */
	bool hdr_seen;
	uint32_t want_len;
	unsigned int want_fds;
	bool broken;		/* a datagram broke the format */
	bool peer_closed;
	bool lib_ever_sent;		/* a refusal may come once closed */
	bool lib_sent_after_close;	/* a refusal must come */
	struct expect exp[MAX_EXPECT];
	unsigned int nr_exp, delivered;
	int hangups, hangup_err;
	/* What the library sent, and the peer's reading of it. */
	uint32_t lib_seq, peer_seq;
	bool peer_hdr;
	struct lc_hdr peer_want;
} c;

static void check(bool ok, const char *what)
{
	if (ok)
		return;
	fprintf(stderr, "fuzz-libcamera: %s\n", what);
	abort();
}

struct in {
	const uint8_t *p;
	size_t n;
};

static unsigned int in_u8(struct in *in)
{
	if (!in->n)
		return 0;
	in->n--;
	return *in->p++;
}

static unsigned int in_u16(struct in *in)
{
	unsigned int v = in_u8(in);

	return v | in_u8(in) << 8;
}

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000ull + ts.tv_nsec / 1000000;
}

static int count_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *de;
	int n = 0;

	if (!d)
		abort();
	while ((de = readdir(d)))
		n += de->d_name[0] != '.';
	closedir(d);
	return n - 1;
}

static uint8_t pattern(unsigned int seed, size_t i)
{
	return seed * 37 + i * 11 + (i >> 9);
}

/* FNV-1a: what the model keeps of a message's bytes. */
static uint32_t sum(const void *data, size_t len)
{
	const uint8_t *p = data;
	uint32_t h = 2166136261u;

	while (len--)
		h = (h ^ *p++) * 16777619u;
	return h;
}

static void dispatch(struct ipcsock_loop *loop, int ms)
{
	int ret = ipcsock_loop_dispatch(loop, ms);

	if (ret < 0 && ret != -EINTR) {
		fprintf(stderr, "fuzz-libcamera: loop: %s\n",
			strerror(-ret));
		abort();
	}
}

static void turn(int ms)
{
	struct __kernel_timespec ts = { .tv_nsec = ms * 1000000L };
	struct io_uring_cqe *cqe;
	unsigned int head, n = 0;

	if (!c.k->shared) {
		dispatch(c.k->loop, ms);
		return;
	}
	io_uring_submit_and_wait_timeout(&c.k->ring, &cqe, ms ? 1 : 0, &ts,
					 NULL);
	io_uring_for_each_cqe(&c.k->ring, head, cqe) {
		ipcsock_loop_handle_cqe(c.k->loop, cqe);
		n++;
	}
	io_uring_cq_advance(&c.k->ring, n);
	dispatch(c.k->loop, 0);
}

/* A delivered message must be the next one expected. */
static void take(const struct ipcsock_payload *p)
{
	struct expect *e;
	unsigned int i;
	struct stat st;

	check(c.delivered < c.nr_exp, "a message nobody sent whole");
	e = &c.exp[c.delivered++];
	check(p->len == e->len, "wrong length");
	check(sum(p->data, p->len) == e->sum, "wrong bytes");
	check(p->nr_fds == e->nr_fds, "wrong fd count");
	for (i = 0; i < p->nr_fds; i++) {
		check(!fstat(p->fds[i], &st), "fd not open");
		check(st.st_ino == file_st[e->file[i]].st_ino &&
		      st.st_dev == file_st[e->file[i]].st_dev, "wrong file");
		check(fcntl(p->fds[i], F_GETFD) & FD_CLOEXEC, "no CLOEXEC");
		close(p->fds[i]);
	}
}

static void receive_some(unsigned int max)
{
	struct ipcsock_payload p;

	while (max--) {
		int ret = ipcsock_receive(c.sock, &p);

		if (ret == -EAGAIN)
			return;
		check(!ret, "receive failed");
		take(&p);
	}
}

static void on_ready(struct ipcsock *sock, void *arg)
{
	(void)sock;
	(void)arg;
	receive_some(~0u);
}

static void on_hangup(struct ipcsock *sock, int err, void *arg)
{
	(void)sock;
	(void)arg;
	c.hangups++;
	c.hangup_err = err;
	check(err < 0, "hangup without an error on a datagram channel");
	check(c.broken || (err == -ECONNREFUSED && c.peer_closed &&
			   c.lib_ever_sent), "hangup without a reason");
}

/* The raw peer sends one datagram; false if the kernel would not. */
static bool raw_send(const void *data, size_t len, const unsigned int *file,
		     unsigned int nr_fds)
{
	static union {
		char b[CMSG_SPACE(sizeof(int) * MAX_FDS_SEND)];
		struct cmsghdr align;
	} ctrl;
	struct iovec iov = { .iov_base = (void *)data, .iov_len = len };
	struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1 };
	struct cmsghdr *cm;
	unsigned int i, tries;
	int fd;

	if (c.peer_closed)
		return false;
	if (nr_fds) {
		msg.msg_control = ctrl.b;
		msg.msg_controllen = CMSG_SPACE(sizeof(int) * nr_fds);
		cm = CMSG_FIRSTHDR(&msg);
		cm->cmsg_level = SOL_SOCKET;
		cm->cmsg_type = SCM_RIGHTS;
		cm->cmsg_len = CMSG_LEN(sizeof(int) * nr_fds);
		for (i = 0; i < nr_fds; i++) {
			fd = files[file[i]];
			memcpy(CMSG_DATA(cm) + i * sizeof(int), &fd, sizeof(fd));
		}
	}
	for (tries = 0; tries < 64; tries++) {
		if (sendmsg(c.raw, &msg, MSG_DONTWAIT | MSG_NOSIGNAL) >= 0)
			return true;
		if (errno != EAGAIN)
			return false;
		turn(1);
	}
	return false;
}

/* The model reads one datagram the peer did send. */
static void model(size_t len, const void *data, const unsigned int *file,
		  unsigned int nr_fds)
{
	struct expect *e;
	struct lc_hdr h;

	if (c.broken)
		return;
	if (!c.hdr_seen) {
		if (len != sizeof(h) || nr_fds) {
			c.broken = true;
			return;
		}
		memcpy(&h, data, sizeof(h));
		if ((!h.data && !h.fds) || h.fds > 253 || h.data > MAX_MSG) {
			c.broken = true;
			return;
		}
		c.hdr_seen = true;
		c.want_len = h.data;
		c.want_fds = h.fds;
		return;
	}
	c.hdr_seen = false;
	if (len != c.want_len || nr_fds != c.want_fds) {
		c.broken = true;
		return;
	}
	check(c.nr_exp < MAX_EXPECT, "too many messages");
	e = &c.exp[c.nr_exp++];
	e->len = len;
	e->sum = sum(data, len);
	e->nr_fds = nr_fds;
	memcpy(e->file, file, nr_fds * sizeof(*file));
}

static void send_dgram(size_t len, unsigned int nr_fds, unsigned int seed,
		       unsigned int file0)
{
	static unsigned int file[MAX_FDS_SEND];
	unsigned int i;

	for (i = 0; i < len; i++)
		buf[i] = pattern(seed, i);
	for (i = 0; i < nr_fds; i++)
		file[i] = (file0 + i) % NR_FILES;
	if (raw_send(buf, len, file, nr_fds))
		model(len, buf, file, nr_fds);
}

static void send_hdr(uint32_t data, unsigned int fds, unsigned int nr_fds)
{
	struct lc_hdr h = { .data = data, .fds = fds };
	static const unsigned int file[8];

	if (raw_send(&h, sizeof(h), file, nr_fds))
		model(sizeof(h), &h, file, nr_fds);
}

static void lib_send(size_t len, unsigned int nr_fds)
{
	struct ipcsock_payload p = {
		.data = buf, .len = len, .fds = files, .nr_fds = nr_fds,
	};
	int ret;

	if (len < 4 && !nr_fds)
		len = 4;
	if (len >= 4) {
		p.len = len;
		memcpy(buf, &c.lib_seq, 4);
	}
	ret = ipcsock_send(c.sock, &p);
	c.lib_ever_sent = true;
	if (c.peer_closed)
		c.lib_sent_after_close = true;
	if (!ret && len >= 4)
		c.lib_seq++;
	check(!ret || ret == -ENOBUFS || ret == -EPIPE, "lib send failed");
	if (ret == -EPIPE)
		check(c.hangups || c.broken || c.peer_closed,
		      "EPIPE from a live channel");
}

/* The peer reads what the library sent: header, then matching payload. */
static void drain(unsigned int max)
{
	static union {
		char b[CMSG_SPACE(sizeof(int) * 253)];
		struct cmsghdr align;
	} ctrl;
	struct iovec iov = { .iov_base = buf, .iov_len = sizeof(buf) };
	struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1 };
	struct cmsghdr *cm;
	unsigned int nr;
	uint32_t seq;
	ssize_t n;

	while (max-- && !c.peer_closed) {
		msg.msg_control = ctrl.b;
		msg.msg_controllen = sizeof(ctrl.b);
		n = recvmsg(c.raw, &msg, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
		if (n < 0) {
			check(errno == EAGAIN, "peer recvmsg");
			return;
		}
		nr = 0;
		for (cm = CMSG_FIRSTHDR(&msg); cm; cm = CMSG_NXTHDR(&msg, cm)) {
			unsigned int i, k = (cm->cmsg_len - CMSG_LEN(0)) / 4;

			for (i = 0; i < k; i++) {
				int fd;

				memcpy(&fd, CMSG_DATA(cm) + 4 * i, 4);
				close(fd);
			}
			nr += k;
		}
		check(!(msg.msg_flags & (MSG_TRUNC | MSG_CTRUNC)), "peer trunc");
		if (!c.peer_hdr) {
			check(n == sizeof(c.peer_want) && !nr, "not a header");
			memcpy(&c.peer_want, buf, sizeof(c.peer_want));
			c.peer_hdr = true;
			continue;
		}
		c.peer_hdr = false;
		check(n == c.peer_want.data && nr == c.peer_want.fds,
		      "payload differs from its header");
		if (n >= 4) {
			memcpy(&seq, buf, 4);
			check(seq == c.peer_seq++, "library's messages out of order");
		}
	}
}

static void odd(unsigned int arg, struct in *in)
{
	unsigned int file[MAX_FDS_SEND] = { 0 };
	size_t big;

	switch (arg % 5) {
	case 0:		/* an empty datagram */
		if (raw_send(buf, 0, file, 0))
			model(0, buf, file, 0);
		break;
	case 1:		/* a header with fds */
		send_hdr(in_u8(in) % 64, 0, 1 + arg % 3);
		break;
	case 2:		/* a big datagram, over any receive buffer */
		big = MAX_MSG + 1 + in_u16(in) % (sizeof(buf) - MAX_MSG - 1);
		send_dgram(big, arg % 2, arg, arg);
		break;
	case 3:		/* close the peer's end */
		if (!c.peer_closed) {
			close(c.raw);
			c.raw = -1;
			c.peer_closed = true;
		}
		break;
	case 4:		/* too many fds: the kernel refuses, nothing sent */
		send_dgram(in_u8(in) % 8, 254 + arg % 2, arg, 0);
		break;
	}
}

static void settle(void)
{
	uint64_t end = now_ms() + SETTLE_MS;

	for (;;) {
		turn(0);
		receive_some(~0u);
		if (c.hangups)
			break;
		if (!c.broken && c.delivered == c.nr_exp &&
		    !c.lib_sent_after_close)
			break;
		check(now_ms() < end, "the conversation is stuck");
		turn(1);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	IPCSOCK_OPTS(opts, .wire = IPCSOCK_WIRE_LIBCAMERA);
	struct in in = { data, size };
	unsigned int conf = in_u8(&in), op, arg;
	uint64_t end;

	memset(&c, 0, sizeof(c));
	c.k = &kinds[(conf & 7) % NR_KINDS];
	c.manual = conf & 8;
	if (!c.k->loop)
		return 0;
	/* Per input: libFuzzer opens descriptors of its own as it goes. */
	fd_baseline = count_fds();
	c.sock = ipcsock_new_opts(c.k->loop, &opts);
	check(c.sock, "new_opts");
	c.raw = ipcsock_create(c.sock);
	check(c.raw >= 0, "create");
	if (!c.manual)
		ipcsock_set_ready_read(c.sock, on_ready, NULL);
	ipcsock_set_hangup(c.sock, on_hangup, NULL);

	while (in.n) {
		op = in_u8(&in);
		arg = op >> 3;
		switch (op & 7) {
		case OP_HDR: {
			unsigned int d = in_u16(&in);

			send_hdr(d % (MAX_MSG + 64), in_u8(&in), 0);
			break;
		}
		case OP_PAYLOAD:
			send_dgram(in_u16(&in) % (MAX_MSG + 64), arg % 6,
				   in_u8(&in), arg);
			break;
		case OP_MSG: {
			unsigned int len = in_u16(&in) % (MAX_MSG + 1);
			unsigned int nr = arg % 8;

			if (!len && !nr)
				nr = 1;
			send_hdr(len, nr, 0);
			send_dgram(len, nr, arg, arg);
			break;
		}
		case OP_TURN:
			for (op = 0; op <= arg; op++)
				turn(0);
			break;
		case OP_RECV:
			receive_some(arg + 1);
			break;
		case OP_LIB_SEND:
			lib_send(in_u16(&in) % (MAX_MSG + 1), arg % 4);
			break;
		case OP_DRAIN:
			drain(arg + 1);
			break;
		case OP_ODD:
			odd(arg, &in);
			break;
		}
		check(c.hangups <= 1, "hangup twice");
	}
	settle();
	drain(~0u);
	check(c.hangups <= 1, "hangup twice");
	/*
	 * A refused send makes the kernel drop what our socket still held
	 * of the peer's: then only a prefix of its messages arrives.
	 */
	if (c.hangups && c.hangup_err == -ECONNREFUSED)
		check(c.delivered <= c.nr_exp, "delivered too many");
	else
		check(c.delivered == c.nr_exp, "messages missing");
	if (c.broken)
		check(c.hangups == 1, "broken format but no hangup");
	else if (c.lib_sent_after_close)
		check(c.hangups == 1 && c.hangup_err == -ECONNREFUSED,
		      "no -ECONNREFUSED after the peer closed");
	else if (!c.peer_closed || !c.lib_ever_sent)
		check(!c.hangups, "hangup on a live channel");
	ipcsock_free(c.sock);
	if (c.raw >= 0)
		close(c.raw);
	/* A closed channel's fd goes once the kernel gave its buffers back. */
	end = now_ms() + SETTLE_MS;
	while (!ipcsock_loop_idle(c.k->loop)) {
		check(now_ms() < end, "loop not idle after the close");
		turn(1);
	}
	if (count_fds() != fd_baseline) {
		char path[64], target[128];
		struct dirent *de;
		DIR *d = opendir("/proc/self/fd");

		while (d && (de = readdir(d))) {
			ssize_t n;

			snprintf(path, sizeof(path), "/proc/self/fd/%s",
				 de->d_name);
			n = readlink(path, target, sizeof(target) - 1);
			target[n < 0 ? 0 : n] = 0;
			fprintf(stderr, "  fd %s -> %s\n", de->d_name, target);
		}
		if (d)
			closedir(d);
		check(false, "descriptor leak");
	}
	return 0;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	IPCSOCK_LOOP_OPTS(opts, .max_msg_size = MAX_MSG, .send_queue_len = 8,
			  .recv_buffers = 4);
	unsigned int i;
	int sv[2];

	(void)argc;
	(void)argv;
	files[0] = open("/dev/null", O_RDONLY | O_CLOEXEC);
	files[1] = memfd_create("fz", MFD_CLOEXEC);
	if (socketpair(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0, sv))
		abort();
	files[2] = sv[0];
	files[3] = sv[1];
	for (i = 0; i < NR_FILES; i++)
		if (files[i] < 0 || fstat(files[i], &file_st[i]))
			abort();

	opts.backend = IPCSOCK_BACKEND_URING;
	kinds[K_URING].loop = ipcsock_loop_new(&opts);
	opts.flags = IPCSOCK_LOOP_RING_SENDS;
	kinds[K_RING_SENDS].loop = ipcsock_loop_new(&opts);
	opts.flags = 0;
	opts.backend = IPCSOCK_BACKEND_EPOLL;
	kinds[K_EPOLL].loop = ipcsock_loop_new(&opts);
	opts.backend = IPCSOCK_BACKEND_URING;
	if (!io_uring_queue_init(64, &kinds[K_SHARED].ring, 0)) {
		kinds[K_SHARED].shared = true;
		kinds[K_SHARED].loop =
			ipcsock_loop_new_shared(&kinds[K_SHARED].ring, &opts);
	}
	if (!io_uring_queue_init(64, &kinds[K_SHARED_DEFER].ring,
				 IORING_SETUP_SINGLE_ISSUER |
				 IORING_SETUP_DEFER_TASKRUN)) {
		kinds[K_SHARED_DEFER].shared = true;
		kinds[K_SHARED_DEFER].loop =
			ipcsock_loop_new_shared(&kinds[K_SHARED_DEFER].ring,
						&opts);
	}
	if (!kinds[K_EPOLL].loop)
		abort();
	return 0;
}
