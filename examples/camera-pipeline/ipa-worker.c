// SPDX-License-Identifier: MIT
/*
 * ipa-worker - the camera-pipeline example's isolated IPA process: it
 * answers pipeline-handler's calls (ipa-protocol.h) on the channel end
 * whose fd is argv[1], until STOP or a hangup. See examples/README.md.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/pidfd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <ipcsock.h>

#include "ipa-protocol.h"

struct ipa_buf {
	void *mem;
	size_t size;
};

struct ipa {
	struct ipcsock *sock;
	struct ipa_buf bufs[IPA_NR_BUFS];
	bool mapped;
	/* What the algorithms carry from one frame to the next. */
	uint32_t exposure_us;
	uint32_t gain;		/* 8.8 fixed point */
	bool stop;
	bool hung_up;
	int hangup_err;
	int send_err;
};

/* The body of a reply, before it is put behind the header. */
union ipa_reply_body {
	struct ipa_params_done params;
	struct ipa_metadata md;
};

static void unmap_buffers(struct ipa *ipa)
{
	unsigned int i;

	for (i = 0; i < IPA_NR_BUFS; i++) {
		if (ipa->bufs[i].mem)
			munmap(ipa->bufs[i].mem, ipa->bufs[i].size);
		ipa->bufs[i].mem = NULL;
	}
	ipa->mapped = false;
}

/* The handler's buffers, all in one message; the fds are ours to close. */
static int map_buffers(struct ipa *ipa, const void *body, size_t len,
		       const int *fds, unsigned int nr_fds)
{
	struct ipa_map_buffers mb;
	struct stat st;
	unsigned int i;
	void *mem;

	if (ipa->mapped || len != sizeof(mb) || nr_fds != IPA_NR_BUFS)
		return -EINVAL;
	memcpy(&mb, body, sizeof(mb));
	if (mb.nr_bufs != nr_fds)
		return -EINVAL;
	for (i = 0; i < nr_fds; i++) {
		/* Never map more than the file holds: that would SIGBUS. */
		if (fstat(fds[i], &st) || !mb.size[i] ||
		    (uint64_t)st.st_size < mb.size[i])
			goto fail;
		mem = mmap(NULL, mb.size[i], PROT_READ | PROT_WRITE,
			   MAP_SHARED, fds[i], 0);
		if (mem == MAP_FAILED)
			goto fail;
		ipa->bufs[i].mem = mem;
		ipa->bufs[i].size = mb.size[i];
	}
	ipa->mapped = true;
	return 0;
fail:
	unmap_buffers(ipa);
	return -EINVAL;
}

/* Write the frame's ISP parameters into a params buffer. */
static int fill_params(struct ipa *ipa, const void *body, size_t len,
		       struct ipa_params_done *done)
{
	struct ipa_fill_params req;
	struct ipa_isp_params *p;
	unsigned int i;

	if (len != sizeof(req) || !ipa->mapped)
		return -EINVAL;
	memcpy(&req, body, sizeof(req));
	if (req.buf >= IPA_NR_PARAMS_BUFS ||
	    ipa->bufs[req.buf].size < sizeof(*p))
		return -EINVAL;
	p = ipa->bufs[req.buf].mem;
	p->frame = req.frame;
	p->gains[0] = 0x1a0 + req.frame % 16;
	p->gains[1] = 0x100;
	p->gains[2] = 0x100;
	p->gains[3] = 0x1c0 - req.frame % 16;
	p->black_level = 64;
	for (i = 0; i < 9; i++)
		p->ccm[i] = i % 4 ? -256 : 4096 + 512;
	for (i = 0; i < 512; i++)
		p->lut[i] = (i * i) >> 2;
	done->frame = req.frame;
	done->bytes_used = sizeof(*p);
	done->checksum = ipa_checksum(p, sizeof(*p));
	return sizeof(*done);
}

/* Read a frame's statistics, run "AE", answer with the frame's metadata. */
static int process_stats(struct ipa *ipa, const void *body, size_t len,
			 struct ipa_metadata *md)
{
	struct ipa_process_stats req;
	const uint32_t *hist;
	uint64_t sum = 0, mean;
	unsigned int i, n = 0;

	if (len != sizeof(req) || !ipa->mapped)
		return -EINVAL;
	memcpy(&req, body, sizeof(req));
	if (req.buf < IPA_NR_PARAMS_BUFS || req.buf >= IPA_NR_BUFS ||
	    req.nr_ctrls > IPA_NR_SENSOR_CTRLS ||
	    ipa->bufs[req.buf].size < IPA_HIST_BINS * sizeof(*hist))
		return -EINVAL;
	hist = ipa->bufs[req.buf].mem;
	for (i = 0; i < IPA_HIST_BINS; i++)
		sum += hist[i];
	/* Steer the mean luminance towards the middle of the histogram. */
	mean = sum / IPA_HIST_BINS;
	if (mean < 1000 && ipa->exposure_us < 33000)
		ipa->exposure_us += 10;
	else if (mean > 1000 && ipa->exposure_us > 100)
		ipa->exposure_us -= 10;

