// SPDX-License-Identifier: MIT
/*
 * api.cpp - what the C++ API adds over the C one: UniqueFD, Loop (options,
 * the per-thread default loop, errors without exceptions), the errors of
 * IPCUnixSocket, and its signals, whose slots may disconnect slots, close
 * the socket or destroy it while they are being called.
 */
#include <cstdint>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <sys/socket.h>
#include <unistd.h>

#include "harness.hpp"

using libipcsock::Connection;
using libipcsock::IPCUnixSocket;
using libipcsock::Loop;
using libipcsock::UniqueFD;
using harness::dispatch_until;

using Payload = IPCUnixSocket::Payload;

TEST(unique_fd, 0)
{
	int p[2];

	ASSERT_EQ(0, pipe2(p, O_CLOEXEC));

	UniqueFD none;

	EXPECT_FALSE(none.isValid());
	EXPECT_EQ(-1, none.get());
	{
		UniqueFD r(p[0]), w(p[1]);

		EXPECT_TRUE(r.isValid());
		EXPECT_EQ(p[0], r.get());

		/* Moving hands the descriptor over, nothing closes. */
		UniqueFD moved(std::move(r));

		EXPECT_FALSE(r.isValid());
		EXPECT_EQ(p[0], moved.get());
		EXPECT_TRUE(harness::fd_is_open(p[0]));

		/* Assigning closes what the target held. */
		moved = std::move(w);
		EXPECT_FALSE(harness::fd_is_open(p[0]));
		EXPECT_EQ(p[1], moved.get());

		/* Self-assignment and resetting to the same fd keep it. */
		UniqueFD &alias = moved;

		moved = std::move(alias);
		EXPECT_EQ(p[1], moved.get());
		moved.reset(p[1]);
		EXPECT_TRUE(harness::fd_is_open(p[1]));

		/* release() gives it up: the caller closes. */
		int fd = moved.release();

		EXPECT_EQ(p[1], fd);
		EXPECT_FALSE(moved.isValid());
		EXPECT_TRUE(harness::fd_is_open(fd));
		moved.reset(fd);
		moved.reset();
		EXPECT_FALSE(harness::fd_is_open(fd));
	}

	ASSERT_EQ(0, pipe2(p, O_CLOEXEC));
	{
		UniqueFD a(p[0]), b(p[1]);

		swap(a, b);
		EXPECT_EQ(p[1], a.get());
		EXPECT_EQ(p[0], b.get());
	}
	/* Both closed when they went out of scope. */
	EXPECT_FALSE(harness::fd_is_open(p[0]));
	EXPECT_FALSE(harness::fd_is_open(p[1]));
}

TEST(loop_options, harness::VARIANT_ALL)
{
	/* Value-initialised and set field by field: no macro needed. */
	struct ipcsock_loop_opts opts{};

	opts.backend = harness::test_opts().backend;
	opts.flags = harness::test_opts().flags;
	opts.send_queue_len = 4;
	{
		Loop loop(opts);
		/* Declared before the sockets: a loop outlives its sockets. */
		Loop moved = Loop::wrap(nullptr);

		ASSERT_TRUE(loop.isValid());
		EXPECT_EQ(0, loop.error());
		EXPECT_EQ(opts.backend, loop.backend());

		/* The option took effect: a queue of 4 fills. */
		IPCUnixSocket a(loop), b(loop);
		int ret = 0, sent = 0;

		ASSERT_EQ(0, b.bind(a.create()));
		while (sent < 10000 && !(ret = a.send(harness::payload("x"))))
			sent++;
		EXPECT_EQ(-ENOBUFS, ret);
		EXPECT_LT(sent, 10000);

		/* Moving a loop keeps its sockets working. */
		moved = std::move(loop);

		EXPECT_FALSE(loop.isValid());
		EXPECT_EQ(-EINVAL, loop.dispatch(0));
		EXPECT_TRUE(moved.isValid());
		unsigned int received = 0;

		b.readyRead.connect([&]() {
			Payload p;

			while (!b.receive(&p))
				received++;
		});
		EXPECT_TRUE(dispatch_until(moved, [&]() {
			return received == unsigned(sent);
		}));
	}

	/* Bad options: an invalid Loop with the C API's error. */
	opts.ring_entries = 1u << 30;
	Loop bad(opts);

	EXPECT_FALSE(bad.isValid());
	EXPECT_EQ(-EINVAL, bad.error());
	EXPECT_EQ(-EINVAL, bad.dispatch(0));
	EXPECT_EQ(-EINVAL, bad.fd());

	/* A socket on it fails, and does not land on another loop. */
	IPCUnixSocket s(bad);

	errno = 0;
	EXPECT_FALSE(s.create().isValid());
	EXPECT_EQ(EINVAL, errno);
	EXPECT_EQ(-EINVAL, s.bind(UniqueFD()));
	EXPECT_EQ(-ENOTCONN, s.send(harness::payload("x")));
	EXPECT_FALSE(s.isBound());
	s.close();
}

