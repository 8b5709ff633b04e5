// SPDX-License-Identifier: MIT
/*
 * The send side: argument checks, the bounded send queue and its slots.
 *
 * A message is copied into a slot together with the library's own dup of
 * each fd before send returns. io_uring reads msg_control and the bytes
 * when the SENDMSG runs, which can be long after submit; a caller that
 * closed an fd and got the same number back for another file would
 * otherwise send the wrong file.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "internal.h"
#include "trace.h"

/*
 * Each slot starts with TX_SLOT_INLINE bytes of one lazily mapped arena:
 * enough for a message of a few hundred bytes with a few fds, with no
 * malloc ever, and only the slots the queue actually reached cost
 * resident memory. A larger message gets a heap buffer, kept for reuse.
 */
#define TX_SLOT_INLINE	2048u

/*
 * The slots themselves come in chunks allocated the first time the queue
 * reaches them: an idle channel holds only the table of chunk pointers,
 * where the whole array of a default queue would be 24 KiB. Chunks never
 * move, so a slot's msghdr stays valid while the kernel holds it.
 */
#define TX_CHUNK	16u

static unsigned int tx_chunk_len(const struct ipcsock_chan *ch)
{
	unsigned int n = ch->loop->tx_slots;

	return n < TX_CHUNK ? n : TX_CHUNK;
}

