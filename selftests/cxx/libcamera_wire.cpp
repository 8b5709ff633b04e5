// SPDX-License-Identifier: MIT
/*
 * libcamera_wire.cpp - the C++ API in the libcamera wire mode
 * (libipcsock::Wire::Libcamera): both constructors, socket types, messages
 * both ways with descriptors, descriptor-only messages, many in order,
 * the end of a datagram channel (hangup -ECONNREFUSED after a send), and
 * the two modes refusing each other's sockets.
 */
#include <cstdint>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include <sys/socket.h>

#include "harness.hpp"

using libipcsock::IPCUnixSocket;
using libipcsock::Loop;
using libipcsock::UniqueFD;
using libipcsock::Wire;
using harness::dispatch_until;

using Payload = IPCUnixSocket::Payload;

namespace {

int sock_type(int fd)
{
	int type = -1;
	socklen_t len = sizeof(type);

	if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len))
		return -errno;
	return type;
}

} /* namespace */

/* The default loop's constructor: a datagram channel. */
TEST(default_loop_dgram, harness::VARIANT_BACKENDS)
{
	{
		IPCUnixSocket tx(Wire::Libcamera), rx(Wire::Libcamera);
		Loop loop = Loop::threadDefault();
		std::vector<std::string> got;

		ASSERT_TRUE(loop.isValid());
		UniqueFD end = tx.create();

		ASSERT_TRUE(end.isValid());
		EXPECT_EQ(SOCK_DGRAM, sock_type(end.get()));
		ASSERT_EQ(0, rx.bind(std::move(end)));
		rx.readyRead.connect([&]() {
			Payload p;

			while (!rx.receive(&p))
				got.push_back(harness::text(p));
		});
		ASSERT_EQ(0, tx.send(harness::payload("over the default loop")));
		ASSERT_TRUE(dispatch_until(loop, [&]() {
			return got.size() == 1;
		}));
		EXPECT_EQ(std::string("over the default loop"), got[0]);
	}
	/* Not freed by the wrappers; the test frees it for the fd count. */
	Loop own = Loop::adopt(ipcsock_loop_default());

	EXPECT_TRUE(own.isValid());
}

TEST(both_ways_with_fds, harness::VARIANT_ALL)
{
	Loop loop = harness::test_loop();
	ASSERT_TRUE(loop.isValid());
	IPCUnixSocket a(loop, Wire::Libcamera), b(loop, Wire::Libcamera);
	std::vector<Payload> at_a, at_b;

	ASSERT_EQ(0, b.bind(a.create()));
	a.readyRead.connect([&]() {
		Payload p;

		while (!a.receive(&p))
			at_a.push_back(std::move(p));
	});
	b.readyRead.connect([&]() {
		Payload p;

		while (!b.receive(&p))
			at_b.push_back(std::move(p));
	});

	UniqueFD f1 = harness::memfd_with("one"), f2 = harness::memfd_with("two");
	Payload m = harness::payload("to b");
	Payload fds_only;

	ASSERT_TRUE(f1.isValid() && f2.isValid());
	m.fds = { f1.get(), f2.get() };
	fds_only.fds = { f2.get() };
	ASSERT_EQ(0, a.send(m));
	ASSERT_EQ(0, a.send(fds_only));
	ASSERT_EQ(0, b.send(harness::payload("to a")));
	ASSERT_TRUE(dispatch_until(loop, [&]() {
		return at_b.size() == 2 && at_a.size() == 1;
	}));
	EXPECT_EQ(std::string("to a"), harness::text(at_a[0]));
	EXPECT_EQ(std::string("to b"), harness::text(at_b[0]));
	ASSERT_EQ(2u, at_b[0].fds.size());
	EXPECT_TRUE(harness::fd_is_cloexec(at_b[0].fds[0]));
	EXPECT_EQ(std::string("one"), harness::fd_content(at_b[0].fds[0]));
	EXPECT_EQ(std::string("two"), harness::fd_content(at_b[0].fds[1]));
	/* Descriptors alone: a payload datagram of no bytes. */
	EXPECT_TRUE(at_b[1].data.empty());
	ASSERT_EQ(1u, at_b[1].fds.size());
	EXPECT_TRUE(harness::same_file(at_b[1].fds[0], f2.get()));
	for (Payload &p : at_b)
		harness::close_fds(p);

	/* Neither bytes nor descriptors: refused, as libcamera does. */
	EXPECT_EQ(-EINVAL, a.send(Payload()));
}

