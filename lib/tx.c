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
 * A queued slot holds a buffer: TX_SLOT_INLINE bytes of one lazily mapped
 * arena, enough for a message of a few hundred bytes with a few fds, or a
 * heap buffer for a larger message or a record. Buffers are not tied to
 * slots: under back-pressure the queue never empties and its head runs
 * round every slot in turn, so buffers a slot kept would make all of them
 * resident, each as large as a record (send_queue_len x 16 KiB). A sent
 * slot gives its buffer back to one of two stacks, and a slot takes the
 * one given back last: only as many buffers as slots were queued at once
 * ever exist, their pages warm, with no allocation in steady state.
 */
#define TX_SLOT_INLINE	2048u

/* A heap buffer on ch->tx_heap_free, its first bytes reused for this. */
struct tx_spare {
	struct tx_spare *next;
	size_t cap;
};

/*
 * The slots themselves come in chunks allocated the first time the queue
 * reaches them: an idle channel holds only the table of chunk pointers,
 * where the whole array of a default queue would be 24 KiB. Chunks never
 * move, so a slot's msghdr stays valid while the kernel holds it.
 */
#define TX_CHUNK	16u

/*
 * A record may fill a receive slot up to its 16th KiB (rx.c puts the
 * datagram IPCSOCK_RX_HDR_OFF bytes in): four pages, which many small
 * messages fill as they would fill four slots of their own, so packing
 * costs the receiver no more memory per message than one datagram each.
 * Larger records would save little: at 16 KiB the copy costs more than
 * the datagram.
 */
#define TX_REC_BYTES	(16384u - IPCSOCK_RX_HDR_OFF)

/*
 * The direct path's scratch of the native mode: for each message, the
 * bytes that go before its payload (the padding of the entry before it,
 * the record or version 1 header, its entry header), and the iovecs of
 * up to IPCSOCK_TX_DIRECT_BATCH datagrams.
 */
struct tx_scratch {
	struct iovec iov[2 * IPCSOCK_TX_DIRECT_MSGS + IPCSOCK_TX_DIRECT_BATCH];
	unsigned char pre[IPCSOCK_TX_DIRECT_MSGS][32] __attribute__((aligned(8)));
	unsigned int msgs[IPCSOCK_TX_DIRECT_BATCH];	/* per datagram */
};

/* Where in its scratch a message's entry header goes: 8-byte aligned. */
#define TX_PRE_ENTRY	24

static const unsigned char zero_pad[16];

static unsigned int tx_chunk_len(const struct ipcsock_chan *ch)
{
	unsigned int n = ch->loop->tx_slots;

	return n < TX_CHUNK ? n : TX_CHUNK;
}

/*
 * @sndbuf: the socket's send buffer; AF_UNIX takes a datagram of up to
 * SO_SNDBUF - 32 bytes (unix_dgram_sendmsg() in net/unix/af_unix.c).
 */
int chan_tx_alloc(struct ipcsock_chan *ch, int sndbuf)
{
	unsigned int n = ch->loop->tx_slots;
	size_t max = ch->loop->max_msg_size + sizeof(struct ipcsock_wire_hdr);
	void *mem;

	/* A record is never larger than a version 1 datagram can be. */
	ch->tx_rec_max = max < TX_REC_BYTES ? max : TX_REC_BYTES;
	if (sndbuf > 32 && (size_t)sndbuf - 32 < ch->tx_rec_max)
		ch->tx_rec_max = sndbuf - 32;

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
	ch->tx_arena_next = 0;
	ch->tx_inline_free = NULL;
	ch->tx_heap_free = NULL;
	return 0;
}

/*
 * An arena piece for a slot that holds none: the one given back last, or
 * one never used. There are as many as slots, and a slot holds one piece
 * or one heap buffer, so they never run out.
 */
static void slot_take_inline(struct ipcsock_chan *ch,
			     struct ipcsock_tx_slot *slot)
{
	void **top = ch->tx_inline_free;

	if (top) {
		ch->tx_inline_free = *top;
		slot->buf = (unsigned char *)top;
	} else {
		slot->buf = ch->tx_arena + ch->tx_arena_next;
		ch->tx_arena_next += TX_SLOT_INLINE;
	}
	slot->cap = TX_SLOT_INLINE;
}

