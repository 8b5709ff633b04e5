// SPDX-License-Identifier: MIT
/*
 * ipa-serial.c - writing and reading libcamera IPC messages (the format is
 * described in ipa-serial.h).
 */
#include <errno.h>
#include <string.h>

#include "ipa-serial.h"

void ipa_msg_init(struct ipa_msg *m, uint32_t cmd, uint32_t cookie)
{
	struct ipa_hdr hdr = { .cmd = cmd, .cookie = cookie };

	m->len = 0;
	m->nr_fds = 0;
	m->err = 0;
	ipa_put_bytes(m, &hdr, sizeof(hdr));
}

void ipa_put_bytes(struct ipa_msg *m, const void *p, size_t len)
{
	if (m->err)
		return;
	if (len > sizeof(m->data) - m->len) {
		m->err = -EMSGSIZE;
		return;
	}
	if (len)
		memcpy(m->data + m->len, p, len);
	m->len += len;
}

/* Host byte order, as libcamera's appendPOD() copies the value. */
void ipa_put_u32(struct ipa_msg *m, uint32_t v)
{
	ipa_put_bytes(m, &v, sizeof(v));
}

void ipa_put_fd(struct ipa_msg *m, int fd)
{
	ipa_put_u32(m, fd >= 0);
	if (fd < 0 || m->err)
		return;
	if (m->nr_fds == IPA_MSG_MAX_FDS) {
		m->err = -EMSGSIZE;
		return;
	}
	m->fds[m->nr_fds++] = fd;
}

void ipa_slot_reserve(struct ipa_msg *m, struct ipa_slot *s, bool has_fds)
{
	s->at = m->len;
	s->has_fds = has_fds;
	ipa_put_u32(m, 0);
	if (has_fds)
		ipa_put_u32(m, 0);
}

void ipa_slot_open(struct ipa_msg *m, struct ipa_slot *s)
{
	s->start = m->len;
	s->fds_start = m->nr_fds;
}

void ipa_slot_close(struct ipa_msg *m, const struct ipa_slot *s)
{
	uint32_t v[2] = {
		(uint32_t)(m->len - s->start),
		m->nr_fds - s->fds_start,
	};

	if (m->err)
		return;
	memcpy(m->data + s->at, v, s->has_fds ? sizeof(v) : sizeof(v[0]));
}

void ipa_sized_begin(struct ipa_msg *m, struct ipa_slot *s, bool has_fds)
{
	ipa_slot_reserve(m, s, has_fds);
	ipa_slot_open(m, s);
}

void ipa_reader_init(struct ipa_reader *r, const void *data, size_t len,
		     const int *fds, unsigned int nr_fds)
{
	r->data = data;
	r->len = len;
	r->pos = 0;
	r->fds = fds;
	r->nr_fds = nr_fds;
	r->fd_pos = 0;
	r->err = 0;
}

/* The next @len bytes, or NULL (and the error set) if there are fewer. */
static const uint8_t *take(struct ipa_reader *r, size_t len)
{
	const uint8_t *p;

	if (r->err)
		return NULL;
	if (len > r->len - r->pos) {
		r->err = -EBADMSG;
		return NULL;
	}
	p = r->data + r->pos;
	r->pos += len;
	return p;
}

void ipa_get_hdr(struct ipa_reader *r, struct ipa_hdr *hdr)
{
	const uint8_t *p = take(r, sizeof(*hdr));

	if (p)
		memcpy(hdr, p, sizeof(*hdr));
	else
		memset(hdr, 0, sizeof(*hdr));
}

uint32_t ipa_get_u32(struct ipa_reader *r)
{
	const uint8_t *p = take(r, sizeof(uint32_t));
	uint32_t v = 0;

	if (p)
		memcpy(&v, p, sizeof(v));
	return v;
}

int32_t ipa_get_s32(struct ipa_reader *r)
{
	return (int32_t)ipa_get_u32(r);
}

void ipa_get_sub(struct ipa_reader *r, size_t len, unsigned int nr_fds,
		 struct ipa_reader *sub)
{
	const uint8_t *p = take(r, len);

	if (p && nr_fds > r->nr_fds - r->fd_pos)
		r->err = -EBADMSG;
	if (r->err) {
		ipa_reader_init(sub, NULL, 0, NULL, 0);
		sub->err = r->err;
		return;
	}
	ipa_reader_init(sub, p, len, r->fds + r->fd_pos, nr_fds);
	r->fd_pos += nr_fds;
}

int ipa_reader_done(const struct ipa_reader *r)
{
	if (r->err)
		return r->err;
	return r->pos == r->len && r->fd_pos == r->nr_fds ? 0 : -EBADMSG;
}