	md->frame = req.frame;
	md->entries[n].id = IPA_MD_FRAME;
	md->entries[n++].value = req.frame;
	md->entries[n].id = IPA_MD_HIST_SUM;
	md->entries[n++].value = sum;
	md->entries[n].id = IPA_MD_EXPOSURE;
	md->entries[n++].value = ipa->exposure_us;
	md->entries[n].id = IPA_MD_GAIN;
	md->entries[n++].value = ipa->gain;
	md->entries[n].id = IPA_MD_SENSOR_TS;
	md->entries[n++].value = req.timestamp_ns;
	/* The rest: per-control results, as a real IPA reports dozens. */
	for (i = 0; n < IPA_NR_METADATA; i++, n++) {
		md->entries[n].id = IPA_MD_FIRST_FREE + i;
		md->entries[n].reserved = 0;
		md->entries[n].value = i < req.nr_ctrls ? req.ctrls[i][1] : i;
	}
	md->nr_entries = n;
	return sizeof(*md);
}

static void handle_request(struct ipa *ipa, const struct ipcsock_payload *msg)
{
	unsigned char buf[IPA_MAX_MSG];
	struct ipcsock_payload out = { .data = buf };
	union ipa_reply_body reply;
	const char *body = (const char *)msg->data + sizeof(struct ipa_hdr);
	size_t len = msg->len - sizeof(struct ipa_hdr);
	struct ipa_hdr hdr;
	int ret;

	/* Copied: the message bytes come with no alignment promise. */
	memcpy(&hdr, msg->data, sizeof(hdr));
	switch (hdr.cmd) {
	case IPA_CMD_MAP_BUFFERS:
		ret = map_buffers(ipa, body, len, msg->fds, msg->nr_fds);
		break;
	case IPA_CMD_FILL_PARAMS:
		ret = fill_params(ipa, body, len, &reply.params);
		break;
	case IPA_CMD_PROCESS_STATS:
		ret = process_stats(ipa, body, len, &reply.md);
		break;
	case IPA_CMD_STOP:
		ipa->stop = true;
		ret = 0;
		break;
	default:
		ret = -EOPNOTSUPP;
		break;
	}
	/* The reply: same command with IPA_REPLY, same cookie, a status. */
	hdr.cmd |= IPA_REPLY;
	hdr.status = ret < 0 ? ret : 0;
	memcpy(buf, &hdr, sizeof(hdr));
	out.len = sizeof(hdr);
	if (ret > 0) {
		memcpy(buf + sizeof(hdr), &reply, ret);
		out.len += ret;
	}
	/* Sent when this dispatch returns, with any other replies. */
	ret = ipcsock_send(ipa->sock, &out);
	if (ret)
		ipa->send_err = ret;
}

static void on_ready_read(struct ipcsock *sock, void *arg)
{
	struct ipa *ipa = arg;
	struct ipcsock_payload msg;
	unsigned int i;

	while (!ipcsock_receive(sock, &msg)) {
		if (msg.len >= sizeof(struct ipa_hdr))
			handle_request(ipa, &msg);
		/* Received fds are ours: mapped or not, close them. */
		for (i = 0; i < msg.nr_fds; i++)
			close(msg.fds[i]);
	}
}

static void on_hangup(struct ipcsock *sock, int err, void *arg)
{
	struct ipa *ipa = arg;

	(void)sock;
	ipa->hung_up = true;
	ipa->hangup_err = err;
}

int main(int argc, char **argv)
{
	struct ipa ipa = { .exposure_us = 10000, .gain = 0x100 };
	struct ipcsock_loop *loop;
	int ret;

	if (argc != 2) {
		fprintf(stderr, "usage: %s FD\n", argv[0]);
		return 2;
	}
	loop = ipcsock_loop_new(NULL);
	ipa.sock = loop ? ipcsock_new(loop) : NULL;
	ret = ipa.sock ? ipcsock_bind(ipa.sock, atoi(argv[1])) : -errno;
	if (ret) {
		fprintf(stderr, "ipa-worker: channel fd %s: %s\n", argv[1],
			strerror(-ret));
		return 1;
	}
	ipcsock_set_ready_read(ipa.sock, on_ready_read, &ipa);
	ipcsock_set_hangup(ipa.sock, on_hangup, &ipa);
	/* Not left behind as an orphan when the camera process dies. */
	ret = pidfd_open(getppid(), 0);
	if (ret >= 0) {
		ipcsock_watch_pidfd(ipa.sock, ret);
		close(ret);
	}

	while (!ipa.stop && !ipa.hung_up && !ipa.send_err) {
		ret = ipcsock_loop_dispatch(loop, -1);
		if (ret < 0) {
			fprintf(stderr, "ipa-worker: dispatch: %s\n",
				strerror(-ret));
			break;
		}
	}
	if (ipa.send_err)
		fprintf(stderr, "ipa-worker: send: %s\n",
			strerror(-ipa.send_err));

	/* close() still hands the STOP reply to the kernel. */
	ipcsock_free(ipa.sock);
	ipcsock_loop_free(loop);
	unmap_buffers(&ipa);
	if (ipa.stop)
		return 0;
	return ipa.hung_up && !ipa.hangup_err && !ipa.send_err ? 0 : 1;
}
