// SPDX-License-Identifier: MIT
/*
 * fuzz-peer: the peer's side. The raw end of the channel sends whatever
 * datagrams the input describes and reads what the library sends back.
 */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fuzz-peer.h"

static bool dgram_valid(const struct fz *fz, const uint8_t *buf, size_t dlen,
			unsigned int nr_fds)
{
	struct test_wire_hdr h;

	if (dlen < TEST_WIRE_HDR_LEN)
		return false;
	memcpy(&h, buf, sizeof(h));
	return h.version == TEST_WIRE_VERSION && !h.flags &&
	       h.len == dlen - TEST_WIRE_HDR_LEN && h.nr_fds == nr_fds &&
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
	unsigned int i, tries, convs = fz->convs;
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
		/* A callback began the next conversation: its fds are gone. */
		if (fz->convs != convs)
			return -ECONNABORTED;
	}
}

static bool dgram_reset(const uint8_t *buf, size_t dlen, unsigned int nr_fds)
{
	struct test_wire_hdr h;

	if (dlen != TEST_WIRE_HDR_LEN || nr_fds)
		return false;
	memcpy(&h, buf, sizeof(h));
	return h.version == TEST_WIRE_VERSION && h.flags == TEST_WIRE_F_RESET &&
	       !h.len && !h.nr_fds;
}