TEST(many_in_order, harness::VARIANT_ALL)
{
	Loop loop = harness::test_loop();
	ASSERT_TRUE(loop.isValid());
	IPCUnixSocket a(loop, Wire::Libcamera), b(loop, Wire::Libcamera);
	uint32_t next = 0, sent = 0;
	bool bad = false;
	int hangups = 0;

	ASSERT_EQ(0, b.bind(a.create()));
	b.readyRead.connect([&]() {
		Payload p;
		uint32_t seq;

		while (!b.receive(&p)) {
			if (p.data.size() < sizeof(seq)) {
				bad = true;
				continue;
			}
			std::memcpy(&seq, p.data.data(), sizeof(seq));
			bad |= seq != next++;
		}
	});
	b.hangup.connect([&](int) { hangups++; });

	/* Sent faster than received: the queue fills, -ENOBUFS, go on. */
	long long deadline = harness::now_ms() + 30000;

	while (next < 5000 && harness::now_ms() < deadline) {
		while (sent < 5000) {
			Payload p;

			p.data.resize(4 + sent % 2000);
			std::memcpy(p.data.data(), &sent, sizeof(sent));
			int ret = a.send(p);

			if (ret == -ENOBUFS)
				break;
			ASSERT_EQ(0, ret);
			sent++;
		}
		loop.dispatch(1);
	}
	EXPECT_EQ(5000u, next);
	EXPECT_FALSE(bad);
	EXPECT_EQ(0, hangups);
}

TEST(peer_close_refused, harness::VARIANT_ALL)
{
	Loop loop = harness::test_loop();
	ASSERT_TRUE(loop.isValid());
	IPCUnixSocket a(loop, Wire::Libcamera);
	auto b = std::make_unique<IPCUnixSocket>(loop, Wire::Libcamera);
	std::vector<int> hangups;

	ASSERT_EQ(0, b->bind(a.create()));
	a.hangup.connect([&](int err) { hangups.push_back(err); });
	b.reset();

	/* A datagram channel has no end of file: nothing until a send. */
	dispatch_until(loop, [&]() { return !hangups.empty(); }, 50);
	EXPECT_TRUE(hangups.empty());
	int ret = a.send(harness::payload("anyone?"));

	EXPECT_TRUE(ret == 0 || ret == -EPIPE);
	ASSERT_TRUE(dispatch_until(loop, [&]() { return !hangups.empty(); }));
	EXPECT_EQ(-ECONNREFUSED, hangups[0]);
	EXPECT_EQ(-EPIPE, a.send(harness::payload("still?")));
	EXPECT_EQ(1u, hangups.size());
}

/* Each mode takes only its own socket type, and bind() consumes the fd. */
TEST(modes_refuse_each_other, harness::VARIANT_BACKENDS)
{
	Loop loop = harness::test_loop();
	ASSERT_TRUE(loop.isValid());
	IPCUnixSocket lc(loop, Wire::Libcamera), native(loop, Wire::Native);
	IPCUnixSocket plain(loop);
	int sv[2];

	ASSERT_EQ(0, socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv));
	UniqueFD seq0(sv[0]), seq1(sv[1]);

	ASSERT_EQ(0, socketpair(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0, sv));
	UniqueFD dg0(sv[0]), dg1(sv[1]);
	int seq_fd = seq0.get();

	EXPECT_EQ(-EPROTOTYPE, lc.bind(std::move(seq0)));
	EXPECT_FALSE(harness::fd_is_open(seq_fd));
	EXPECT_EQ(-EPROTOTYPE, native.bind(std::move(dg0)));
	EXPECT_EQ(0, lc.bind(std::move(dg1)));
	EXPECT_EQ(0, plain.bind(std::move(seq1)));
	UniqueFD end = native.create();

	ASSERT_TRUE(end.isValid());
	EXPECT_EQ(SOCK_SEQPACKET, sock_type(end.get()));
}

TEST_MAIN
