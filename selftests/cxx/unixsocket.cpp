// SPDX-License-Identifier: MIT
/*
 * unixsocket.cpp - the C++ API through the scenarios of libcamera's own
 * IPCUnixSocket test: one-way and request/response messages, descriptors
 * whose content the other side checks, large payloads, many messages in
 * order, the peer closing, and a peer in another process. Written from
 * what that test covers, on every backend.
 */
#include <cstdint>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.hpp"

using libipcsock::IPCUnixSocket;
using libipcsock::Loop;
using libipcsock::UniqueFD;
using harness::dispatch_until;
using harness::WAIT_MS;

using Payload = IPCUnixSocket::Payload;

namespace {

/* A request/response message: an opcode and two operands, or a result. */
struct Calc {
	uint32_t op;
	int32_t a, b;
};

enum : uint32_t { OP_ADD = 1, OP_SUB, OP_CONCAT_FDS, OP_REPLY };

Payload calc_payload(const Calc &c)
{
	Payload p;
	const uint8_t *bytes = reinterpret_cast<const uint8_t *>(&c);

	p.data.assign(bytes, bytes + sizeof(c));
	return p;
}

bool calc_from(const Payload &p, Calc *c)
{
	if (p.data.size() != sizeof(*c))
		return false;
	std::memcpy(c, p.data.data(), sizeof(*c));
	return true;
}

/*
 * The serving side of the request/response tests: answers OP_ADD and
 * OP_SUB with the result, OP_CONCAT_FDS with a memfd holding the contents
 * of the descriptors it got, in order (which it closes: they are its).
 */
void serve(IPCUnixSocket &sock, unsigned int *served)
{
	Payload req;

	while (!sock.receive(&req)) {
		Calc c, r = { OP_REPLY, 0, 0 };
		Payload reply;

		EXPECT_TRUE(calc_from(req, &c));
		if (c.op == OP_ADD) {
			r.a = c.a + c.b;
		} else if (c.op == OP_SUB) {
			r.a = c.a - c.b;
		} else if (c.op == OP_CONCAT_FDS) {
			std::string all;

			for (int fd : req.fds) {
				EXPECT_TRUE(harness::fd_is_cloexec(fd));
				all += harness::fd_content(fd);
			}
			UniqueFD out = harness::memfd_with(all);

			EXPECT_TRUE(out.isValid());
			reply.fds.push_back(out.get());
			reply.data = calc_payload(r).data;
			EXPECT_EQ(0, sock.send(reply));
			harness::close_fds(req);
			++*served;
			continue;	/* out closes here, after the send */
		}
		harness::close_fds(req);
		EXPECT_EQ(0, sock.send(calc_payload(r)));
		++*served;
	}
}

} /* namespace */

TEST(one_way, harness::VARIANT_ALL)
{
	Loop loop = harness::test_loop();
	ASSERT_TRUE(loop.isValid());
	IPCUnixSocket tx(loop), rx(loop);
	std::vector<std::string> got;

	ASSERT_EQ(0, rx.bind(tx.create()));
	rx.readyRead.connect([&]() {
		Payload p;

		while (!rx.receive(&p)) {
			EXPECT_TRUE(p.fds.empty());
			got.push_back(harness::text(p));
		}
	});

	ASSERT_EQ(0, tx.send(harness::payload("hello")));
	ASSERT_TRUE(dispatch_until(loop, [&]() { return got.size() == 1; }));
	EXPECT_EQ(std::string("hello"), got[0]);

	/* Nothing came back the other way, and nothing else arrives. */
	Payload none;

	EXPECT_EQ(-EAGAIN, tx.receive(&none));
	EXPECT_EQ(0, loop.dispatch(0));
	EXPECT_EQ(1u, got.size());
}

TEST(two_way, harness::VARIANT_ALL)
{
	Loop loop = harness::test_loop();
	ASSERT_TRUE(loop.isValid());
	IPCUnixSocket client(loop), server(loop);
	unsigned int served = 0;
	std::vector<int32_t> results;

	ASSERT_EQ(0, server.bind(client.create()));
	server.readyRead.connect([&]() { serve(server, &served); });
	client.readyRead.connect([&]() {
		Payload p;
		Calc r;

		while (!client.receive(&p)) {
			EXPECT_TRUE(calc_from(p, &r));
			EXPECT_EQ(uint32_t(OP_REPLY), r.op);
			results.push_back(r.a);
		}
	});

	/* Each request waits for its answer, as a synchronous IPC call. */
	for (int i = 0; i < 20; i++) {
		Calc c = { i % 2 ? OP_SUB : OP_ADD, 1000 * i, i };

		ASSERT_EQ(0, client.send(calc_payload(c)));
		ASSERT_TRUE(dispatch_until(loop, [&]() {
			return results.size() == size_t(i) + 1;
		}));
		EXPECT_EQ(i % 2 ? 1000 * i - i : 1000 * i + i, results[i]);
	}
	EXPECT_EQ(20u, served);
}

