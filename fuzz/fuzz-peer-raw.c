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
	m->dg_fds = nr_fds;
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
 * OP_RECORD: [a] [count] [fd pattern] [seed] [fd picks] [kb]: a record
 * (README.md's wire format, version 2) of several messages; message i
 * has the bytes of pattern(seed + i).
 *   a bits 0-1: messages: 1-8, 2-65, 256-4351, 0-255
 *   a bits 2-3: their lengths: 0, 0-15, 0-255, up to max_msg_size
 *   a bits 4-5: their fds: none, pattern (2 bits a message), 1 each, the
 *               pattern but one message given the rest up to 253
 *   arg 0-7:    valid (as far as the sizes allow), else broken: 8 the
 *               header's len one off, 9 one fd more or less attached
 *               than counted, 10 entry k's nr_fds one off, 11 entry k's
 *               len near 4 GiB (sums overflow 32 bits), 12 nr_msgs one
 *               off, 13 a flag or a reserved field set, 14 entry k empty,
 *               15 a last message that takes the record kb * 64 + 1 bytes
 *               past max_msg_size + 8, cut by MSG_TRUNC when over the
 *               library's buffer; k is kb % messages
 * The model: a valid record is each of its messages, to be delivered in
 * order with its own fds; a broken one is one datagram that fails the
 * channel with nothing of it delivered (and its fds closed: the fd count
 * after the input).
 */
void op_record(struct fz *fz, struct fz_in *in, unsigned int arg)
{
	static uint32_t lens[FZ_MAX_SENT];
	static uint16_t nfds[FZ_MAX_SENT];
	static uint8_t idx[FZ_PEER_MAX_FDS];
	unsigned int a = in_u8(in), c = in_u8(in), f = in_u8(in);
	unsigned int seed = in_u8(in), n, i, k, kb, total = 0, attached;
	size_t off = TEST_WIRE_REC_HDR_LEN, esz, lim;
	struct test_wire_split split;
	struct test_wire_entry e;
	struct test_wire_hdr h;
	uint32_t rec[2];
	struct fz_msg *m;
	bool valid;

	switch (a & 3) {
	case 0:
		n = 1 + (c & 7);
		break;
	case 1:
		n = 2 + (c & 63);
		break;
	case 2:
		n = 256 + c * 16;
		break;
	default:
		n = c;
		break;
	}
	if (n > FZ_MAX_SENT)
		n = FZ_MAX_SENT;
	/* The record must fit the peer's buffer and the kernel's limit. */
	lim = fz->kmax;
	for (i = 0; i < n; i++) {
		switch ((a >> 2) & 3) {
		case 0:
			lens[i] = 0;
			break;
		case 1:
			lens[i] = (seed + i * 7) & 15;
			break;
		case 2:
			lens[i] = (seed * 3 + i * 37) & 255;
			break;
		default:
			lens[i] = (seed * 131 + i * 4099) %
				  (fz->fl->max_msg + 1);
			break;
		}
		switch ((a >> 4) & 3) {
		case 0:
			nfds[i] = 0;
			break;
		case 1:
		case 3:
			nfds[i] = (f >> ((i & 3) * 2)) & 3;
			break;
		default:
			nfds[i] = 1;
			break;
		}
		if (((a >> 4) & 3) == 3 && i == f % n)
			nfds[i] = IPCSOCK_MAX_FDS;
		if (total + nfds[i] > IPCSOCK_MAX_FDS)
			nfds[i] = IPCSOCK_MAX_FDS - total;
		/* No empty message in a valid record. */
		if (!lens[i] && !nfds[i])
			lens[i] = 1;
		esz = TEST_WIRE_ENTRY_SIZE(lens[i]);
		if (off + esz > lim)
			break;
		total += nfds[i];
		off += esz;
	}
	n = i;
	if (!n)
		return;
	pick_fds(fz, in, total, idx);
	kb = in_u8(in);
	k = kb % n;
	if (arg == 15) {
		/* Past max_msg_size + 8: grow the last message. */
		off -= TEST_WIRE_ENTRY_SIZE(lens[n - 1]);
		lim = fz->fl->max_msg + TEST_WIRE_HDR_LEN + kb * 64 + 1;
		lens[n - 1] = lim > off + sizeof(e) ? lim - off - sizeof(e) : 1;
		lim = fz->kmax;
		off += TEST_WIRE_ENTRY_SIZE(lens[n - 1]);
		if (off > lim)
			return;
	}
	/* Room in the model for each message, should it be valid. */
	if (!peer_can_send(fz) || fz->lib_closed ||
	    fz->nr_sent + n > FZ_MAX_SENT)
		return;

	/* Lay it out, then break it as asked. */
	memset(txbuf, 0, off);
	h.len = off - TEST_WIRE_HDR_LEN;
	h.nr_fds = total;
	h.version = TEST_WIRE_RECORD;
	h.flags = 0;
	rec[0] = n;
	rec[1] = 0;
	off = TEST_WIRE_REC_HDR_LEN;
	for (i = 0; i < n; i++) {
		e.len = lens[i];
		e.nr_fds = nfds[i];
		e.zero = 0;
		if (arg == 10 && i == k)
			e.nr_fds += seed & 1 ? 1 : -1;
		if (arg == 11 && i == k)
			e.len = 0xfffffff0u + (seed & 15);
		if (arg == 13 && i == k && (seed & 3) == 2)
			e.zero = 1 << (seed >> 4);
		if (arg == 14 && i == k)
			e.len = e.nr_fds = 0;
		memcpy(txbuf + off, &e, sizeof(e));
		fill_pattern(txbuf + off + sizeof(e), lens[i],
			     (uint8_t)(seed + i));
		off += TEST_WIRE_ENTRY_SIZE(lens[i]);
	}
	attached = total;
	if (arg == 8)
		h.len += seed & 1 ? 1 : -1;
	if (arg == 9 && (seed & 1) && total < IPCSOCK_MAX_FDS)
		idx[attached++] = pool_pick(fz, seed);
	else if (arg == 9 && total)
		attached--;
	else if (arg == 9)
		h.nr_fds++;
	if (arg == 12)
		rec[0] += seed & 1 ? 1 : -1;
	if (arg == 13 && !((seed & 3) % 3))
		h.flags = 1 << (seed >> 5);
	if (arg == 13 && (seed & 3) == 1)
		rec[1] = 1u << (seed >> 3);
	memcpy(txbuf, &h, sizeof(h));
	memcpy(txbuf + TEST_WIRE_HDR_LEN, rec, sizeof(rec));

	if (peer_sendmsg(fz, txbuf, off, idx, attached, false))
		return;
	for (i = 0; i < attached; i++)
		if (idx[i] == POOL_REMOTE)
			fz->remote_in_flight = true;
	/* What a receiver takes: the format's rules, no more. */
	valid = !test_wire_check(&split, txbuf, off, attached,
				 fz->fl->max_msg, false) && !fz->reset_at;
	if (!valid) {
		m = &sent[fz->nr_sent++];
		memset(m, 0, sizeof(*m));
		m->status = DG_INVALID;
		m->len = off - TEST_WIRE_HDR_LEN;
		m->nr_fds = m->dg_fds = attached;
		memcpy(m->fds, idx, attached);
		fz->broken_sent = true;
		return;
	}
	total = 0;
	for (i = 0; i < n; i++) {
		m = &sent[fz->nr_sent++];
		m->status = DG_VALID;
		m->seed = seed + i;
		m->empty = false;
		m->len = lens[i];
		m->nr_fds = nfds[i];
		m->dg_fds = attached;
		memcpy(m->fds, idx + total, nfds[i]);
		total += nfds[i];
	}
	fz->rec_extra += n - 1;
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
		/* A record's messages fail with it: all of them. */
		if (sent[i].status == DG_VALID && sent[i].dg_fds) {
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
	why = test_wire_check(&split, rxbuf, n, nr, fz->fl->max_msg, true);
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