TEST(loop_wrap_adopt, harness::VARIANT_ALL)
{
	struct ipcsock_loop_opts opts = harness::test_opts();
	struct ipcsock_loop *c = ipcsock_loop_new(&opts);

	ASSERT_TRUE(c != nullptr);
	{
		Loop w = Loop::wrap(c);

		EXPECT_EQ(c, w.get());
	}
	/* A wrapped loop is not freed with the wrapper. */
	EXPECT_EQ(0, ipcsock_loop_dispatch(c, 0));
	{
		Loop owner = Loop::adopt(c);
		IPCUnixSocket a(owner), b(owner);
		bool got = false;

		ASSERT_EQ(0, b.bind(a.create()));
		b.readyRead.connect([&]() {
			Payload p;

			got = !b.receive(&p);
		});
		ASSERT_EQ(0, a.send(harness::payload("adopted")));
		EXPECT_TRUE(dispatch_until(owner, [&]() { return got; }));
	}
	/* The fd count at the end says the adopted loop was freed. */
	EXPECT_FALSE(Loop::wrap(nullptr).isValid());
	EXPECT_FALSE(Loop::adopt(nullptr).isValid());
}

TEST(loop_fd, harness::VARIANT_ALL)
{
	Loop loop = harness::test_loop();
	ASSERT_TRUE(loop.isValid());
	IPCUnixSocket a(loop), b(loop);
	unsigned int received = 0;
	int fd = loop.fd();

	ASSERT_LE(0, fd);
	EXPECT_EQ(fd, loop.fd());
	ASSERT_EQ(0, b.bind(a.create()));
	b.readyRead.connect([&]() {
		Payload p;

		while (!b.receive(&p))
			received++;
	});
	ASSERT_EQ(0, a.send(harness::payload("wake")));
	/* Readable once a slot is due, as an application's poll sees it. */
	struct pollfd pfd = { fd, POLLIN, 0 };

	EXPECT_EQ(1, poll(&pfd, 1, harness::WAIT_MS));
	EXPECT_TRUE(dispatch_until(loop, [&]() { return received == 1; }));
	/* Nothing due any more: a dispatch runs nothing, the fd is quiet. */
	EXPECT_EQ(0, loop.dispatch(0));
	EXPECT_FALSE(harness::readable(fd));
}

