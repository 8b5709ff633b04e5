// SPDX-License-Identifier: MIT
/*
 * libcamera, in a build without libcamera 0.0.3 (bench/Build): present, so
 * that its rows say why they are empty; run_one() runs nothing for it.
 */
#include <sys/socket.h>

#include "bench.h"

const struct bench_impl impl_libcamera = {
	.name = "libcamera",
	.sock_type = SOCK_DGRAM,
	.missing = "not built: no libcamera 0.0.3 (Debian 12 libcamera-dev) at build time; make deps as root installs it",
};
