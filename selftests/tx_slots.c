// SPDX-License-Identifier: GPL-2.0
/*
 * White-box: the send queue's head and tail are free-running 32-bit
 * counters mapped to slots. Under back-pressure that never lets the queue
 * empty they do wrap, after 2^32 messages; every queued message must still
 * have a slot of its own then, whatever send_queue_len the caller chose.
 * The slots come in chunks (tx.c): the test lays them out in one array, so
 * a slot's place in it names the slot.
 */
#include "selftest.h"

/* The harness has its own, identical ARRAY_SIZE. */
#undef ARRAY_SIZE
#include "internal.h"

static bool slots_distinct(struct ipcsock_chan *ch,
			   struct ipcsock_tx_slot *base, unsigned int first,
			   unsigned int n, unsigned char *seen)
{
	unsigned int k, idx;
	bool ok = true;

	memset(seen, 0, ch->loop->tx_slots);
	for (k = 0; k < n; k++) {
		idx = chan_tx_slot(ch, first + k) - base;
		if (idx >= ch->loop->tx_slots || seen[idx])
			ok = false;
		else
			seen[idx] = 1;
	}
	return ok;
}

TEST(queued_messages_keep_their_slots_across_the_wrap)
{
	static const unsigned int lens[] = { 1, 2, 3, 5, 7, 100, 256, 1000 };
	unsigned int i, back;

	for (i = 0; i < ARRAY_SIZE(lens); i++) {
		IPCSOCK_LOOP_OPTS(opts, .backend = IPCSOCK_BACKEND_EPOLL,
				  .send_queue_len = lens[i]);
		struct ipcsock_loop *loop = ipcsock_loop_new(&opts);
		struct ipcsock_chan ch = { .loop = loop };
		struct ipcsock_tx_slot *base;
		unsigned int c, nr_chunks;
		unsigned char *seen;

		ASSERT_NE(NULL, loop);
		ASSERT_LE(lens[i], loop->tx_slots);
		ASSERT_EQ(0, chan_tx_alloc(&ch, 0));
		nr_chunks = loop->tx_slots >> ch.tx_chunk_shift;
		ASSERT_LE(1, nr_chunks);
		base = calloc(loop->tx_slots, sizeof(*base));
		seen = malloc(loop->tx_slots);
		ASSERT_NE(NULL, base);
		ASSERT_NE(NULL, seen);
		for (c = 0; c < nr_chunks; c++)
			ch.tx[c] = base + (c << ch.tx_chunk_shift);
		/* A full queue whose head sits anywhere around the wrap. */
		for (back = 0; back <= lens[i] + 1; back++)
			EXPECT_TRUE(slots_distinct(&ch, base, -back, lens[i],
						   seen)) {
				TH_LOG("send_queue_len %u, head %u", lens[i],
				       -back);
			}
		for (c = 0; c < nr_chunks; c++)
			ch.tx[c] = NULL;
		chan_tx_free(&ch);
		free(seen);
		free(base);
		ipcsock_loop_free(loop);
	}
}

TEST_HARNESS_MAIN