/* The slot for the message at @seq, its chunk allocated on first use. */
static struct ipcsock_tx_slot *chan_tx_slot_get(struct ipcsock_chan *ch,
						unsigned int seq)
{
	unsigned int len = tx_chunk_len(ch);
	unsigned int idx = seq & (ch->loop->tx_slots - 1);
	struct ipcsock_tx_slot **chunk = &ch->tx[idx >> ch->tx_chunk_shift];
	struct ipcsock_tx_slot *slot;

	if (!*chunk) {
		*chunk = calloc(len, sizeof(**chunk));
		if (!*chunk)
			return NULL;
	}
	slot = chan_tx_slot(ch, seq);
	/* A slot whose fill failed still holds its buffer. */
	if (!slot->buf)
		slot_take_inline(ch, slot);
	return slot;
}

static bool slot_on_heap(const struct ipcsock_chan *ch,
			 const struct ipcsock_tx_slot *slot)
{
	return slot->buf && (slot->buf < ch->tx_arena ||
			     slot->buf >= ch->tx_arena + ch->tx_arena_len);
}

/* Give @buf, of @cap bytes, back to its stack. */
static void tx_buf_put(struct ipcsock_chan *ch, unsigned char *buf,
		       size_t cap)
{
	struct tx_spare *spare = (void *)buf;

	if (buf >= ch->tx_arena && buf < ch->tx_arena + ch->tx_arena_len) {
		*(void **)buf = ch->tx_inline_free;
		ch->tx_inline_free = buf;
		return;
	}
	spare->next = ch->tx_heap_free;
	spare->cap = cap;
	ch->tx_heap_free = spare;
}

/*
 * A heap buffer of at least @need bytes: the one given back last, grown
 * if it is too small (buffers then converge to the largest size asked
 * for, and allocating stops).
 */
static unsigned char *tx_buf_get(struct ipcsock_chan *ch, size_t *need)
{
	struct tx_spare *spare = ch->tx_heap_free;

	if (spare) {
		ch->tx_heap_free = spare->next;
		if (spare->cap >= *need) {
			*need = spare->cap;
			return (unsigned char *)spare;
		}
		free(spare);
	}
	return malloc(*need);
}

static int *slot_fds(struct ipcsock_tx_slot *slot)
{
	return (int *)CMSG_DATA((struct cmsghdr *)slot->buf);
}

/* Where the entries start: the first one is also a version 1 header. */
static unsigned char *slot_entries(const struct ipcsock_tx_slot *slot)
{
	return slot->buf + slot->ctrl_cap + IPCSOCK_WIRE_REC_HDR;
}

static void slot_clear(struct ipcsock_chan *ch, struct ipcsock_tx_slot *slot)
{
	close_fds(slot_fds(slot), slot->nr_fds);
	ch->tx_msgs -= slot->nr_msgs;
	slot->nr_fds = 0;
	slot->nr_msgs = 0;
	slot->len = 0;
	tx_buf_put(ch, slot->buf, slot->cap);
	slot->buf = NULL;
	slot->cap = 0;
}

