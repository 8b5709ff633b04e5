// SPDX-License-Identifier: GPL-2.0
/*
 * Resident memory under back-pressure, on every backend: a send queue that
 * never empties, its head running round every slot, costs memory for the
 * slots queued at once, not for every slot it ever went through (a slot
 * that kept its record buffer made send_queue_len x 16 KiB resident); and
 * records nobody receives fill a receive buffer a page of theirs, not
 * every buffer with four.
 */
#include <stdio.h>

#include "selftest.h"

#if defined(__SANITIZE_THREAD__)
#define UNDER_TSAN	1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define UNDER_TSAN	1
#endif
#endif
#ifndef UNDER_TSAN
#define UNDER_TSAN	0
#endif

/* Messages of 1000 bytes: about 16 to a record. */
#define MSG_LEN		1000
#define BATCH		16
/* A full record: 15 x (1000 + 16) + 16 bytes fill its 16th KiB. */
#define REC_MSGS	15
/* How many times the queue's head goes round its 256 slots. */
#define LAPS		3

/* Anonymous memory of this process, in KiB (heap and private mappings). */
static long anon_kib(void)
{
	char line[256];
	long kib = -1;
	FILE *f;

	f = fopen("/proc/self/smaps_rollup", "re");
	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "Anonymous: %ld kB", &kib) == 1)
			break;
	fclose(f);
	return kib;
}

/* Send batches until the queue is full: how many messages went. */
static unsigned int fill_queue(struct ipcsock *a, const char *buf)
{
	struct ipcsock_payload p[BATCH];
	unsigned int i, sent = 0;

	for (i = 0; i < BATCH; i++)
		p[i] = msg_of(buf, MSG_LEN, NULL, 0);
	while (ipcsock_send_batch(a, p, BATCH) == BATCH)
		sent += BATCH;
	return sent;
}

CTX_FIXTURE(memory);

TEST_F(memory, send_queue_running_round_keeps_few_buffers)
{
	static char buf[MSG_LEN], rbuf[65536];
	struct ipcsock_stats st = { 0 };
	unsigned int sent, want, rounds = 0;
	long before, full, after;
	struct ipcsock *a;
	uint64_t deadline;
	int raw, i;

	/*
	 * ThreadSanitizer maps shadow memory for what the process touches,
	 * anonymous too: it doubles the growth measured (3 MiB against 1.3
	 * natively, with the same buffers).
	 */
	if (UNDER_TSAN)
		SKIP(return, "ThreadSanitizer's shadow memory counts as ours");
	raw = ctx_raw_pair(_metadata, &self->t, self->t.loop, &a);
	/*
	 * The first fill makes as many buffers as a full queue needs: what
	 * comes after may reuse them, and should need no more.
	 */
	before = anon_kib();
	ASSERT_LT(0, before) TH_LOG("no /proc/self/smaps_rollup");
	sent = fill_queue(a, buf);
	ASSERT_LT(0, sent);
	full = anon_kib();
	/*
	 * Take a few datagrams out, let the queue move up behind them, fill
	 * it again: it never empties, and its head goes round its slots.
	 */
	want = LAPS * IPCSOCK_DEFAULT_SEND_QUEUE * BATCH;
	deadline = now_ms() + 4 * WAIT_MS;
	while (sent < want && now_ms() < deadline) {
		for (i = 0; i < 4; i++)
			if (raw_recv(raw, rbuf, sizeof(rbuf), NULL, 0, NULL,
				     NULL) < 0)
				break;
		ipcsock_loop_dispatch(self->t.loop, 0);
		sent += fill_queue(a, buf);
		rounds++;
	}
	ASSERT_LE(want, sent) TH_LOG("%u messages in %u rounds", sent, rounds);
	after = anon_kib();
	ASSERT_LE(0, ipcsock_get_stats(a, &st, sizeof(st)));
	TH_LOG("%s: anonymous KiB: %ld before, %+ld full, %+ld after %u msgs, %llu records",
	       backend_name(self->t.backend), before, full - before,
	       after - full, sent, (unsigned long long)st.tx_records);
	/* Records went through the queue, or the test tests nothing. */
	EXPECT_LT(100, st.tx_records);
	/*
	 * A full queue of 1000-byte messages is about 256 KiB; a buffer
	 * kept by each slot made it 4 MiB.
	 */
	EXPECT_GT(1024, after - before);
}

/*
 * Records of 15 messages, four pages each, that the application does not
 * receive: the channel stops taking them in at about recv_buffers pages
 * (8 buffers; up to 12 while the first ones were on their way), where it
 * took recv_buffers of them (32: 512 KiB, where 32 messages alone would
 * have kept 128 KiB). They all arrive, in order, once received.
 */
TEST_F(memory, records_not_received_fill_few_buffers)
{
	static char buf[MSG_LEN];
	struct ipcsock_payload p[REC_MSGS], got;
	struct ipcsock_stats st = { 0 };
	unsigned int i, sent = 0, recvd = 0, seq;
	struct ipcsock_loop *la;
	struct ipcsock *a, *b;
	uint64_t end;
	int ret;

	la = ctx_loop(_metadata, &self->t, 0, 0, 0);
	ctx_pair(_metadata, &self->t, la, &a, self->t.loop, &b);
	end = now_ms() + 300;
	while (now_ms() < end) {
		for (i = 0; i < REC_MSGS; i++)
			p[i] = msg_of(buf, MSG_LEN, NULL, 0);
		memcpy(buf, &sent, sizeof(sent));
		ret = ipcsock_send_batch(a, p, REC_MSGS);
		if (ret == REC_MSGS)
			sent += REC_MSGS;
		else
			ASSERT_EQ(-ENOBUFS, ret);
		ipcsock_loop_dispatch(la, 0);
		ipcsock_loop_dispatch(self->t.loop, 0);
	}
	ASSERT_LE(0, ipcsock_get_stats(b, &st, sizeof(st)));
	TH_LOG("%s: %u sent, %llu received in %llu records, %llu buffers busy",
	       backend_name(self->t.backend), sent,
	       (unsigned long long)st.rx_msgs,
	       (unsigned long long)st.rx_records,
	       (unsigned long long)st.rx_bufs);
	EXPECT_LT(0, st.rx_records);
	EXPECT_GE(12, st.rx_bufs_max);
	/* Stalled, not lost: every batch's first message, in order. */
	while (recvd < sent) {
		ASSERT_EQ(0, receive_wait(self->t.loop, b, &got, WAIT_MS))
			TH_LOG("message %u of %u", recvd, sent);
		if (recvd % REC_MSGS == 0) {
			memcpy(&seq, got.data, sizeof(seq));
			ASSERT_EQ(recvd, seq);
		}
		recvd++;
		ipcsock_loop_dispatch(la, 0);
	}
}

TEST_HARNESS_MAIN