TEST(socket_errors, harness::VARIANT_ALL)
{
	Loop loop = harness::test_loop();
	ASSERT_TRUE(loop.isValid());
	IPCUnixSocket a(loop), b(loop);
	Payload p;

	/* Unbound. */
	EXPECT_FALSE(a.isBound());
	EXPECT_EQ(-ENOTCONN, a.receive(&p));
	EXPECT_EQ(-ENOTCONN, a.send(harness::payload("x")));
	a.close();

	/* bind() consumes the descriptor, also when it fails. */
	int pipefd[2];

	ASSERT_EQ(0, pipe2(pipefd, O_CLOEXEC));
	EXPECT_EQ(-ENOTSOCK, a.bind(UniqueFD(pipefd[0])));
	EXPECT_FALSE(harness::fd_is_open(pipefd[0]));
	close(pipefd[1]);
	EXPECT_EQ(-EBADF, a.bind(UniqueFD()));
	EXPECT_FALSE(a.isBound());

	/* Bound: create() again says EBUSY through errno. */
	UniqueFD end = a.create();

	ASSERT_TRUE(end.isValid());
	EXPECT_TRUE(harness::fd_is_cloexec(end.get()));
	EXPECT_TRUE(a.isBound());
	errno = 0;
	EXPECT_FALSE(a.create().isValid());
	EXPECT_EQ(EBUSY, errno);
	ASSERT_EQ(0, b.bind(std::move(end)));
	EXPECT_FALSE(end.isValid());

	/* receive(): nothing waiting, no payload. */
	EXPECT_EQ(-EAGAIN, b.receive(&p));
	EXPECT_EQ(-EINVAL, b.receive(nullptr));

	/* send(): empty, too many descriptors, a bad one. */
	EXPECT_EQ(-EINVAL, a.send(Payload()));
	Payload many;

	many.fds.assign(IPCSOCK_MAX_FDS + 1, 0);
	EXPECT_EQ(-EINVAL, a.send(many));
	Payload bad = harness::payload("bad fd");
	/* A number nothing will reuse meanwhile: the lowest free is taken. */
	int closed = fcntl(0, F_DUPFD_CLOEXEC, 900);

	ASSERT_LE(900, closed);
	close(closed);
	bad.fds.push_back(closed);
	EXPECT_EQ(-EBADF, a.send(bad));

	/* None of that queued anything; the channel still works. */
	ASSERT_EQ(0, a.send(harness::payload("still fine")));
	EXPECT_TRUE(dispatch_until(loop, [&]() {
		return b.receive(&p) == 0;
	}));
	EXPECT_EQ(std::string("still fine"), harness::text(p));

	/* Closed, bound again: a new channel. */
	a.close();
	EXPECT_FALSE(a.isBound());
	EXPECT_EQ(-ENOTCONN, a.send(harness::payload("x")));
	UniqueFD again = a.create();

	EXPECT_TRUE(again.isValid());
	EXPECT_TRUE(a.isBound());
}

TEST(receive_replaces_payload, harness::VARIANT_ALL)
{
	Loop loop = harness::test_loop();
	ASSERT_TRUE(loop.isValid());
	IPCUnixSocket a(loop), b(loop);
	Payload p;

	ASSERT_EQ(0, b.bind(a.create()));
	p.data = { 1, 2, 3, 4, 5, 6, 7, 8 };
	p.fds = { 100, 101 };	/* not ours: receive must not close them */
	ASSERT_EQ(0, a.send(harness::payload("ab")));
	ASSERT_TRUE(dispatch_until(loop, [&]() { return !b.receive(&p); }));
	EXPECT_EQ(std::string("ab"), harness::text(p));
	EXPECT_TRUE(p.fds.empty());
}

TEST(stats, harness::VARIANT_ALL)
{
	Loop loop = harness::test_loop();
	ASSERT_TRUE(loop.isValid());
	IPCUnixSocket a(loop), b(loop);
	struct ipcsock_stats st;
	Payload p = harness::payload("abc");
	int hangup_err = 1;
	unsigned int received = 0;

	EXPECT_EQ(-ENOTCONN, a.stats(&st));
	ASSERT_EQ(0, b.bind(a.create()));
	EXPECT_EQ(-EINVAL, a.stats(nullptr));
	p.fds = { 0 };
	for (int i = 0; i < 2; i++)
		ASSERT_EQ(0, a.send(p));
	ASSERT_EQ(0, a.stats(&st));
	EXPECT_EQ(2u, st.tx_msgs);
	EXPECT_EQ(6u, st.tx_bytes);
	EXPECT_EQ(2u, st.tx_fds);
	EXPECT_EQ(0u, st.ended);
	ASSERT_TRUE(dispatch_until(loop, [&]() {
		Payload r;

		while (!b.receive(&r)) {
			harness::close_fds(r);
			received++;
		}
		return received == 2;
	}));
	/* The hangup slot reads the counters of the channel that ended. */
	b.hangup.connect([&](int err) {
		struct ipcsock_stats end;

		if (!b.stats(&end) && end.ended)
			hangup_err = end.hangup_err;
		EXPECT_EQ(2u, end.rx_msgs);
		EXPECT_EQ(6u, end.rx_bytes);
		EXPECT_EQ(2u, end.rx_fds);
		EXPECT_EQ(err, end.hangup_err);
	});
	a.close();
	ASSERT_TRUE(dispatch_until(loop, [&]() { return hangup_err != 1; }));
	EXPECT_EQ(0, hangup_err);
	b.close();
	EXPECT_EQ(-ENOTCONN, b.stats(&st));
}