TEST(fds_with_content, harness::VARIANT_ALL)
{
	Loop loop = harness::test_loop();
	ASSERT_TRUE(loop.isValid());
	IPCUnixSocket client(loop), server(loop);
	unsigned int served = 0;
	Payload reply;
	bool replied = false;

	ASSERT_EQ(0, server.bind(client.create()));
	server.readyRead.connect([&]() { serve(server, &served); });
	client.readyRead.connect([&]() {
		replied = !client.receive(&reply);
	});

	/* Three files; the sender closes its copies right after send(). */
	const char *parts[] = { "first file, ", "second, ", "third." };
	Payload req = calc_payload({ OP_CONCAT_FDS, 0, 0 });
	std::vector<UniqueFD> files;

	for (const char *s : parts) {
		files.push_back(harness::memfd_with(s));
		ASSERT_TRUE(files.back().isValid());
		req.fds.push_back(files.back().get());
	}
	ASSERT_EQ(0, client.send(req));
	files.clear();

	ASSERT_TRUE(dispatch_until(loop, [&]() { return replied; }));
	ASSERT_EQ(1u, reply.fds.size());
	Calc r;

	EXPECT_TRUE(calc_from(reply, &r));
	EXPECT_EQ(uint32_t(OP_REPLY), r.op);
	/* The received descriptor is a new one, the caller's to close. */
	EXPECT_TRUE(harness::fd_is_cloexec(reply.fds[0]));
	EXPECT_EQ(std::string("first file, second, third."),
		  harness::fd_content(reply.fds[0]));
	harness::close_fds(reply);
	EXPECT_EQ(1u, served);
}

TEST(fds_identity, harness::VARIANT_ALL)
{
	Loop loop = harness::test_loop();
	ASSERT_TRUE(loop.isValid());
	IPCUnixSocket tx(loop), rx(loop);
	Payload got;
	bool received = false;

	ASSERT_EQ(0, rx.bind(tx.create()));
	rx.readyRead.connect([&]() { received = !rx.receive(&got); });

	/* Descriptors only, no bytes: a message too. */
	UniqueFD a = harness::memfd_with("a"), b = harness::memfd_with("b");
	Payload p;

	ASSERT_TRUE(a.isValid() && b.isValid());
	p.fds = { b.get(), a.get(), b.get() };
	ASSERT_EQ(0, tx.send(p));
	ASSERT_TRUE(dispatch_until(loop, [&]() { return received; }));
	EXPECT_TRUE(got.data.empty());
	ASSERT_EQ(3u, got.fds.size());
	EXPECT_TRUE(harness::same_file(got.fds[0], b.get()));
	EXPECT_TRUE(harness::same_file(got.fds[1], a.get()));
	EXPECT_TRUE(harness::same_file(got.fds[2], b.get()));
	/* Each one is its own descriptor, not a number of the sender's. */
	EXPECT_NE(got.fds[0], got.fds[2]);
	EXPECT_NE(got.fds[0], b.get());
	harness::close_fds(got);
}

TEST(large_payload, harness::VARIANT_ALL)
{
	struct ipcsock_loop_opts opts = harness::test_opts();

	opts.max_msg_size = 1u << 20;
	Loop loop(opts);
	ASSERT_TRUE(loop.isValid());
	IPCUnixSocket tx(loop), rx(loop);
	std::vector<Payload> got;

	ASSERT_EQ(0, rx.bind(tx.create()));
	rx.readyRead.connect([&]() {
		Payload p;

		while (!rx.receive(&p))
			got.push_back(std::move(p));
	});

	/* A pattern with no period that divides a page. */
	Payload big;

	big.data.resize(opts.max_msg_size);
	for (size_t i = 0; i < big.data.size(); i++)
		big.data[i] = uint8_t(i * 7 + i / 251);
	UniqueFD fd = harness::memfd_with("with the big one");

	ASSERT_TRUE(fd.isValid());
	big.fds.push_back(fd.get());
	ASSERT_EQ(0, tx.send(big));
	/* One byte more than the limit: refused, the channel goes on. */
	Payload over;

	over.data.resize(opts.max_msg_size + 1);
	EXPECT_EQ(-EMSGSIZE, tx.send(over));
	big.fds.clear();
	big.data.resize(100000);
	ASSERT_EQ(0, tx.send(big));

	ASSERT_TRUE(dispatch_until(loop, [&]() { return got.size() == 2; }));
	ASSERT_EQ(size_t(opts.max_msg_size), got[0].data.size());
	for (size_t i = 0; i < got[0].data.size(); i++) {
		if (got[0].data[i] != uint8_t(i * 7 + i / 251)) {
			EXPECT_EQ(uint8_t(i * 7 + i / 251), got[0].data[i]);
			break;
		}
	}
	ASSERT_EQ(1u, got[0].fds.size());
	EXPECT_EQ(std::string("with the big one"),
		  harness::fd_content(got[0].fds[0]));
	EXPECT_TRUE(got[1].data == big.data);
	EXPECT_TRUE(got[1].fds.empty());
	harness::close_fds(got[0]);
}