static void peer_record(struct fz *fz, size_t dlen, uint8_t seed,
			const uint8_t *idx, unsigned int nr_fds, bool maybe)
{
	struct fz_msg *m = &sent[fz->nr_sent++];
	unsigned int i;

	m->status = dgram_valid(fz, txbuf, dlen, nr_fds) ?
		    (maybe && nr_fds ? DG_MAYBE : DG_VALID) : DG_INVALID;
	/* Nothing is believable after a reset notice. */
	if (fz->reset_at) {
		m->status = DG_INVALID;
	} else if (dgram_reset(txbuf, dlen, nr_fds)) {
		m->status = DG_RESET;
		fz->reset_at = fz->nr_sent;
	}
	m->seed = seed;
	m->empty = !dlen;
	m->len = dlen >= TEST_WIRE_HDR_LEN ? dlen - TEST_WIRE_HDR_LEN : 0;
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
void op_send(struct fz *fz, struct fz_in *in, bool maybe)
{
	unsigned int a = in_u8(in), nr_fds, seed, b;
	uint8_t idx[FZ_PEER_MAX_FDS];
	struct test_wire_hdr h;
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
		size = in_u24(in) % (fz->kmax - TEST_WIRE_HDR_LEN + 1);
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
	h.version = TEST_WIRE_VERSION;
	h.flags = 0;
	dlen = TEST_WIRE_HDR_LEN + size;
	switch (a & 3) {
	case 1:
		for (b = 0; b < TEST_WIRE_HDR_LEN; b++)
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
		fill_pattern(txbuf + TEST_WIRE_HDR_LEN, size, seed);
	}
	if (peer_sendmsg(fz, txbuf, dlen, idx, nr_fds, a & 0x40))
		return;
	peer_record(fz, dlen, seed, idx, nr_fds, maybe);
}

/* OP_BURST: [size] [fds] [fd seed]: 2 * (arg + 1) valid datagrams at once. */
void op_burst(struct fz *fz, struct fz_in *in, unsigned int arg)
{
	unsigned int n = 2 * (arg + 1), size = in_u8(in), i, nr_fds;
	unsigned int f = in_u8(in), s = in_u8(in), j;
	uint8_t idx[8];
	struct test_wire_hdr h;

	for (i = 0; i < n && peer_can_send(fz) && !fz->lib_closed; i++) {
		nr_fds = (f >> ((i & 3) * 2)) & 3;
		for (j = 0; j < nr_fds; j++)
			idx[j] = pool_pick(fz, s + i * 5 + j);
		h.len = (size + i * 3) % (fz->fl->max_msg + 1);
		h.nr_fds = nr_fds;
		h.version = TEST_WIRE_VERSION;
		h.flags = 0;
		memcpy(txbuf, &h, sizeof(h));
		fill_pattern(txbuf + TEST_WIRE_HDR_LEN, h.len, s + i);
		if (peer_sendmsg(fz, txbuf, TEST_WIRE_HDR_LEN + h.len, idx,
				 nr_fds, false))
			return;
		peer_record(fz, TEST_WIRE_HDR_LEN + h.len, s + i, idx, nr_fds,
			    false);
	}
}

/*
 * OP_NOFILE: lower RLIMIT_NOFILE to the lowest free fd + arg, so that the
 * library can install only a few of the fds that arrive (MSG_CTRUNC),
 * send one datagram (an OP_SEND descriptor follows) and dispatch. What was
 * not yet received when the window opened may be cut as well.
 */
void op_nofile(struct fz *fz, struct fz_in *in, unsigned int arg)
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
void op_sndbuf(struct fz *fz, unsigned int arg)
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

void op_peer_close(struct fz *fz, unsigned int arg)
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
 * The peer reads one datagram the library sent, a message or a record
 * (checked by test_wire_check()): the next messages queued, each whole,
 * with the files that were given to send it.
 */
int peer_read_one(struct fz *fz)
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
	struct test_wire_hdr h = { 0 };
	struct test_wire_split split;
	const struct fz_msg *m;
	struct test_wire_msg wm;
	struct cmsghdr *cmsg;
	unsigned int nr = 0, i;
	const char *why;
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
	if (fz->lib_reset)
		fz_fail("library sent a datagram after its reset notice");
	/*
	 * Closing with our messages unreceived, after all it had queued:
	 * only a closed library does, and only with ours undelivered.
	 */
	if (dgram_reset(rxbuf, n, nr)) {
		if (!fz->lib_closed || fz->delivered >= fz->nr_sent ||
		    fz->lib_read != fz->lib_sent)
			fz_fail("library sent a reset notice: %s, %u of %u delivered, %u of %u of its messages read",
				fz->lib_closed ? "closed" : "open",
				fz->delivered, fz->nr_sent, fz->lib_read,
				fz->lib_sent);
		fz->lib_reset = true;
		return 1;
	}
	if (msg.msg_flags & (MSG_TRUNC | MSG_CTRUNC))
		fz_fail("library sent a datagram too large: flags %#x",
			msg.msg_flags);
	why = test_wire_check(&split, rxbuf, n, nr, fz->fl->max_msg);
	if (why) {
		if ((size_t)n >= sizeof(h))
			memcpy(&h, rxbuf, sizeof(h));
		fz_fail("library sent a bad datagram: %s: len %u fds %u v%u flags %u (datagram %zd, %u fds)",
			why, h.len, h.nr_fds, h.version, h.flags, n, nr);
	}
	/* Each message whole, in order, with its own fds in its order. */
	while (test_wire_next(&split, &wm)) {
		if (fz->lib_read >= fz->lib_sent)
			fz_fail("library sent a message it was never given");
		m = &lib_sent[fz->lib_read];
		if (wm.len != m->len || wm.nr_fds != m->nr_fds ||
		    !check_pattern(wm.data, wm.len, m->seed))
			fz_fail("library message %u (%u of a datagram of %u) differs from the one given to send",
				fz->lib_read, split.nr_msgs - split.left,
				split.nr_msgs);
		for (i = 0; i < wm.nr_fds; i++) {
			if (fstat(fds[wm.fd_off + i], &st) ||
			    st.st_dev != pool[m->fds[i]].dev ||
			    st.st_ino != pool[m->fds[i]].ino)
				fz_fail("library message %u fd %u is not the file given",
					fz->lib_read, i);
		}
		fz->lib_read++;
	}
	for (i = 0; i < nr; i++)
		close(fds[i]);
	return 1;
}