TEST(ready_read_once_per_dispatch, harness::VARIANT_ALL)
{
	Loop loop = harness::test_loop();
	ASSERT_TRUE(loop.isValid());
	IPCUnixSocket a(loop), b(loop);
	unsigned int calls = 0, received = 0;

	ASSERT_EQ(0, b.bind(a.create()));
	/* A slot that takes one message per call. */
	b.readyRead.connect([&]() {
		Payload p;

		calls++;
		if (!b.receive(&p))
			received++;
	});
	for (int i = 0; i < 3; i++)
		ASSERT_EQ(0, a.send(harness::payload(std::to_string(i))));
	ASSERT_TRUE(dispatch_until(loop, [&]() { return received == 1; }));
	EXPECT_EQ(1u, calls);
	/* What it left makes each later dispatch call it once. */
	EXPECT_EQ(1, loop.dispatch(harness::WAIT_MS));
	EXPECT_EQ(2u, calls);
	EXPECT_EQ(1, loop.dispatch(harness::WAIT_MS));
	EXPECT_EQ(3u, calls);
	EXPECT_EQ(3u, received);
	/* Nothing left: no call, and the loop fd is quiet. */
	EXPECT_EQ(0, loop.dispatch(0));
	EXPECT_EQ(3u, calls);
	EXPECT_FALSE(harness::readable(loop.fd()));
}

TEST(no_slot_messages_wait, harness::VARIANT_ALL)
{
	Loop loop = harness::test_loop();
	ASSERT_TRUE(loop.isValid());
	IPCUnixSocket a(loop), b(loop);
	Payload p;
	int fd = loop.fd();

	ASSERT_LE(0, fd);
	ASSERT_EQ(0, b.bind(a.create()));
	ASSERT_EQ(0, a.send(harness::payload("first")));
	ASSERT_EQ(0, a.send(harness::payload("second")));

	/* Without a slot, nothing runs and the loop does not spin. */
	EXPECT_FALSE(dispatch_until(loop, [&]() { return false; }, 200));
	EXPECT_EQ(0, loop.dispatch(0));
	EXPECT_FALSE(harness::readable(fd));
	ASSERT_EQ(0, b.receive(&p));
	EXPECT_EQ(std::string("first"), harness::text(p));

	/* A slot connected with a message waiting runs on the next dispatch. */
	std::vector<std::string> got;
	Connection c = b.readyRead.connect([&]() {
		while (!b.receive(&p))
			got.push_back(harness::text(p));
	});

	EXPECT_TRUE(c.connected());
	EXPECT_TRUE(harness::readable(fd));
	EXPECT_EQ(1, loop.dispatch(0));
	ASSERT_EQ(1u, got.size());
	EXPECT_EQ(std::string("second"), got[0]);

	/* Disconnected again: messages wait once more. */
	c.disconnect();
	EXPECT_FALSE(c.connected());
	ASSERT_EQ(0, a.send(harness::payload("third")));
	EXPECT_FALSE(dispatch_until(loop, [&]() { return got.size() > 1; },
				    200));
	EXPECT_EQ(0, loop.dispatch(0));
	EXPECT_EQ(0, b.receive(&p));
	EXPECT_EQ(std::string("third"), harness::text(p));
}

