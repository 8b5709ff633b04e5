/* SPDX-License-Identifier: MIT */
/*
 * vimc-ipa.h - the IPC protocol of libcamera 0.0.3's vimc IPA (its
 * vimc.mojom, interface IPAVimcInterface and its event interface), as its
 * proxy worker, vimc_ipa_proxy, speaks it: the commands, the arguments of
 * the calls this example makes, and their replies.
 *
 * Commands are numbered as libcamera's generator numbers them: Exit is 0,
 * then the interface's methods from 1 in mojom order; events from 1. A
 * synchronous call's reply carries the call's command and cookie; an
 * event carries cookie 0. Later libcamera versions changed the interface
 * (master's init takes one more fd argument since 2025-10): this is 0.0.3.
 */
#ifndef VIMC_IPA_H
#define VIMC_IPA_H

#include <stdint.h>

#include "ipa-serial.h"

enum vimc_cmd {
	VIMC_CMD_EXIT = 0,
	VIMC_CMD_INIT,
	VIMC_CMD_CONFIGURE,
	VIMC_CMD_START,
	VIMC_CMD_STOP,
	VIMC_CMD_MAP_BUFFERS,
	VIMC_CMD_UNMAP_BUFFERS,
	VIMC_CMD_QUEUE_REQUEST,
	VIMC_CMD_FILL_PARAMS_BUFFER,
};

enum vimc_event {
	VIMC_EVENT_PARAMS_BUFFER_READY = 1,
};

/* IPAOperationCode */
enum vimc_op {
	VIMC_OP_NONE,
	VIMC_OP_INIT,
	VIMC_OP_START,
	VIMC_OP_STOP,
};

/* TestFlag, a [flags] enum: the IPA's init() sets FLAG1 in its outFlags. */
#define VIMC_FLAG1	0x1u
#define VIMC_FLAG2	0x2u
#define VIMC_FLAG3	0x4u
#define VIMC_FLAG4	0x8u

/* libcamera's IPASettings */
struct vimc_settings {
	const char *configuration_file;
	const char *sensor_model;
};

/* FrameBuffer::Plane */
struct vimc_plane {
	int fd;
	uint32_t offset;
	uint32_t length;
};

/* IPABuffer */
struct vimc_buffer {
	uint32_t id;
	const struct vimc_plane *planes;
	unsigned int nr_planes;
};

/* init(settings, code, inFlags) => (int32 ret, outFlags) */
void vimc_init_msg(struct ipa_msg *m, uint32_t cookie,
		   const struct vimc_settings *settings, enum vimc_op code,
		   uint32_t in_flags);
int vimc_init_reply(struct ipa_reader *r, int32_t *ret, uint32_t *out_flags);

/* start() => (int32 ret); stop(); Exit */
void vimc_start_msg(struct ipa_msg *m, uint32_t cookie);
int vimc_start_reply(struct ipa_reader *r, int32_t *ret);
void vimc_stop_msg(struct ipa_msg *m, uint32_t cookie);
void vimc_exit_msg(struct ipa_msg *m, uint32_t cookie);

/* mapBuffers(array<IPABuffer> buffers) */
void vimc_map_buffers_msg(struct ipa_msg *m, uint32_t cookie,
			  const struct vimc_buffer *bufs, unsigned int nr_bufs);

/* [async] fillParamsBuffer(uint32 frame, uint32 bufferId): no reply */
void vimc_fill_params_buffer_msg(struct ipa_msg *m, uint32_t cookie,
				 uint32_t frame, uint32_t buffer_id);

/* The reply of a call without return value or outputs: the header only. */
int vimc_empty_reply(struct ipa_reader *r);

/* Event paramsBufferReady(uint32 bufferId, [flags] TestFlag flags) */
int vimc_params_buffer_ready(struct ipa_reader *r, uint32_t *buffer_id,
			     uint32_t *flags);

#endif /* VIMC_IPA_H */