int chan_tx_alloc(struct ipcsock_chan *ch)
{
	unsigned int n = ch->loop->tx_slots;
	void *mem;

	ch->tx_chunk_shift = __builtin_ctz(tx_chunk_len(ch));
	ch->tx = calloc(n >> ch->tx_chunk_shift, sizeof(*ch->tx));
	if (!ch->tx)
		return -ENOMEM;
	ch->tx_arena_len = (size_t)n * TX_SLOT_INLINE;
	mem = mmap(NULL, ch->tx_arena_len, PROT_READ | PROT_WRITE,
		   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (mem == MAP_FAILED)
		return -errno;
	ch->tx_arena = mem;
	return 0;
}

/* The slot for the message at @seq, its chunk allocated on first use. */
static struct ipcsock_tx_slot *chan_tx_slot_get(struct ipcsock_chan *ch,
						unsigned int seq)
{
	unsigned int i, len = tx_chunk_len(ch);
	unsigned int idx = seq & (ch->loop->tx_slots - 1);
	struct ipcsock_tx_slot **chunk = &ch->tx[idx >> ch->tx_chunk_shift];
	size_t first;

	if (!*chunk) {
		*chunk = calloc(len, sizeof(**chunk));
		if (!*chunk)
			return NULL;
		first = idx & ~(len - 1);
		for (i = 0; i < len; i++) {
			(*chunk)[i].buf = ch->tx_arena +
					  (first + i) * TX_SLOT_INLINE;
			(*chunk)[i].cap = TX_SLOT_INLINE;
		}
	}
	return chan_tx_slot(ch, seq);
}

static bool slot_on_heap(const struct ipcsock_chan *ch,
			 const struct ipcsock_tx_slot *slot)
{
	return slot->buf < ch->tx_arena ||
	       slot->buf >= ch->tx_arena + ch->tx_arena_len;
}

static void slot_clear(struct ipcsock_tx_slot *slot)
{
	if (slot->nr_fds) {
		struct cmsghdr *cmsg = CMSG_FIRSTHDR(&slot->msg);

		close_fds((int *)CMSG_DATA(cmsg), slot->nr_fds);
		slot->nr_fds = 0;
	}
}

void chan_tx_free(struct ipcsock_chan *ch)
{
	unsigned int i, j, len = tx_chunk_len(ch);
	struct ipcsock_tx_slot *chunk;

	if (!ch->tx)
		return;
	chan_tx_drop(ch, 0);
	for (i = 0; i < ch->loop->tx_slots >> ch->tx_chunk_shift; i++) {
		chunk = ch->tx[i];
		if (!chunk)
			continue;
		for (j = 0; j < len; j++)
			if (slot_on_heap(ch, &chunk[j]))
				free(chunk[j].buf);
		free(chunk);
	}
	if (ch->tx_arena)
		munmap(ch->tx_arena, ch->tx_arena_len);
	ch->tx_arena = NULL;
	free(ch->tx);
	ch->tx = NULL;
}

/* The oldest @n queued messages were sent (or are given up on). */
void chan_tx_release(struct ipcsock_chan *ch, unsigned int n)
{
	if (n)
		ch->loop->tx_progress = true;
	while (n--)
		slot_clear(chan_tx_slot(ch, ch->tx_head++));
	/*
	 * Empty: start again at slot 0, so that only as many slots as the
	 * queue ever got deep hold buffers, not all of them in turn.
	 */
	if (ch->tx_head == ch->tx_tail)
		ch->tx_head = ch->tx_tail = 0;
}

/* Drop queued messages from the newest back, keeping the oldest @keep. */
void chan_tx_drop(struct ipcsock_chan *ch, unsigned int keep)
{
	while (chan_tx_queued(ch) > keep)
		slot_clear(chan_tx_slot(ch, --ch->tx_tail));
	if (ch->lc)
		wire_lc_tx_dropped(ch);
}

/*
 * Sending ends with @err. A peer that went away (-EPIPE, -ECONNRESET,
 * -ENOTCONN) ends only sending: the receive side reports it, once every
 * message the peer sent has been delivered, and the socket's pending
 * error may come to whichever call is first, so a reset seen here is
 * kept for the hang-up. Any other error (-ETOOMANYREFS, -ENOMEM, ...)
 * ends the whole channel now (chan_end()). Every later send fails with
 * -EPIPE; queued messages go at once, but those the kernel holds come
 * back through their completions.
 */
void chan_end_send(struct ipcsock_chan *ch, int err)
{
	const struct ipcsock_backend_ops *ops = ch->loop->ops;
	unsigned int keep;

	/*
	 * A datagram peer that closed shows only here: the kernel refuses
	 * the first send (-ECONNREFUSED), then knows no peer at all.
	 */
	if (ch->lc && err == -ENOTCONN)
		err = -ECONNREFUSED;
	if (err != -EPIPE && err != -ECONNRESET && err != -ENOTCONN) {
		chan_end(ch, err);
		return;
	}
	if (err == -ECONNRESET)
		ch->rx_reset = err;
	if (!ch->tx_err)
		ch->tx_err = -EPIPE;
	keep = ops->tx_inflight ? ops->tx_inflight(ch) : 0;
	chan_tx_drop(ch, ch->lc ? wire_lc_tx_slots(ch, keep) : keep);
}

static int payload_check(const struct ipcsock_payload *p, unsigned int max)
{
	if (!p || (!p->len && !p->nr_fds))
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
 * A dup gets the lowest free number. If that equals a later fd of the same
 * payload, that fd was closed when we got here, and duping it next would
 * "succeed" on our own copy: it is a bad fd, found without a syscall.
 */
static bool dup_took_later_fd(const struct ipcsock_payload *p, unsigned int i,
			      int dup_fd)
{
	while (++i < p->nr_fds)
		if (p->fds[i] == dup_fd)
			return true;
	return false;
}

static int slot_fill(struct ipcsock_chan *ch, struct ipcsock_tx_slot *slot,
		     const struct ipcsock_payload *p, uint8_t flags)
{
	size_t ctrl = p->nr_fds ? CMSG_SPACE(p->nr_fds * sizeof(int)) : 0;
	size_t need = ctrl + sizeof(struct ipcsock_wire_hdr) + p->len;
	struct ipcsock_wire_hdr *hdr;
	struct cmsghdr *cmsg;
	unsigned int i;
	int *fds;

	if (slot->cap < need) {
		unsigned char *buf;

		/*
		 * Grow in whole pages: growing by the few bytes another fd
		 * needs would free and reallocate large buffers again and
		 * again, and glibc's fragmentation creeps RSS up (soak).
		 */
		need = (need + 4095) & ~(size_t)4095;
		buf = malloc(need);

		if (!buf)
			return -ENOMEM;
		if (slot_on_heap(ch, slot))
			free(slot->buf);
		slot->buf = buf;
		slot->cap = need;
	}
	memset(&slot->msg, 0, sizeof(slot->msg));
	if (ctrl) {
		memset(slot->buf, 0, ctrl);
		slot->msg.msg_control = slot->buf;
		slot->msg.msg_controllen = ctrl;
		cmsg = CMSG_FIRSTHDR(&slot->msg);
		cmsg->cmsg_level = SOL_SOCKET;
		cmsg->cmsg_type = SCM_RIGHTS;
		cmsg->cmsg_len = CMSG_LEN(p->nr_fds * sizeof(int));
		fds = (int *)CMSG_DATA(cmsg);
		for (i = 0; i < p->nr_fds; i++) {
			fds[i] = fcntl(p->fds[i], F_DUPFD_CLOEXEC, 0);
			if (fds[i] < 0 || dup_took_later_fd(p, i, fds[i])) {
				int err = fds[i] < 0 ? -errno : -EBADF;

				close_fds(fds, fds[i] < 0 ? i : i + 1);
				return err;
			}
		}
		slot->nr_fds = p->nr_fds;
	}
	hdr = (struct ipcsock_wire_hdr *)(slot->buf + ctrl);
	hdr->len = p->len;
	hdr->nr_fds = p->nr_fds;
	hdr->version = IPCSOCK_WIRE_VERSION;
	hdr->flags = flags;
	if (p->len)
		memcpy(hdr + 1, p->data, p->len);
	slot->iov.iov_base = hdr;
	slot->iov.iov_len = sizeof(*hdr) + p->len;
	slot->msg.msg_iov = &slot->iov;
	slot->msg.msg_iovlen = 1;
	if (ch->lc)
		/* Slots are always filled at the queue's tail. */
		wire_lc_slot_fill(ch, ch->tx_tail, slot, hdr, p->len,
				  p->nr_fds);
	return 0;
}

static bool fd_closed(int fd)
{
	return fcntl(fd, F_GETFD) < 0 && errno == EBADF;
}

/* Is one of these fds closed? One syscall for many fds. */
static int fds_closed(struct pollfd *pfd, unsigned int n)
{
	unsigned int i;
	int ret;

	do {
		ret = poll(pfd, n, 0);
	} while (ret < 0 && errno == EINTR);
	/* poll(2) takes no more fds than RLIMIT_NOFILE: ask each one. */
	if (ret < 0 && errno == EINVAL) {
		for (i = 0; i < n; i++)
			if (fd_closed(pfd[i].fd))
				return -EBADF;
		return 0;
	}
	if (ret < 0)
		return -errno;
	/* O_PATH files poll as POLLNVAL too, and can be passed. */
	for (i = 0; ret && i < n; i++)
		if ((pfd[i].revents & POLLNVAL) && fd_closed(pfd[i].fd))
			return -EBADF;
	return 0;
}

/*
 * Every fd of a batch is checked before any message goes out, so that a
 * bad one fails the whole batch. A zero-timeout poll with no events asks
 * nothing of the files but reports POLLNVAL for a closed fd: one syscall
 * for up to 64 fds, where an fcntl each would double the syscalls of a
 * stream of one-fd messages.
 */
static int batch_fds_check(const struct ipcsock_payload *p, unsigned int count)
{
	struct pollfd pfd[64];
	unsigned int i, j, n = 0;
	int err;

	for (i = 0; i < count; i++) {
		for (j = 0; j < p[i].nr_fds; j++) {
			if (p[i].fds[j] < 0)
				return -EBADF;
			pfd[n].fd = p[i].fds[j];
			pfd[n].events = 0;
			pfd[n].revents = 0;
			if (++n < ARRAY_SIZE(pfd))
				continue;
			err = fds_closed(pfd, n);
			if (err)
				return err;
			n = 0;
		}
	}
	return n ? fds_closed(pfd, n) : 0;
}

/*
 * Lay out up to IPCSOCK_TX_DIRECT_BATCH messages (half as many in the
 * libcamera mode, two datagrams each) in the loop's scratch as one
 * sendmmsg vector pointing at the caller's bytes and fds.
 */
static int direct_prepare(struct ipcsock_chan *ch,
			  const struct ipcsock_payload *p, unsigned int n)
{
	struct ipcsock_loop *loop = ch->loop;
	size_t ctrl = 0, off = 0;
	struct cmsghdr *cmsg;
	struct msghdr *mh;
	unsigned int i;

	for (i = 0; i < n; i++)
		if (p[i].nr_fds)
			ctrl += CMSG_SPACE(p[i].nr_fds * sizeof(int));
	if (ctrl > loop->tx_ctrl_cap) {
		unsigned char *buf = malloc(ctrl);

		if (!buf)
			return -ENOMEM;
		free(loop->tx_ctrl);
		loop->tx_ctrl = buf;
		loop->tx_ctrl_cap = ctrl;
	}
	for (i = 0; i < n; i++) {
		struct ipcsock_wire_hdr *hdr = &loop->tx_hdr[i];
		struct iovec *iov = &loop->tx_iov[2 * i];

		if (ch->lc) {
			mh = wire_lc_direct_msg(loop, &p[i], i);
			goto fds;
		}
		hdr->len = p[i].len;
		hdr->nr_fds = p[i].nr_fds;
		hdr->version = IPCSOCK_WIRE_VERSION;
		hdr->flags = 0;
		iov[0].iov_base = hdr;
		iov[0].iov_len = sizeof(*hdr);
		iov[1].iov_base = (void *)p[i].data; /* sendmsg only reads */
		iov[1].iov_len = p[i].len;
		mh = &loop->tx_mmsg[i].msg_hdr;
		memset(mh, 0, sizeof(*mh));
		mh->msg_iov = iov;
		mh->msg_iovlen = p[i].len ? 2 : 1;
fds:
		if (!p[i].nr_fds)
			continue;
		mh->msg_control = loop->tx_ctrl + off;
		mh->msg_controllen = CMSG_SPACE(p[i].nr_fds * sizeof(int));
		off += mh->msg_controllen;
		/* The kernel copies the CMSG_SPACE padding too: no stale bytes. */
		memset(mh->msg_control, 0, mh->msg_controllen);
		cmsg = CMSG_FIRSTHDR(mh);
		cmsg->cmsg_level = SOL_SOCKET;
		cmsg->cmsg_type = SCM_RIGHTS;
		cmsg->cmsg_len = CMSG_LEN(p[i].nr_fds * sizeof(int));
		memcpy(CMSG_DATA(cmsg), p[i].fds, p[i].nr_fds * sizeof(int));
	}
	return 0;
}

/*
 * Nothing of this channel is queued or in flight, so order cannot break:
 * hand the messages to the kernel at once with sendmmsg(MSG_DONTWAIT),
 * from the caller's memory. The kernel copies the bytes and takes its own
 * file references before the call returns, so neither copy nor dup is
 * needed. *@sent says how many went out; the rest are for the queue when
 * the socket is full (0 returned), or nothing more can go because of the
 * negative errno returned.
 */
static int tx_direct(struct ipcsock_chan *ch, const struct ipcsock_payload *p,
		     unsigned int count, unsigned int *sent)
{
	struct ipcsock_loop *loop = ch->loop;
	unsigned int n, per = ch->lc ? 2 : 1;
	int ret;

	*sent = 0;
	while (*sent < count) {
		n = count - *sent;
		if (n > IPCSOCK_TX_DIRECT_BATCH / per)
			n = IPCSOCK_TX_DIRECT_BATCH / per;
		ret = direct_prepare(ch, p + *sent, n);
		if (ret)
			return ret;
		if (n * per == 1)
			ret = sendmsg(ch->fd, &loop->tx_mmsg[0].msg_hdr,
				      MSG_DONTWAIT | MSG_NOSIGNAL);
		else
			ret = sendmmsg(ch->fd, loop->tx_mmsg, n * per,
				       MSG_DONTWAIT | MSG_NOSIGNAL);
		if (ret < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				return 0;
			return -errno;
		}
		/*
		 * sendmsg returns bytes, sendmmsg messages. A short count
		 * drops the error that stopped it (a full socket, or
		 * ETOOMANYREFS, ...): the next round asks the kernel again.
		 * A peer's reset that stopped it is lost that way (the
		 * kernel took it from the socket): its close, racing with
		 * the batch, then reads as orderly.
		 */
		if (n * per == 1)
			ret = 1;
		ch->st.tx_datagrams += ret;
		*sent += ret / per;
		/*
		 * libcamera: a header went out and its payload did not. The
		 * message is queued as half sent, its payload next to go.
		 */
		if (ret % per) {
			wire_lc_tx_sent(ch, 1);
			return 0;
		}
	}
	return 0;
}

/* A send call of @count messages succeeded, @direct of them direct. */
static int tx_count(struct ipcsock_chan *ch, unsigned int count,
		    uint64_t bytes, uint64_t fds, unsigned int direct)
{
	struct ipcsock_stats *st = &ch->st;

	st->tx_msgs += count;
	st->tx_bytes += bytes;
	st->tx_fds += fds;
	st->tx_direct += direct;
	st->tx_queued += count - direct;
	IPCSOCK_TRACE(send, ch->sock, count, bytes, fds, direct);
	return count;
}

static int tx_send_batch(struct ipcsock *sock,
			 const struct ipcsock_payload *payloads,
			 unsigned int count)
{
	unsigned int i, queued, direct;
	uint64_t bytes = 0, fds = 0;
	struct ipcsock_tx_slot *slot;
	struct ipcsock_loop *loop;
	struct ipcsock_chan *ch;
	bool full;
	int err;

	if (!sock)
		return -EINVAL;
	ch = sock->ch;
	if (!ch)
		return -ENOTCONN;
	loop = ch->loop;
	if (!payloads || !count)
		return -EINVAL;
	for (i = 0; i < count; i++) {
		err = payload_check(&payloads[i], loop->max_msg_size);
		if (err)
			return err;
		bytes += payloads[i].len;
		fds += payloads[i].nr_fds;
	}
	if (ch->tx_err)
		return -EPIPE;
	full = count > loop->send_queue_len - chan_tx_queued(ch);
	/*
	 * One message fails whole, in the kernel or in slot_fill; a batch
	 * must too. Checking up front also stops a dup made for one payload
	 * from taking the number of a closed fd in a later one. And it must
	 * come before the reap below, which can receive: the kernel installs
	 * a peer's fds at the lowest free numbers, and a closed fd of the
	 * caller's would then name a file the peer sent us.
	 */
	if (count > 1 || full) {
		err = batch_fds_check(payloads, count);
		if (err)
			return err;
	}
	if (full) {
		/* Completions not yet reaped may free slots: reap, no callbacks. */
		loop->ops->poll(loop, 0);
		if (sock->ch != ch)
			return -ENOTCONN;
		if (ch->tx_err)
			return -EPIPE;
		if (count > loop->send_queue_len - chan_tx_queued(ch)) {
			ch->st.tx_nobufs++;
			return -ENOBUFS;
		}
	}
	i = 0;
	if (!chan_tx_queued(ch) && !(loop->flags & IPCSOCK_LOOP_RING_SENDS) &&
	    loop->ops->tx_direct_ok(ch, count)) {
		err = tx_direct(ch, payloads, count, &i);
		if (err == -EPIPE || err == -ECONNRESET || err == -ENOTCONN ||
		    err == -ECONNREFUSED) {
			chan_end_send(ch, err);
			return -EPIPE;
		}
		/*
		 * When nothing went out, the caller learns why (-ETOOMANYREFS
		 * over the in-flight fd limit, -ENOMEM) and the channel stays
		 * usable. After the head of a batch went out, the peer would
		 * see a torn batch: the channel fails with the error, and the
		 * call says -EPIPE, so that any other error keeps meaning
		 * "nothing happened, try again".
		 */
		if (err < 0) {
			if (!i)
				return err;
			chan_end(ch, err);
			return -EPIPE;
		}
		if (i == count)
			return tx_count(ch, count, bytes, fds, count);
	}
	queued = chan_tx_queued(ch);
	/* A message whose header went out is as good as sent for this. */
	direct = i + (ch->lc && wire_lc_tx_half(ch));
	for (; i < count; i++) {
		slot = chan_tx_slot_get(ch, ch->tx_tail);
		err = slot ? slot_fill(ch, slot, &payloads[i], 0) : -ENOMEM;
		if (err) {
			/* All or nothing: unqueue what this call queued. */
			chan_tx_drop(ch, queued);
			/*
			 * Out of memory or fds halfway through a batch whose
			 * head is already out: the peer would see a torn
			 * batch, so the channel fails instead (see above).
			 */
			if (!direct)
				return err;
			chan_end(ch, err);
			return -EPIPE;
		}
		ch->tx_tail++;
	}
	if (chan_tx_queued(ch) > ch->st.tx_queue_max)
		ch->st.tx_queue_max = chan_tx_queued(ch);
	tx_count(ch, count, bytes, fds, direct);
	IPCSOCK_TRACE(queue, sock, count - direct, chan_tx_queued(ch));
	loop->ops->tx_start(ch);
	return count;
}

int ipcsock_send_batch(struct ipcsock *sock,
		       const struct ipcsock_payload *payloads,
		       unsigned int count)
{
	int ret;

	if (sock && sock_inherited(sock))
		return -ECHILD;
	ret = tx_send_batch(sock, payloads, count);
	if (sock && sock->loop) {
		/* What was queued, or a failed channel's cancel. */
		loop_submit_if_outside(sock->loop);
		/* Reaping for room, or a failed channel, made callbacks due. */
		loop_wake_if_pending(sock->loop);
	}
	return ret;
}

int ipcsock_send(struct ipcsock *sock, const struct ipcsock_payload *payload)
{
	int ret = ipcsock_send_batch(sock, payload, 1);

	return ret < 0 ? ret : 0;
}

/*
 * Send queued messages with plain sendmsg, oldest first, as far as the
 * socket takes them. Only valid while no io_uring send is in flight, or
 * order would break. Returns 0 once the queue is empty, -EAGAIN when the
 * socket is full, another -errno when sending failed.
 */
int chan_tx_flush_direct(struct ipcsock_chan *ch)
{
	struct mmsghdr *mm = ch->loop->tx_mmsg;
	unsigned int i, n;
	int ret;

	while (chan_tx_queued(ch)) {
		n = chan_tx_datagrams(ch);
		if (n > IPCSOCK_TX_DIRECT_BATCH)
			n = IPCSOCK_TX_DIRECT_BATCH;
		for (i = 0; i < n; i++)
			mm[i].msg_hdr = *chan_tx_msg(ch, i);
		/* On a short count, the next call reports the error. */
		ret = sendmmsg(ch->fd, mm, n, MSG_DONTWAIT | MSG_NOSIGNAL);
		if (ret < 0) {
			if (errno == EINTR)
				continue;
			return errno == EWOULDBLOCK ? -EAGAIN : -errno;
		}
		ch->st.tx_datagrams += ret;
		chan_tx_sent(ch, ret);
	}
	return 0;
}

/*
 * The channel is closing with messages of the peer's that the application
 * never received: queue the reset notice (see wire.h) behind whatever is
 * still queued, so that it goes out last as close flushes the queue, on
 * whichever path the queue takes. Best effort: nothing goes after a send
 * error; a queue that fills every slot has no room for it, and the socket
 * would not take it then either. The kernel's own reset still applies to
 * what the socket holds unread.
 */
void chan_tx_reset_notice(struct ipcsock_chan *ch)
{
	static const struct ipcsock_payload none;
	struct ipcsock_tx_slot *slot;

	/* libcamera's format has no such notice. */
	if (ch->lc || ch->tx_err || chan_tx_queued(ch) >= ch->loop->tx_slots)
		return;
	slot = chan_tx_slot_get(ch, ch->tx_tail);
	if (slot && !slot_fill(ch, slot, &none, IPCSOCK_WIRE_F_RESET))
		ch->tx_tail++;
}