namespace {

struct Recorder {
	IPCUnixSocket *sock;
	std::vector<std::string> *log;

	void onReadyRead()
	{
		Payload p;

		while (!sock->receive(&p))
			log->push_back("member:" + harness::text(p));
	}

	void onHangup(int err) const
	{
		log->push_back("hangup:" + std::to_string(err));
	}
};

} /* namespace */

TEST(several_slots, harness::VARIANT_ALL)
{
	Loop loop = harness::test_loop();
	ASSERT_TRUE(loop.isValid());
	IPCUnixSocket a(loop);
	auto b = std::make_unique<IPCUnixSocket>(loop);
	std::vector<std::string> log;
	Recorder rec = { &a, &log };
	bool added = false;

	ASSERT_EQ(0, b->bind(a.create()));
	/* Called in the order connected; the member function receives. */
	a.readyRead.connect([&]() { log.push_back("first"); });
	a.readyRead.connect(&rec, &Recorder::onReadyRead);
	a.readyRead.connect([&]() {
		log.push_back("third");
		/* One connected now is first called by the next emission. */
		if (!added) {
			added = true;
			a.readyRead.connect([&]() { log.push_back("late"); });
		}
	});
	a.hangup.connect(&rec, &Recorder::onHangup);

	ASSERT_EQ(0, b->send(harness::payload("m1")));
	ASSERT_TRUE(dispatch_until(loop, [&]() { return log.size() >= 3; }));
	std::vector<std::string> want = { "first", "member:m1", "third" };

	EXPECT_TRUE(log == want);
	log.clear();
	ASSERT_EQ(0, b->send(harness::payload("m2")));
	ASSERT_TRUE(dispatch_until(loop, [&]() { return log.size() >= 4; }));
	want = { "first", "member:m2", "third", "late" };
	EXPECT_TRUE(log == want);

	/* Signal::disconnect() removes them all. */
	log.clear();
	a.readyRead.disconnect();
	b.reset();
	ASSERT_TRUE(dispatch_until(loop, [&]() { return !log.empty(); }));
	want = { "hangup:0" };
	EXPECT_TRUE(log == want);
}

TEST(disconnect_in_slot, harness::VARIANT_ALL)
{
	Loop loop = harness::test_loop();
	ASSERT_TRUE(loop.isValid());
	IPCUnixSocket a(loop), b(loop);
	unsigned int self_calls = 0, other_calls = 0, last_calls = 0;
	Connection self, other;

	ASSERT_EQ(0, b.bind(a.create()));
	/* The first slot disconnects itself, then the one after it. */
	self = b.readyRead.connect([&]() {
		self_calls++;
		self.disconnect();
		EXPECT_FALSE(self.connected());
		other.disconnect();
		/* Twice does nothing. */
		self.disconnect();
	});
	other = b.readyRead.connect([&]() { other_calls++; });
	b.readyRead.connect([&]() {
		Payload p;

		last_calls++;
		while (!b.receive(&p))
			;
	});

	ASSERT_EQ(0, a.send(harness::payload("one")));
	ASSERT_TRUE(dispatch_until(loop, [&]() { return last_calls == 1; }));
	EXPECT_EQ(1u, self_calls);
	/* Disconnected before its turn: not called in that emission. */
	EXPECT_EQ(0u, other_calls);
	EXPECT_FALSE(other.connected());

	ASSERT_EQ(0, a.send(harness::payload("two")));
	ASSERT_TRUE(dispatch_until(loop, [&]() { return last_calls == 2; }));
	EXPECT_EQ(1u, self_calls);
	EXPECT_EQ(0u, other_calls);
}

