// SPDX-License-Identifier: MIT
/*
 * vimc-ipa.c - the messages of libcamera 0.0.3's vimc IPA (vimc-ipa.h),
 * written and read with ipa-serial.
 */
#include <string.h>

#include "vimc-ipa.h"

/* A string field of a struct: its size, then its bytes. */
static void put_string_field(struct ipa_msg *m, const char *s)
{
	struct ipa_slot slot;

	ipa_sized_begin(m, &slot, false);
	ipa_put_bytes(m, s, strlen(s));
	ipa_slot_close(m, &slot);
}

/* An argument that is a u32 (or an enum, or flags), into its table slot. */
static void put_u32_arg(struct ipa_msg *m, struct ipa_slot *arg, uint32_t v)
{
	ipa_slot_open(m, arg);
	ipa_put_u32(m, v);
	ipa_slot_close(m, arg);
}

void vimc_init_msg(struct ipa_msg *m, uint32_t cookie,
		   const struct vimc_settings *settings, enum vimc_op code,
		   uint32_t in_flags)
{
	struct ipa_slot arg[3];
	unsigned int i;

	ipa_msg_init(m, VIMC_CMD_INIT, cookie);
	/* Three arguments: the table of their sizes first (no fds). */
	for (i = 0; i < 3; i++)
		ipa_slot_reserve(m, &arg[i], false);

	ipa_slot_open(m, &arg[0]);
	put_string_field(m, settings->configuration_file);
	put_string_field(m, settings->sensor_model);
	ipa_slot_close(m, &arg[0]);

	put_u32_arg(m, &arg[1], code);
	put_u32_arg(m, &arg[2], in_flags);
}

/* The return value, then the single output argument, bare. */
int vimc_init_reply(struct ipa_reader *r, int32_t *ret, uint32_t *out_flags)
{
	*ret = ipa_get_s32(r);
	*out_flags = ipa_get_u32(r);
	return ipa_reader_done(r);
}

void vimc_start_msg(struct ipa_msg *m, uint32_t cookie)
{
	ipa_msg_init(m, VIMC_CMD_START, cookie);
}

int vimc_start_reply(struct ipa_reader *r, int32_t *ret)
{
	*ret = ipa_get_s32(r);
	return ipa_reader_done(r);
}

void vimc_stop_msg(struct ipa_msg *m, uint32_t cookie)
{
	ipa_msg_init(m, VIMC_CMD_STOP, cookie);
}

void vimc_exit_msg(struct ipa_msg *m, uint32_t cookie)
{
	ipa_msg_init(m, VIMC_CMD_EXIT, cookie);
}

int vimc_empty_reply(struct ipa_reader *r)
{
	return ipa_reader_done(r);
}

/* An IPABuffer: id bare, then planes, an array field holding fds. */
static void put_buffer(struct ipa_msg *m, const struct vimc_buffer *b)
{
	struct ipa_slot planes, plane;
	unsigned int i;

	ipa_put_u32(m, b->id);
	ipa_sized_begin(m, &planes, true);
	ipa_put_u32(m, b->nr_planes);
	for (i = 0; i < b->nr_planes; i++) {
		ipa_sized_begin(m, &plane, true);
		ipa_put_fd(m, b->planes[i].fd);
		ipa_put_u32(m, b->planes[i].offset);
		ipa_put_u32(m, b->planes[i].length);
		ipa_slot_close(m, &plane);
	}
	ipa_slot_close(m, &planes);
}

/* One argument, so no table: the array itself. */
void vimc_map_buffers_msg(struct ipa_msg *m, uint32_t cookie,
			  const struct vimc_buffer *bufs, unsigned int nr_bufs)
{
	struct ipa_slot elem;
	unsigned int i;

	ipa_msg_init(m, VIMC_CMD_MAP_BUFFERS, cookie);
	ipa_put_u32(m, nr_bufs);
	for (i = 0; i < nr_bufs; i++) {
		ipa_sized_begin(m, &elem, true);
		put_buffer(m, &bufs[i]);
		ipa_slot_close(m, &elem);
	}
}

void vimc_fill_params_buffer_msg(struct ipa_msg *m, uint32_t cookie,
				 uint32_t frame, uint32_t buffer_id)
{
	struct ipa_slot arg[2];

	ipa_msg_init(m, VIMC_CMD_FILL_PARAMS_BUFFER, cookie);
	ipa_slot_reserve(m, &arg[0], false);
	ipa_slot_reserve(m, &arg[1], false);
	put_u32_arg(m, &arg[0], frame);
	put_u32_arg(m, &arg[1], buffer_id);
}

/* Two arguments: their sizes, then each, which must be 4 bytes. */
int vimc_params_buffer_ready(struct ipa_reader *r, uint32_t *buffer_id,
			     uint32_t *flags)
{
	struct ipa_reader arg;
	uint32_t size[2];
	int err;

	size[0] = ipa_get_u32(r);
	size[1] = ipa_get_u32(r);
	ipa_get_sub(r, size[0], 0, &arg);
	*buffer_id = ipa_get_u32(&arg);
	err = ipa_reader_done(&arg);
	ipa_get_sub(r, size[1], 0, &arg);
	*flags = ipa_get_u32(&arg);
	if (!err)
		err = ipa_reader_done(&arg);
	return err ? err : ipa_reader_done(r);
}
