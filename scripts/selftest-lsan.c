// SPDX-License-Identifier: MIT
/*
 * Linked into the selftests of SANITIZE=address (or leak) builds, with
 * -Wl,--wrap=_exit.
 *
 * The kselftest harness runs every test in a child that ends with _exit(),
 * which skips LeakSanitizer's at-exit leak check: a test that leaks would
 * pass. This runs the check before the child goes, and turns a leak into a
 * test failure (KSFT_FAIL).
 */
#include <sanitizer/lsan_interface.h>

_Noreturn void __real__exit(int status);

_Noreturn void __wrap__exit(int status)
{
	if (__lsan_do_recoverable_leak_check())
		status = 1;
	__real__exit(status);
}