TEST(last_slot_disconnects_itself, harness::VARIANT_ALL)
{
	Loop loop = harness::test_loop();
	ASSERT_TRUE(loop.isValid());
	IPCUnixSocket a(loop), b(loop);
	unsigned int calls = 0;
	Connection c;

	ASSERT_EQ(0, b.bind(a.create()));
	/* It takes nothing and leaves: the loop must not spin on it. */
	c = b.readyRead.connect([&]() {
		calls++;
		c.disconnect();
	});
	ASSERT_EQ(0, a.send(harness::payload("left")));
	ASSERT_TRUE(dispatch_until(loop, [&]() { return calls == 1; }));
	EXPECT_EQ(0, loop.dispatch(0));
	EXPECT_FALSE(harness::readable(loop.fd()));
	EXPECT_EQ(1u, calls);
	Payload p;

	EXPECT_EQ(0, b.receive(&p));
}

TEST(close_in_slot, harness::VARIANT_ALL)
{
	Loop loop = harness::test_loop();
	ASSERT_TRUE(loop.isValid());
	IPCUnixSocket a(loop), b(loop);
	std::vector<int> a_hangups, b_hangups;
	unsigned int after = 0;
	int after_receive = 0;

	ASSERT_EQ(0, b.bind(a.create()));
	b.readyRead.connect([&]() {
		Payload p;

		EXPECT_EQ(0, b.receive(&p));
		b.close();
	});
	/* Still called: the socket is alive, only unbound. */
	b.readyRead.connect([&]() {
		Payload p;

		after++;
		after_receive = b.receive(&p);
	});
	b.hangup.connect([&](int err) { b_hangups.push_back(err); });
	a.hangup.connect([&](int err) { a_hangups.push_back(err); });

	ASSERT_EQ(0, a.send(harness::payload("bye")));
	ASSERT_TRUE(dispatch_until(loop, [&]() { return !a_hangups.empty(); }));
	EXPECT_EQ(1u, after);
	EXPECT_EQ(-ENOTCONN, after_receive);
	EXPECT_FALSE(b.isBound());
	EXPECT_EQ(0, a_hangups[0]);
	/* A local close emits no hangup. */
	EXPECT_TRUE(b_hangups.empty());

	/* The slots stay connected across close and a new bind. */
	IPCUnixSocket c(loop);

	after = 0;
	ASSERT_EQ(0, c.bind(b.create()));
	ASSERT_EQ(0, c.send(harness::payload("again")));
	ASSERT_TRUE(dispatch_until(loop, [&]() { return after == 1; }));
	EXPECT_FALSE(b.isBound());
	EXPECT_TRUE(b_hangups.empty());
}

TEST(destroy_in_slot, harness::VARIANT_ALL)
{
	Loop loop = harness::test_loop();
	ASSERT_TRUE(loop.isValid());
	IPCUnixSocket a(loop);
	auto b = std::make_unique<IPCUnixSocket>(loop);
	std::vector<int> hangups;
	unsigned int later_calls = 0;
	bool destroyed = false;
	Connection first, later;

	ASSERT_EQ(0, b->bind(a.create()));
	first = b->readyRead.connect([&]() {
		Payload p;

		EXPECT_EQ(0, b->receive(&p));
		/* One message left unread in it. */
		b.reset();
		destroyed = true;
		/* Its connections are gone with it; disconnecting is safe. */
		EXPECT_FALSE(first.connected());
		EXPECT_FALSE(later.connected());
		first.disconnect();
	});
	later = b->readyRead.connect([&]() { later_calls++; });
	a.hangup.connect([&](int err) { hangups.push_back(err); });

	ASSERT_EQ(0, a.send(harness::payload("one")));
	ASSERT_EQ(0, a.send(harness::payload("two")));
	ASSERT_TRUE(dispatch_until(loop, [&]() { return !hangups.empty(); }));
	EXPECT_TRUE(destroyed);
	/* No slot ran after the socket was gone. */
	EXPECT_EQ(0u, later_calls);
	/* It went with a message of a's unread. */
	EXPECT_EQ(-ECONNRESET, hangups[0]);
	later.disconnect();
}

