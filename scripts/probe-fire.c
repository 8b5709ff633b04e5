// SPDX-License-Identifier: MIT
/*
 * probe-fire.c - what scripts/check-probes.sh traces: a channel that
 * sends itself one 5-byte message and receives it in its ready_read
 * callback, every 10 ms until killed (bpftrace attaches after it
 * started; the probe fires on the next round). Exits 1 on an error.
 */
#include <time.h>

#include <ipcsock.h>

static void on_ready(struct ipcsock *sock, void *arg)
{
	struct ipcsock_payload p;

	(void)arg;
	while (!ipcsock_receive(sock, &p))
		;
}

int main(void)
{
	struct timespec pause = { .tv_nsec = 10 * 1000 * 1000 };
	struct ipcsock_payload msg = { .data = "hello", .len = 5 };
	struct ipcsock_loop *loop = ipcsock_loop_new(NULL);
	struct ipcsock *a = ipcsock_new(loop), *b = ipcsock_new(loop);
	int fd;

	if (!a || !b)
		return 1;
	fd = ipcsock_create(a);
	if (fd < 0 || ipcsock_bind(b, fd))
		return 1;
	ipcsock_set_ready_read(a, on_ready, NULL);
	for (;;) {
		if (ipcsock_send(b, &msg))
			return 1;
		if (ipcsock_loop_dispatch(loop, 100) < 0)
			return 1;
		nanosleep(&pause, NULL);
	}
}