TEST(many_in_order, harness::VARIANT_ALL)
{
	constexpr uint32_t count = 20000;
	Loop loop = harness::test_loop();
	ASSERT_TRUE(loop.isValid());
	IPCUnixSocket tx(loop), rx(loop);
	uint32_t next = 0, with_fds = 0;
	bool in_order = true;

	ASSERT_EQ(0, rx.bind(tx.create()));
	rx.readyRead.connect([&]() {
		Payload p;
		uint32_t seq;

		while (!rx.receive(&p)) {
			/* Sizes vary: 4 bytes of sequence, then filler. */
			if (p.data.size() < sizeof(seq) ||
			    p.data.size() != sizeof(seq) + (next % 61)) {
				in_order = false;
				harness::close_fds(p);
				continue;
			}
			std::memcpy(&seq, p.data.data(), sizeof(seq));
			if (seq != next)
				in_order = false;
			/* Every 97th carries a descriptor naming it. */
			if (seq % 97 == 0) {
				if (p.fds.size() != 1 ||
				    harness::fd_content(p.fds[0]) !=
				    std::to_string(seq))
					in_order = false;
				with_fds++;
			} else if (!p.fds.empty()) {
				in_order = false;
			}
			harness::close_fds(p);
			next++;
		}
	});

	for (uint32_t seq = 0; seq < count && in_order;) {
		Payload p;
		UniqueFD fd;
		int ret;

		p.data.resize(sizeof(seq) + seq % 61, 0x5a);
		std::memcpy(p.data.data(), &seq, sizeof(seq));
		if (seq % 97 == 0) {
			fd = harness::memfd_with(std::to_string(seq));
			ASSERT_TRUE(fd.isValid());
			p.fds.push_back(fd.get());
		}
		ret = tx.send(p);
		if (ret == -ENOBUFS) {
			/* The queue is full: let the receiver drain it. */
			ASSERT_LE(0, loop.dispatch(100));
			continue;
		}
		ASSERT_EQ(0, ret);
		seq++;
	}
	EXPECT_TRUE(dispatch_until(loop, [&]() {
		return next == count || !in_order;
	}, 4 * WAIT_MS));
	EXPECT_TRUE(in_order);
	EXPECT_EQ(count, next);
	EXPECT_EQ((count + 96) / 97, with_fds);
}

TEST(peer_close, harness::VARIANT_ALL)
{
	Loop loop = harness::test_loop();
	ASSERT_TRUE(loop.isValid());
	IPCUnixSocket a(loop);
	auto b = std::make_unique<IPCUnixSocket>(loop);
	std::vector<std::string> got;
	std::vector<int> hangups;
	size_t got_at_hangup = 0;

	ASSERT_EQ(0, b->bind(a.create()));
	a.readyRead.connect([&]() {
		Payload p;

		while (!a.receive(&p))
			got.push_back(harness::text(p));
	});
	a.hangup.connect([&](int err) {
		hangups.push_back(err);
		got_at_hangup = got.size();
	});

	/* The last words, then the peer goes away. */
	ASSERT_EQ(0, b->send(harness::payload("one")));
	ASSERT_EQ(0, b->send(harness::payload("two")));
	b.reset();

	ASSERT_TRUE(dispatch_until(loop, [&]() { return !hangups.empty(); }));
	EXPECT_EQ(0, hangups[0]);
	/* Every message came before the end was told. */
	EXPECT_EQ(2u, got_at_hangup);
	EXPECT_EQ(std::string("one"), got[0]);
	EXPECT_EQ(std::string("two"), got[1]);

	/* Ended but still bound, until closed; sends fail, no more hangup. */
	EXPECT_TRUE(a.isBound());
	EXPECT_EQ(-EPIPE, a.send(harness::payload("anyone?")));
	EXPECT_EQ(0, loop.dispatch(0));
	EXPECT_EQ(1u, hangups.size());
	a.close();
	EXPECT_FALSE(a.isBound());
	Payload p;

	EXPECT_EQ(-ENOTCONN, a.receive(&p));
}