TEST(destroy_in_hangup, harness::VARIANT_ALL)
{
	Loop loop = harness::test_loop();
	ASSERT_TRUE(loop.isValid());
	auto a = std::make_unique<IPCUnixSocket>(loop);
	auto b = std::make_unique<IPCUnixSocket>(loop);
	unsigned int later_calls = 0;
	int err = 1;

	ASSERT_EQ(0, b->bind(a->create()));
	a->hangup.connect([&](int e) {
		err = e;
		a.reset();
	});
	a->hangup.connect([&](int) { later_calls++; });
	b.reset();
	ASSERT_TRUE(dispatch_until(loop, [&]() { return !a; }));
	EXPECT_EQ(0, err);
	EXPECT_EQ(0u, later_calls);
}

TEST(late_hangup_slot, harness::VARIANT_ALL)
{
	Loop loop = harness::test_loop();
	ASSERT_TRUE(loop.isValid());
	IPCUnixSocket a(loop);
	auto b = std::make_unique<IPCUnixSocket>(loop);
	std::vector<int> hangups;

	ASSERT_EQ(0, b->bind(a.create()));
	b.reset();
	/* Nobody listening yet: the end is kept. */
	EXPECT_FALSE(dispatch_until(loop, [&]() { return false; }, 100));
	EXPECT_EQ(-EPIPE, a.send(harness::payload("x")));
	a.hangup.connect([&](int err) { hangups.push_back(err); });
	EXPECT_TRUE(dispatch_until(loop, [&]() { return !hangups.empty(); }));
	EXPECT_EQ(1u, hangups.size());
	if (!hangups.empty())
		EXPECT_EQ(0, hangups[0]);
}

TEST(connection_outlives_socket, harness::VARIANT_ALL)
{
	Loop loop = harness::test_loop();
	ASSERT_TRUE(loop.isValid());
	Connection c, copy;

	{
		IPCUnixSocket s(loop);

		c = s.readyRead.connect([]() {});
		copy = c;
		EXPECT_TRUE(copy.connected());
	}
	EXPECT_FALSE(c.connected());
	c.disconnect();
	copy.disconnect();
	EXPECT_FALSE(Connection().connected());
}

/* The default loop, as libcamera's socket lives on its thread's dispatcher. */
TEST(default_loop, harness::VARIANT_BACKENDS)
{
	enum ipcsock_backend want =
		harness::variant_backend(harness::ctx().variant);
	{
		IPCUnixSocket a, b;
		Loop loop = Loop::threadDefault();
		std::string got;

		ASSERT_TRUE(loop.isValid());
		EXPECT_EQ(ipcsock_loop_default(), loop.get());
		EXPECT_EQ(want, loop.backend());
		ASSERT_EQ(0, b.bind(a.create()));
		b.readyRead.connect([&]() {
			Payload p;

			while (!b.receive(&p))
				got = harness::text(p);
		});
		ASSERT_EQ(0, a.send(harness::payload("default")));
		EXPECT_TRUE(dispatch_until(loop, [&]() { return !got.empty(); }));
		EXPECT_EQ(std::string("default"), got);

		/* Another thread's sockets are on that thread's loop. */
		struct ipcsock_loop *theirs = nullptr;
		bool worked = false;
		std::thread t([&]() {
			IPCUnixSocket x, y;
			Loop l = Loop::threadDefault();
			bool ok = false;

			theirs = l.get();
			if (y.bind(x.create()) ||
			    x.send(harness::payload("t")))
				return;
			y.readyRead.connect([&]() {
				Payload p;

				ok = !y.receive(&p);
			});
			worked = dispatch_until(l, [&]() { return ok; });
		});

		t.join();
		EXPECT_TRUE(worked);
		EXPECT_TRUE(theirs != nullptr);
		EXPECT_TRUE(theirs != loop.get());
		/* The main thread's loop saw none of it. */
		EXPECT_EQ(0, loop.dispatch(0));
	}
	/* Not freed by the wrappers; the test frees it for the fd count. */
	Loop own = Loop::adopt(ipcsock_loop_default());

	EXPECT_TRUE(own.isValid());
}

TEST_MAIN
