#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# interop.sh - libipcsock in libcamera wire mode against the real
# libcamera 0.0.3: `check.sh interop` (see there), as one program for
# scripts/run-tests.sh, which runs each without arguments.
exec bash "$(dirname "$0")/check.sh" interop