TEST(peer_close_unread, harness::VARIANT_ALL)
{
	Loop loop = harness::test_loop();
	ASSERT_TRUE(loop.isValid());
	IPCUnixSocket a(loop), b(loop);
	std::vector<int> hangups;

	ASSERT_EQ(0, b.bind(a.create()));
	a.hangup.connect([&](int err) { hangups.push_back(err); });

	/* b never reads what a sent before it closes. */
	UniqueFD fd = harness::memfd_with("never read");
	Payload p = harness::payload("unread");

	p.fds.push_back(fd.get());
	ASSERT_EQ(0, a.send(p));
	ASSERT_EQ(0, loop.dispatch(0));
	b.close();

	ASSERT_TRUE(dispatch_until(loop, [&]() { return !hangups.empty(); }));
	EXPECT_EQ(-ECONNRESET, hangups[0]);
	EXPECT_EQ(1u, hangups.size());
}

/*
 * The peer in a process of its own, as libcamera's test runs it: it binds
 * the end it inherited with a socket on its own default loop, answers
 * until the parent hangs up, and exits with what it saw.
 */
enum { PEER_OK = 0, PEER_BIND = 10, PEER_HANGUP, PEER_SERVED, PEER_LEAK };

static int peer_main(UniqueFD end, int fds_at_start)
{
	int result = PEER_OK;

	{
		IPCUnixSocket sock;
		unsigned int served = 0;
		bool ended = false;
		int err = 1;

		if (sock.bind(std::move(end)))
			return PEER_BIND;
		sock.readyRead.connect([&]() { serve(sock, &served); });
		sock.hangup.connect([&](int e) {
			err = e;
			ended = true;
		});
		Loop loop = Loop::threadDefault();

		dispatch_until(loop, [&]() { return ended; }, 4 * WAIT_MS);
		if (!ended || err)
			result = PEER_HANGUP;
		else if (served != 3)
			result = PEER_SERVED;
	}
	/* Its own default loop goes too: no descriptor left behind. */
	{
		Loop own = Loop::adopt(ipcsock_loop_default());
	}
	if (harness::count_open_fds() != fds_at_start)
		result = result ? result : PEER_LEAK;
	return result;
}

TEST(peer_process, harness::VARIANT_ALL)
{
	/*
	 * This process has a default loop too: the peer must get one of its
	 * own, not a copy of this one, which the library refuses after fork.
	 */
	auto def = std::make_unique<Loop>(Loop::threadDefault());
	ASSERT_TRUE(def->isValid());
	auto loop = std::make_unique<Loop>(harness::test_opts());
	ASSERT_TRUE(loop->isValid());
	auto sock = std::make_unique<IPCUnixSocket>(*loop);
	int status = 0;
	unsigned int replies = 0;
	Payload reply;

	UniqueFD end = sock->create();
	ASSERT_TRUE(end.isValid());
	std::fflush(stdout);
	pid_t pid = fork();

	ASSERT_LE(0, pid);
	if (!pid) {
		/*
		 * What the child inherited of the parent's loop only
		 * releases its copies here; holding the parent's end
		 * would keep the channel from ending.
		 */
		sock.reset();
		loop.reset();
		ipcsock_loop_free(def->get());
		def.reset();
		/* When it is done, the end it bound is closed too. */
		int left = harness::count_open_fds() - 1;

		std::exit(peer_main(std::move(end), left));
	}
	end.reset();

	sock->readyRead.connect([&]() {
		while (!sock->receive(&reply)) {
			Calc r;

			EXPECT_TRUE(calc_from(reply, &r));
			if (replies == 2) {
				EXPECT_EQ(1u, reply.fds.size());
				if (!reply.fds.empty())
					EXPECT_EQ(std::string("across processes"),
						  harness::fd_content(reply.fds[0]));
			} else {
				EXPECT_EQ(replies ? -5 : 5, r.a);
			}
			harness::close_fds(reply);
			replies++;
		}
	});
	ASSERT_EQ(0, sock->send(calc_payload({ OP_ADD, 2, 3 })));
	ASSERT_EQ(0, sock->send(calc_payload({ OP_SUB, 2, 7 })));
	UniqueFD a = harness::memfd_with("across "),
		 b = harness::memfd_with("processes");
	Payload req = calc_payload({ OP_CONCAT_FDS, 0, 0 });

	req.fds = { a.get(), b.get() };
	ASSERT_EQ(0, sock->send(req));
	EXPECT_TRUE(dispatch_until(*loop, [&]() { return replies == 3; }));

	/* Our close is the peer's hangup(0): it exits. */
	sock->close();
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	EXPECT_TRUE(WIFEXITED(status));
	EXPECT_EQ(int(PEER_OK), WEXITSTATUS(status));
	/* The default loop is not the wrapper's: free it for the fd count. */
	sock.reset();
	loop.reset();
	ipcsock_loop_free(def->get());
}

TEST_MAIN
