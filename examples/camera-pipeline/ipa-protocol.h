/* SPDX-License-Identifier: MIT */
/*
 * The messages between the camera pipeline handler and its IPA worker.
 * Every message starts with struct ipa_hdr; a reply carries the request's
 * command | IPA_REPLY, its cookie and a status (0 or -errno). Both ends
 * are on one host: native byte order. See examples/README.md.
 */
#ifndef IPA_PROTOCOL_H
#define IPA_PROTOCOL_H

#include <stddef.h>
#include <stdint.h>

enum ipa_cmd {
	IPA_CMD_MAP_BUFFERS = 1,
	IPA_CMD_FILL_PARAMS,
	IPA_CMD_PROCESS_STATS,
	IPA_CMD_STOP,
};

#define IPA_REPLY		0x8000u

struct ipa_hdr {
	uint16_t cmd;		/* enum ipa_cmd, | IPA_REPLY in a reply */
	uint16_t reserved;
	uint32_t cookie;	/* the caller's; echoed in the reply */
	int32_t status;		/* reply: 0 or -errno; request: 0 */
};

/* MAP_BUFFERS: one fd per buffer, params buffers first, then stats. */
#define IPA_NR_PARAMS_BUFS	5
#define IPA_NR_STATS_BUFS	5
#define IPA_NR_BUFS		(IPA_NR_PARAMS_BUFS + IPA_NR_STATS_BUFS)
#define IPA_PARAMS_BUF_SIZE	4096u
#define IPA_STATS_BUF_SIZE	16384u

struct ipa_map_buffers {
	uint32_t nr_bufs;
	uint32_t size[IPA_NR_BUFS];
};

/* FILL_PARAMS request and reply. */
struct ipa_fill_params {
	uint32_t frame;
	uint32_t buf;		/* index of a params buffer */
};

struct ipa_params_done {
	uint32_t frame;
	uint32_t bytes_used;	/* of the params buffer */
	uint32_t checksum;	/* of what the worker wrote there */
};

/* What the worker writes at the start of a params buffer. */
struct ipa_isp_params {
	uint32_t frame;
	uint32_t gains[4];	/* R, Gr, Gb, B, fixed point 8.8 */
	uint32_t black_level;
	int16_t ccm[9];		/* colour correction matrix, 4.12 */
	uint16_t lut[512];	/* gamma curve */
};

/* PROCESS_STATS request: the statistics buffer plus sensor controls. */
#define IPA_NR_SENSOR_CTRLS	32

struct ipa_process_stats {
	uint32_t frame;
	uint32_t buf;		/* index of a stats buffer */
	uint64_t timestamp_ns;
	uint32_t nr_ctrls;
	uint32_t ctrls[IPA_NR_SENSOR_CTRLS][2];	/* id, value */
};

/* A stats buffer holds a luminance histogram of this many bins. */
#define IPA_HIST_BINS		(IPA_STATS_BUF_SIZE / sizeof(uint32_t))

/*
 * PROCESS_STATS reply: the frame's metadata, as a flat control list
 * (just under 1 KiB with the header).
 */
#define IPA_NR_METADATA		62

struct ipa_metadata_entry {
	uint32_t id;
	uint32_t reserved;
	uint64_t value;
};

struct ipa_metadata {
	uint32_t frame;
	uint32_t nr_entries;
	struct ipa_metadata_entry entries[IPA_NR_METADATA];
};

/* Metadata ids the handler checks. */
enum ipa_metadata_id {
	IPA_MD_FRAME = 1,
	IPA_MD_HIST_SUM,	/* sum of the stats histogram */
	IPA_MD_EXPOSURE,
	IPA_MD_GAIN,
	IPA_MD_SENSOR_TS,
	IPA_MD_FIRST_FREE,
};

/*
 * The checksum of a params buffer's contents, which the handler recomputes
 * from its own mapping: it proves both processes see the same memory.
 */
static inline uint32_t ipa_checksum(const void *data, size_t len)
{
	const uint8_t *p = data;
	uint32_t sum = 1, mix = 0;

	/* Two running sums, each byte weighted by its position. */
	while (len--) {
		sum = (sum + *p++) % 65521;
		mix = (mix + sum) % 65521;
	}
	return mix << 16 | sum;
}

/* The largest message either side sends. */
#define IPA_MAX_MSG		(sizeof(struct ipa_hdr) + \
				 sizeof(struct ipa_metadata))

#endif /* IPA_PROTOCOL_H */
