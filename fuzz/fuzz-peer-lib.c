// SPDX-License-Identifier: MIT
/*
 * fuzz-peer: the library's side. The callbacks, what they receive and
 * check against the model, the replies ready_read sends, and closing,
 * freeing or rebinding the handle from inside them.
 */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fuzz-peer.h"

void fz_local_close(struct fz *fz, bool do_free)
{
	fz->lib_closed = true;
	if (do_free) {
		if (fz->sock == fz->fl->kept)
			fz->fl->kept = NULL;
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
	if (m->status == DG_INVALID || m->status == DG_RESET)
		fz_fail("datagram %u is broken or a reset notice but was delivered",
			idx);
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

	/*
	 * With RING_SENDS a message leaves the queue when its CQE is handled,
	 * which on a shared ring only the application's reaping does.
	 */
	if (fz->fl->ring && fz->fl->ring_sends)
		unread = fz->lib_sent - fz->lib_reaped;

	if (chain_refused(fz->fl, ret))
		return true;
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

/*
 * The channel's counters agree with what the application got: every
 * message the library took in was delivered once none is left, and the
 * last one handed out holds a buffer until the next receive.
 */
static void check_stats(struct fz *fz, bool drained)
{
	struct ipcsock_stats st;
	int ret = ipcsock_get_stats(fz->sock, &st, sizeof(st));

	if (ret != (int)sizeof(st))
		fz_fail("ipcsock_get_stats: %d", ret);
	if (drained ? st.rx_msgs != fz->delivered : st.rx_msgs < fz->delivered)
		fz_fail("stats: %llu messages received, %u delivered%s",
			(unsigned long long)st.rx_msgs, fz->delivered,
			drained ? ", none pending" : "");
	if (drained ? st.rx_bufs != 0 : st.rx_bufs < 1)
		fz_fail("stats: %llu receive buffers in use, %s",
			(unsigned long long)st.rx_bufs,
			drained ? "none pending" : "one handed out");
	/* A record is one datagram for all its messages. */
	if (st.rx_bufs_max < st.rx_bufs ||
	    st.rx_datagrams + fz->rec_extra < st.rx_msgs ||
	    st.rx_records > st.rx_datagrams)
		fz_fail("stats: high-water mark %llu below %llu in use, or %llu datagrams (%llu records, %u more messages sent in records) for %llu messages",
			(unsigned long long)st.rx_bufs_max,
			(unsigned long long)st.rx_bufs,
			(unsigned long long)st.rx_datagrams,
			(unsigned long long)st.rx_records, fz->rec_extra,
			(unsigned long long)st.rx_msgs);
}

int recv_one(struct fz *fz)
{
	struct ipcsock_payload p;
	int ret;

	if (!fz->sock)
		return -ENOTCONN;
	ret = ipcsock_receive(fz->sock, &p);
	if (ret == -EAGAIN) {
		check_stats(fz, true);
		return ret;
	}
	if (ret == -ENOTCONN && fz->lib_closed)
		return ret;
	if (ret)
		fz_fail("ipcsock_receive: %d", ret);
	check_delivery(fz, &p);
	check_stats(fz, false);
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
		/* Its sockets would not fit under a low RLIMIT_NOFILE. */
		if (fz->delivered == fz->rebind_at && !fz->nofile_low) {
			fz_rebind(fz, fz->rebind_how, true);
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
	if (fz->rebind_in_hangup && !fz->nofile_low)
		fz_rebind(fz, fz->rebind_how, true);
}

void fz_set_callbacks(struct fz *fz)
{
	ipcsock_set_ready_read(fz->sock, fz->consumer == CONSUMER_MANUAL ?
				NULL : on_ready, fz);
	ipcsock_set_hangup(fz->sock, on_hangup, fz);
}

/* OP_FLAGS: bit 0 close in hangup, bit 1 reply from ready_read, bits 2-3:
 * close (1) or free (2) the socket from ready_read after [n & 15] + 1 more
 * messages.
 */
void op_flags(struct fz *fz, struct fz_in *in, unsigned int arg)
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