void chan_tx_free(struct ipcsock_chan *ch)
{
	unsigned int i, j, len = tx_chunk_len(ch);
	struct ipcsock_tx_slot *chunk;
	struct tx_spare *spare;

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
	while ((spare = ch->tx_heap_free)) {
		ch->tx_heap_free = spare->next;
		free(spare);
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
		slot_clear(ch, chan_tx_slot(ch, ch->tx_head++));
	/*
	 * Empty: start again at slot 0, so that only the chunks of as many
	 * slots as the queue ever got deep are allocated.
	 */
	if (ch->tx_head == ch->tx_tail)
		ch->tx_head = ch->tx_tail = 0;
}

/* Unqueue slots from the newest back, keeping the oldest @keep. */
static void tx_unqueue(struct ipcsock_chan *ch, unsigned int keep)
{
	while (chan_tx_queued(ch) > keep)
		slot_clear(ch, chan_tx_slot(ch, --ch->tx_tail));
	if (ch->lc)
		wire_lc_tx_dropped(ch);
}

/*
 * Give up on queued messages that send accepted, from the newest back,
 * keeping the oldest @keep slots: counted, since the application was
 * told they would go.
 */
void chan_tx_drop(struct ipcsock_chan *ch, unsigned int keep)
{
	unsigned int before = ch->tx_msgs;

	tx_unqueue(ch, keep);
	ch->st.tx_dropped += before - ch->tx_msgs;
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

/*
 * Make room in @slot for a control message of @ctrl_cap bytes and
 * entries of @len bytes, moving what it holds. Buffers grow in whole
 * pages: growing by the few bytes another fd needs would free and
 * reallocate large buffers again and again, and glibc's fragmentation
 * creeps RSS up (soak).
 */
static int slot_room(struct ipcsock_chan *ch, struct ipcsock_tx_slot *slot,
		     unsigned int ctrl_cap, size_t len)
{
	size_t need = ctrl_cap + IPCSOCK_WIRE_REC_HDR + len;
	size_t used = IPCSOCK_WIRE_REC_HDR + slot->len;
	size_t ctrl = slot->nr_fds ? CMSG_SPACE(slot->nr_fds * sizeof(int)) : 0;
	unsigned char *buf = slot->buf;

	if (ctrl_cap == slot->ctrl_cap && need <= slot->cap)
		return 0;
	if (need > slot->cap) {
		need = (need + 4095) & ~(size_t)4095;
		buf = tx_buf_get(ch, &need);
		if (!buf)
			return -ENOMEM;
		memcpy(buf, slot->buf, ctrl);
		memcpy(buf + ctrl_cap, slot->buf + slot->ctrl_cap, used);
		tx_buf_put(ch, slot->buf, slot->cap);
		slot->buf = buf;
		slot->cap = need;
	} else {
		memmove(buf + ctrl_cap, buf + slot->ctrl_cap, used);
	}
	slot->ctrl_cap = ctrl_cap;
	return 0;
}

/* Point the slot's msghdr at what it holds, as one datagram. */
static void slot_finish(struct ipcsock_tx_slot *slot, uint8_t flags)
{
	struct ipcsock_wire_hdr *hdr = (void *)slot_entries(slot);
	struct ipcsock_wire_rec *rec;
	size_t ctrl = CMSG_SPACE(slot->nr_fds * sizeof(int));
	struct cmsghdr *cmsg;

	memset(&slot->msg, 0, sizeof(slot->msg));
	if (slot->nr_fds) {
		cmsg = (struct cmsghdr *)slot->buf;
		cmsg->cmsg_level = SOL_SOCKET;
		cmsg->cmsg_type = SCM_RIGHTS;
		cmsg->cmsg_len = CMSG_LEN(slot->nr_fds * sizeof(int));
		/* The kernel copies the CMSG_SPACE padding too: no stale bytes. */
		memset(slot->buf + cmsg->cmsg_len, 0, ctrl - cmsg->cmsg_len);
		slot->msg.msg_control = slot->buf;
		slot->msg.msg_controllen = ctrl;
	}
	if (slot->nr_msgs <= 1) {
		/* The entry header is the version 1 header's first 6 bytes. */
		hdr->version = IPCSOCK_WIRE_VERSION;
		hdr->flags = flags;
		slot->iov.iov_base = hdr;
		slot->iov.iov_len = sizeof(*hdr) + hdr->len;
	} else {
		((struct ipcsock_wire_entry *)hdr)->zero = 0;
		hdr = (void *)(slot->buf + slot->ctrl_cap);
		hdr->len = sizeof(*rec) + slot->len;
		hdr->nr_fds = slot->nr_fds;
		hdr->version = IPCSOCK_WIRE_RECORD;
		hdr->flags = 0;
		rec = (void *)(hdr + 1);
		rec->nr_msgs = slot->nr_msgs;
		rec->zero = 0;
		slot->iov.iov_base = hdr;
		slot->iov.iov_len = IPCSOCK_WIRE_REC_HDR + slot->len;
	}
	slot->msg.msg_iov = &slot->iov;
	slot->msg.msg_iovlen = 1;
}

/*
 * Add a message to @slot, empty or holding messages queued before it:
 * copy its bytes, dup its fds after theirs. @flags: of a message alone.
 */
static int slot_fill(struct ipcsock_chan *ch, struct ipcsock_tx_slot *slot,
		     const struct ipcsock_payload *p, uint8_t flags)
{
	size_t esz = IPCSOCK_WIRE_ENTRY_SIZE(p->len);
	unsigned int i, want, ctrl_cap = slot->ctrl_cap;
	struct ipcsock_wire_entry *e;
	int fds[IPCSOCK_MAX_FDS];
	int err;

	/*
	 * Dup before making room: a failure must leave @slot as it was.
	 * Messages queued in it before this one still go out, and making
	 * room moves them and their header, which only slot_finish() at
	 * the end points the msghdr at again.
	 */
	for (i = 0; i < p->nr_fds; i++) {
		fds[i] = fcntl(p->fds[i], F_DUPFD_CLOEXEC, 0);
		if (fds[i] < 0 || dup_took_later_fd(p, i, fds[i])) {
			err = fds[i] < 0 ? -errno : -EBADF;

			close_fds(fds, fds[i] < 0 ? i : i + 1);
			return err;
		}
	}
	if (!slot->nr_msgs)
		ctrl_cap = 0;
	want = slot->nr_fds + p->nr_fds;
	if (want && CMSG_SPACE(want * sizeof(int)) > ctrl_cap) {
		/* Room for more: a record's fds are not moved for each. */
		if (slot->nr_msgs && want < 2 * slot->nr_fds)
			want = 2 * slot->nr_fds;
		if (slot->nr_msgs && want < 8)
			want = 8;
		if (want > IPCSOCK_MAX_FDS)
			want = IPCSOCK_MAX_FDS;
		ctrl_cap = CMSG_SPACE(want * sizeof(int));
	}
	err = slot_room(ch, slot, ctrl_cap, slot->len + esz);
	if (err) {
		close_fds(fds, p->nr_fds);
		return err;
	}
	memcpy(slot_fds(slot) + slot->nr_fds, fds, p->nr_fds * sizeof(int));
	e = (void *)(slot_entries(slot) + slot->len);
	e->len = p->len;
	e->nr_fds = p->nr_fds;
	e->zero = 0;
	if (p->len)
		memcpy(e + 1, p->data, p->len);
	memset((unsigned char *)(e + 1) + p->len, 0, esz - sizeof(*e) - p->len);
	slot->len += esz;
	slot->nr_fds += p->nr_fds;
	if (!flags) {
		slot->nr_msgs++;
		ch->tx_msgs++;
	}
	slot_finish(slot, flags);
	if (ch->lc)
		/* Slots are always filled at the queue's tail. */
		wire_lc_slot_fill(ch, ch->tx_tail, slot, e, p->len,
				  p->nr_fds);
	return 0;
}

/*
 * The newest queued slot, if messages may still join it: the kernel does
 * not hold it yet, it is no reset notice, and libcamera's format has no
 * records.
 */
static struct ipcsock_tx_slot *tx_open_slot(struct ipcsock_chan *ch)
{
	const struct ipcsock_backend_ops *ops = ch->loop->ops;
	unsigned int queued = chan_tx_queued(ch);
	struct ipcsock_tx_slot *slot;

	if (ch->lc || !queued)
		return NULL;
	if (ops->tx_inflight && ops->tx_inflight(ch) >= queued)
		return NULL;
	slot = chan_tx_slot(ch, ch->tx_tail - 1);
	return slot->nr_msgs ? slot : NULL;
}

/* Does @p fit in a record with what @slot holds? */
static bool slot_takes(const struct ipcsock_chan *ch,
		       const struct ipcsock_tx_slot *slot,
		       const struct ipcsock_payload *p)
{
	return slot->nr_fds + p->nr_fds <= IPCSOCK_MAX_FDS &&
	       IPCSOCK_WIRE_REC_HDR + slot->len +
	       IPCSOCK_WIRE_ENTRY_SIZE(p->len) <= ch->tx_rec_max;
}

/* The state of a slot before messages joined it, to put back. */
struct slot_mark {
	struct ipcsock_tx_slot *slot;
	unsigned int nr_fds, nr_msgs;
	size_t len;
};

static void slot_unfill(struct ipcsock_chan *ch, const struct slot_mark *m)
{
	struct ipcsock_tx_slot *slot = m->slot;

	if (!slot || slot->nr_msgs == m->nr_msgs)
		return;
	close_fds(slot_fds(slot) + m->nr_fds, slot->nr_fds - m->nr_fds);
	ch->tx_msgs -= slot->nr_msgs - m->nr_msgs;
	slot->nr_fds = m->nr_fds;
	slot->nr_msgs = m->nr_msgs;
	slot->len = m->len;
	slot_finish(slot, 0);
}

/* Queue one message: in the open slot if it fits, else in a new one. */
static int tx_queue_one(struct ipcsock_chan *ch,
			const struct ipcsock_payload *p)
{
	struct ipcsock_tx_slot *slot = tx_open_slot(ch);
	int err;

	if (slot && slot_takes(ch, slot, p))
		return slot_fill(ch, slot, p, 0);
	slot = chan_tx_slot_get(ch, ch->tx_tail);
	if (!slot)
		return -ENOMEM;
	err = slot_fill(ch, slot, p, 0);
	if (!err)
		ch->tx_tail++;
	return err;
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

/* Room for @ctrl bytes of control messages in the loop's scratch. */
static int tx_ctrl_room(struct ipcsock_loop *loop, size_t ctrl)
{
	unsigned char *buf;

	if (ctrl <= loop->tx_ctrl_cap)
		return 0;
	buf = malloc(ctrl);
	if (!buf)
		return -ENOMEM;
	free(loop->tx_ctrl);
	loop->tx_ctrl = buf;
	loop->tx_ctrl_cap = ctrl;
	return 0;
}

/*
 * Attach the fds of @n messages, @nr_fds in all, to @mh as one SCM_RIGHTS
 * control message at *@off of the loop's scratch, in message order.
 */
static void direct_fds(struct ipcsock_loop *loop, struct msghdr *mh,
		       size_t *off, const struct ipcsock_payload *p,
		       unsigned int n, unsigned int nr_fds)
{
	struct cmsghdr *cmsg;
	unsigned int i;
	int *fds;

	if (!nr_fds)
		return;
	mh->msg_control = loop->tx_ctrl + *off;
	mh->msg_controllen = CMSG_SPACE(nr_fds * sizeof(int));
	*off += mh->msg_controllen;
	/* The kernel copies the CMSG_SPACE padding too: no stale bytes. */
	memset(mh->msg_control, 0, mh->msg_controllen);
	cmsg = CMSG_FIRSTHDR(mh);
	cmsg->cmsg_level = SOL_SOCKET;
	cmsg->cmsg_type = SCM_RIGHTS;
	cmsg->cmsg_len = CMSG_LEN(nr_fds * sizeof(int));
	fds = (int *)CMSG_DATA(cmsg);
	for (i = 0; i < n; i++) {
		/* A message without fds may have fds NULL. */
		if (p[i].nr_fds)
			memcpy(fds, p[i].fds, p[i].nr_fds * sizeof(int));
		fds += p[i].nr_fds;
	}
}

/* An upper bound of the control bytes of @n messages, however packed. */
static size_t direct_ctrl_len(const struct ipcsock_payload *p, unsigned int n)
{
	size_t ctrl = 0;
	unsigned int i;

	for (i = 0; i < n; i++)
		if (p[i].nr_fds)
			ctrl += CMSG_SPACE(p[i].nr_fds * sizeof(int));
	return ctrl;
}

/*
 * libcamera mode: lay out @n messages, at most half of
 * IPCSOCK_TX_DIRECT_BATCH, two datagrams each, in the loop's scratch.
 */
static int direct_prepare_lc(struct ipcsock_chan *ch,
			     const struct ipcsock_payload *p, unsigned int n)
{
	struct ipcsock_loop *loop = ch->loop;
	struct msghdr *mh;
	unsigned int i;
	size_t off = 0;
	int err;

	err = tx_ctrl_room(loop, direct_ctrl_len(p, n));
	if (err)
		return err;
	for (i = 0; i < n; i++) {
		mh = wire_lc_direct_msg(loop, &p[i], i);
		direct_fds(loop, mh, &off, &p[i], 1, p[i].nr_fds);
	}
	return n;
}

/*
 * How many of @n messages fit one record, at least 1; their fds, and the
 * record's len field (the bytes after its first header).
 */
static unsigned int direct_rec_len(const struct ipcsock_chan *ch,
				   const struct ipcsock_payload *p,
				   unsigned int n, unsigned int *nr_fds,
				   size_t *len)
{
	size_t esz, bytes = IPCSOCK_WIRE_REC_HDR;
	unsigned int i;

	*nr_fds = 0;
	for (i = 0; i < n; i++) {
		esz = IPCSOCK_WIRE_ENTRY_SIZE(p[i].len);
		if (*nr_fds + p[i].nr_fds > IPCSOCK_MAX_FDS ||
		    bytes + esz > ch->tx_rec_max)
			break;
		bytes += esz;
		*nr_fds += p[i].nr_fds;
	}
	*len = bytes - sizeof(struct ipcsock_wire_hdr);
	if (i < 2) {
		*nr_fds = p[0].nr_fds;
		return 1;
	}
	return i;
}

/*
 * Native mode: lay out in the loop's scratch one sendmmsg vector of up
 * to IPCSOCK_TX_DIRECT_BATCH datagrams for the first of @n messages,
 * pointing at the caller's bytes and fds: each datagram a record of as
 * many messages as fit, or one message alone as a version 1 datagram.
 * Returns the messages laid out, *@dgrams the datagrams, or -errno.
 */
static int direct_prepare(struct ipcsock_chan *ch,
			  const struct ipcsock_payload *p, unsigned int n,
			  unsigned int *dgrams)
{
	struct ipcsock_loop *loop = ch->loop;
	struct tx_scratch *sc = loop->tx_scratch;
	struct ipcsock_wire_entry *e;
	struct ipcsock_wire_hdr *hdr;
	unsigned int d, i, j, k, v = 0, nr_fds;
	size_t pad, rec_len, off = 0;
	unsigned char *start;
	struct msghdr *mh;
	int err;

	if (n > IPCSOCK_TX_DIRECT_MSGS)
		n = IPCSOCK_TX_DIRECT_MSGS;
	if (!sc) {
		sc = malloc(sizeof(*sc));
		if (!sc)
			return -ENOMEM;
		loop->tx_scratch = sc;
	}
	err = tx_ctrl_room(loop, direct_ctrl_len(p, n));
	if (err)
		return err;
	for (d = 0, i = 0; i < n && d < IPCSOCK_TX_DIRECT_BATCH; d++, i += k) {
		k = direct_rec_len(ch, p + i, n - i, &nr_fds, &rec_len);
		mh = &loop->tx_mmsg[d].msg_hdr;
		memset(mh, 0, sizeof(*mh));
		mh->msg_iov = &sc->iov[v];
		for (j = i, pad = 0; j < i + k; j++) {
			/*
			 * The entry header at an aligned place near the end
			 * of the message's scratch; before it the record
			 * header, or the padding of the entry before.
			 */
			e = (void *)(sc->pre[j] + TX_PRE_ENTRY);
			e->len = p[j].len;
			e->nr_fds = p[j].nr_fds;
			e->zero = 0;
			start = (unsigned char *)e - pad;
			memset(start, 0, pad);
			if (k > 1 && j == i) {
				start = (unsigned char *)e - IPCSOCK_WIRE_REC_HDR;
				hdr = (void *)start;
				hdr->len = rec_len;
				hdr->nr_fds = nr_fds;
				hdr->version = IPCSOCK_WIRE_RECORD;
				hdr->flags = 0;
				((struct ipcsock_wire_rec *)(hdr + 1))->nr_msgs = k;
				((struct ipcsock_wire_rec *)(hdr + 1))->zero = 0;
			} else if (k == 1) {
				hdr = (void *)e;
				hdr->version = IPCSOCK_WIRE_VERSION;
				hdr->flags = 0;
			}
			sc->iov[v].iov_base = start;
			sc->iov[v++].iov_len = (unsigned char *)(e + 1) - start;
			if (p[j].len) {
				/* sendmsg only reads */
				sc->iov[v].iov_base = (void *)p[j].data;
				sc->iov[v++].iov_len = p[j].len;
			}
			pad = IPCSOCK_WIRE_ENTRY_SIZE(p[j].len) - sizeof(*e) -
			      p[j].len;
		}
		if (k > 1 && pad) {
			sc->iov[v].iov_base = (void *)zero_pad;
			sc->iov[v++].iov_len = pad;
		}
		mh->msg_iovlen = &sc->iov[v] - mh->msg_iov;
		direct_fds(loop, mh, &off, p + i, k, nr_fds);
		sc->msgs[d] = k;
	}
	*dgrams = d;
	return i;
}

/* A send's error that says the peer's end went away, not ours failed. */
static bool tx_peer_gone(int err)
{
	return err == -EPIPE || err == -ECONNRESET || err == -ENOTCONN ||
	       err == -ECONNREFUSED;
}

/*
 * libcamera: datagram @d of the direct path's vector, a payload, did not
 * go after its header. Ask the kernel again for it alone, to learn why
 * sendmmsg stopped: sent now (1), or queued as half sent behind a full
 * socket (0), or the peer's end is gone (its -errno); any other error
 * fails the channel, and the call says -EPIPE.
 */
static int tx_direct_lc_payload(struct ipcsock_chan *ch, unsigned int d)
{
	ssize_t ret;
	int err;

	do {
		ret = sendmsg(ch->fd, &ch->loop->tx_mmsg[d].msg_hdr,
			      MSG_DONTWAIT | MSG_NOSIGNAL);
	} while (ret < 0 && errno == EINTR);
	if (ret >= 0) {
		ch->st.tx_datagrams++;
		return 1;
	}
	err = -errno;
	if (err == -EAGAIN || err == -EWOULDBLOCK) {
		wire_lc_tx_sent(ch, 1);
		return 0;
	}
	/* The caller ends sending as for any send. */
	if (tx_peer_gone(err))
		return err;
	chan_end(ch, err);
	return -EPIPE;
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
	unsigned int i, n, d;
	int ret;

	*sent = 0;
	while (*sent < count) {
		n = count - *sent;
		if (ch->lc) {
			if (n > IPCSOCK_TX_DIRECT_BATCH / 2)
				n = IPCSOCK_TX_DIRECT_BATCH / 2;
			ret = direct_prepare_lc(ch, p + *sent, n);
			d = 2 * n;
		} else {
			ret = direct_prepare(ch, p + *sent, n, &d);
		}
		if (ret < 0)
			return ret;
		if (d == 1)
			ret = sendmsg(ch->fd, &loop->tx_mmsg[0].msg_hdr,
				      MSG_DONTWAIT | MSG_NOSIGNAL);
		else
			ret = sendmmsg(ch->fd, loop->tx_mmsg, d,
				       MSG_DONTWAIT | MSG_NOSIGNAL);
		if (ret < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				return 0;
			return -errno;
		}
		/*
		 * sendmsg returns bytes, sendmmsg datagrams. A short count
		 * drops the error that stopped it (a full socket, or
		 * ETOOMANYREFS, ...): the next round asks the kernel again.
		 * A peer's reset that stopped it is lost that way (the
		 * kernel took it from the socket): its close, racing with
		 * the batch, then reads as orderly.
		 */
		if (d == 1)
			ret = 1;
		ch->st.tx_datagrams += ret;
		if (!ch->lc) {
			for (i = 0; i < (unsigned int)ret; i++) {
				*sent += loop->tx_scratch->msgs[i];
				ch->st.tx_records += loop->tx_scratch->msgs[i] > 1;
			}
			continue;
		}
		*sent += ret / 2;
		/*
		 * libcamera: a header went out and its payload did not. The
		 * message is queued as half sent, its payload next to go, if
		 * the socket was full; if the kernel refused the payload
		 * (fds over the in-flight limit, one that cannot be passed),
		 * the peer holds a header no payload can follow.
		 */
		if (ret % 2) {
			ret = tx_direct_lc_payload(ch, ret);
			if (ret <= 0)
				return ret;
			(*sent)++;
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

/*
 * Does this send wait for the end of dispatch, to go out packed with the
 * others sent from its callbacks? A channel's first send in a dispatch
 * goes at once, as outside it: a reply is not delayed. Those after it
 * queue, and the end of dispatch sends the queue, a record per datagram
 * (loop_tx_release_held()). With ring sends everything is queued and
 * submitted at the end of dispatch anyway: there all of them wait.
 */
static bool tx_hold(const struct ipcsock_chan *ch)
{
	const struct ipcsock_loop *loop = ch->loop;

	if (!loop->dispatching || ch->lc)
		return false;
	if ((loop->flags & IPCSOCK_LOOP_RING_SENDS) && loop->ops->tx_inflight)
		return true;
	return ch->tx_gen == loop->dispatch_gen;
}

/* Send what a channel held back (tx_hold()) now. */
static void tx_unhold(struct ipcsock_chan *ch)
{
	if (list_empty(&ch->tx_node))
		return;
	list_del_init(&ch->tx_node);
	if (ch->sock)
		ch->loop->ops->tx_start(ch);
}

/* Dispatch ends: send what its callbacks sent, held back till now. */
void loop_tx_release_held(struct ipcsock_loop *loop)
{
	while (!list_empty(&loop->tx_held))
		tx_unhold(list_first_entry(&loop->tx_held, struct ipcsock_chan,
					   tx_node));
}

static int tx_send_batch(struct ipcsock *sock,
			 const struct ipcsock_payload *payloads,
			 unsigned int count)
{
	unsigned int i, queued, direct;
	uint64_t bytes = 0, fds = 0;
	struct slot_mark mark = { 0 };
	struct ipcsock_loop *loop;
	struct ipcsock_chan *ch;
	bool full, hold, went_direct = false;
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
	full = count > loop->send_queue_len - ch->tx_msgs;
	/*
	 * One message fails whole, in the kernel or in slot_fill; a batch
	 * must too. Checking up front also stops a dup made for one payload
	 * from taking the number of a closed fd in a later one. And it must
	 * come before the reap below, which can receive: the kernel installs
	 * a peer's fds at the lowest free numbers, and a closed fd of the
	 * caller's would then name a file the peer sent us. In libcamera's
	 * format a lone message is two datagrams: a closed fd found by the
	 * kernel would stop its payload after its header went out.
	 */
	if (count > 1 || full || (ch->lc && payloads[0].nr_fds)) {
		err = batch_fds_check(payloads, count);
		if (err)
			return err;
	}
	if (full) {
		/* Held back, the queue may go out now: then no more held. */
		tx_unhold(ch);
		/* Completions not yet reaped may free slots: reap, no callbacks. */
		loop->ops->poll(loop, 0);
		if (sock->ch != ch)
			return -ENOTCONN;
		if (ch->tx_err)
			return -EPIPE;
		if (count > loop->send_queue_len - ch->tx_msgs) {
			ch->st.tx_nobufs++;
			return -ENOBUFS;
		}
	}
	i = 0;
	hold = tx_hold(ch);
	if (loop->dispatching)
		ch->tx_gen = loop->dispatch_gen;
	if (!hold && !chan_tx_queued(ch) &&
	    !(loop->flags & IPCSOCK_LOOP_RING_SENDS) &&
	    loop->ops->tx_direct_ok(ch, count)) {
		went_direct = true;
		err = tx_direct(ch, payloads, count, &i);
		if (tx_peer_gone(err)) {
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
	mark.slot = tx_open_slot(ch);
	if (mark.slot) {
		mark.nr_fds = mark.slot->nr_fds;
		mark.nr_msgs = mark.slot->nr_msgs;
		mark.len = mark.slot->len;
	}
	/*
	 * A message of this call whose header went out is as good as sent
	 * for this; one half sent by an earlier call is that call's.
	 */
	direct = i + (ch->lc && went_direct && wire_lc_tx_half(ch));
	for (; i < count; i++) {
		err = tx_queue_one(ch, &payloads[i]);
		if (err) {
			/* All or nothing: unqueue what this call queued. */
			tx_unqueue(ch, queued);
			slot_unfill(ch, &mark);
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
	}
	if (ch->tx_msgs > ch->st.tx_queue_max)
		ch->st.tx_queue_max = ch->tx_msgs;
	tx_count(ch, count, bytes, fds, direct);
	IPCSOCK_TRACE(queue, sock, count - direct, ch->tx_msgs);
	if (!hold)
		loop->ops->tx_start(ch);
	else if (list_empty(&ch->tx_node))
		list_add_tail(&ch->tx_node, &loop->tx_held);
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
		chan_tx_count_sent(ch, ret);
		chan_tx_sent(ch, ret);
	}
	return 0;
}

/* The next @n datagrams of the queue went out: count them. */
void chan_tx_count_sent(struct ipcsock_chan *ch, unsigned int n)
{
	unsigned int i;

	ch->st.tx_datagrams += n;
	for (i = 0; !ch->lc && i < n; i++)
		ch->st.tx_records +=
			chan_tx_slot(ch, ch->tx_head + i)->nr_msgs > 1;
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
