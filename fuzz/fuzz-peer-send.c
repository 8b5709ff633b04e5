// SPDX-License-Identifier: MIT
/*
 * fuzz-peer: the send side's argument checks. ipcsock_send() and
 * ipcsock_send_batch() with arguments from the input; what they accept
 * the peer must read back whole and in order.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <string.h>
#include <unistd.h>

#include "fuzz-peer.h"

/*
 * Could the kernel install a received fd at the lowest free number after
 * op_lib_send() has closed it, before the library looks at it? Then the
 * closed fd names a file again and no one can tell. On an io_uring
 * without DEFER_TASKRUN a receive runs as task work at the return of any
 * syscall, the harness's own close() included: so while a datagram with
 * fds from the peer may wait, and, on a shared ring, while a channel
 * closed earlier in the input may still receive (until the application
 * reaps its cancellation). With DEFER_TASKRUN and on epoll, receives run
 * only inside library calls, and the library checks the caller's fds
 * before it reaps.
 */
static bool recv_may_install_fds(const struct fz *fz)
{
	unsigned int i;

	if (!fz->fl->async_rx)
		return false;
	if (fz->fl->ring && fz->convs > 1)
		return true;
	for (i = fz->delivered; i < fz->nr_sent; i++)
		if (sent[i].nr_fds)
			return true;
	return false;
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
void op_lib_send(struct fz *fz, struct fz_in *in)
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
		pl[i].data = b & 4 ? NULL : txbuf + TEST_WIRE_HDR_LEN;
		pl[i].fds = b & 8 ? NULL : fdv[i];
		if ((b & 0x40) && pl[i].nr_fds) {
			unsigned int pos = in_u8(in) % pl[i].nr_fds;
			static const int bad[] = { -1, INT_MIN, 1 << 30,
						   FZ_UNUSED_FD, 0 };

			fdv[i][pos] = bad[in_u8(in) % 5];
			if (!fdv[i][pos] && recv_may_install_fds(fz))
				fdv[i][pos] = FZ_UNUSED_FD;
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
		errs[i] = test_payload_err(&pl[i], fz->fl->max_msg);
		if (errs[i])
			any_err = true;
	}
	/* Every payload's bytes are the pattern of the seed: one buffer. */
	fill_pattern(txbuf + TEST_WIRE_HDR_LEN, max_len, seed);
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
