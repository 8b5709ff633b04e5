# SPDX-License-Identifier: MIT
#
# libipcsock top-level Makefile, in the style of Kbuild and tools/lib.
#
# What gets built is listed in per-directory fragments that this file
# includes: lib/Build (lib-y), selftests/Build (selftests-y), bench/Build
# (bench-y), examples/Build (examples-y) and fuzz/Build (fuzz-y, with its
# own rules: the harness is built with clang and libFuzzer). Everything the
# build writes goes under $(O), build/ unless told otherwise; the kernel
# files that `make deps` extracts go to $(IPCSOCK_CACHE), $(O)/.cache unless
# told otherwise.
#
# `make help` lists the targets and the variables that change the build.

VERSION_MAJOR	:= 0
VERSION_MINOR	:= 1
VERSION_PATCH	:= 0
VERSION		:= $(VERSION_MAJOR).$(VERSION_MINOR).$(VERSION_PATCH)

# Read make -s before adding our own flags (short flags come first, as one
# word without a dash).
silent := $(findstring s,$(filter-out --%,$(firstword $(MAKEFLAGS))))
MAKEFLAGS += --no-builtin-rules --no-print-directory
.SUFFIXES:
.DELETE_ON_ERROR:

# Paths in commands are relative to the source tree, so make runs there.
srctree := $(patsubst %/,%,$(dir $(abspath $(lastword $(MAKEFILE_LIST)))))
ifneq ($(srctree),$(CURDIR))
$(error run make in $(srctree), e.g. make -C $(srctree))
endif

default: all

# ---------------------------------------------------------------------------
# Knobs

O ?= build
override O := $(patsubst %/,%,$(strip $(O)))
ifeq ($(O),)
$(error O= must name a directory)
endif

IPCSOCK_CACHE ?= $(O)/.cache
export IPCSOCK_CACHE

PREFIX		?= /usr/local
LIBDIR		?= $(PREFIX)/lib
INCLUDEDIR	?= $(PREFIX)/include
PKGCONFIGDIR	?= $(LIBDIR)/pkgconfig
MANDIR		?= $(PREFIX)/share/man
DESTDIR		?=

AR		?= ar
NM		?= nm
PKG_CONFIG	?= pkg-config
INSTALL		?= install

# CFLAGS and LDFLAGS are the user's; the flags the code needs are below and
# always present, whatever CFLAGS says.
CFLAGS		?= -O2 -g
LDFLAGS		?=
WERROR		?= 1
SANITIZE	?=
VALGRIND	?=

# ---------------------------------------------------------------------------
# Quiet output: "  CC      staticobjs/lib/loop.o". V=1 prints the commands
# instead, make -s prints nothing. Paths are shown relative to $(O).

ifeq ($(V),1)
  Q :=
  quiet_print =
else ifneq ($(silent),)
  Q := @
  quiet_print =
else
  Q := @
  quiet_print = printf '  %-7s %s\n' '$(1)' '$(patsubst $(O)/%,%,$(2))';
endif
# $(call msg,TAG,path) starts a recipe line: prints the tag, hides the command.
msg = $(Q)$(call quiet_print,$(1),$(2))

# ---------------------------------------------------------------------------
# Flags

URING_CFLAGS := $(shell { $(PKG_CONFIG) --cflags liburing || true; } 2>/dev/null)
URING_LIBS := $(shell { $(PKG_CONFIG) --libs liburing || echo -luring; } 2>/dev/null)
LIBS := $(URING_LIBS) -lpthread

ifeq ($(WERROR),0)
  werror :=
else
  werror := -Werror
endif

# -fno-sanitize-recover=all makes a UBSan report fail the test that caused
# it instead of scrolling past. Without sanitizers every undefined symbol
# in the shared library is an error (-z defs); with them the runtime's
# symbols are resolved by the program (clang does not link the runtime into
# shared objects), so the check is left to the plain build.
ifneq ($(SANITIZE),)
  san_flags := -fsanitize=$(SANITIZE) -fno-omit-frame-pointer \
	       -fno-sanitize-recover=all
  zdefs :=
else
  san_flags :=
  zdefs := -Wl,-z,defs
endif

ifneq ($(SANITIZE),)
ifeq ($(VALGRIND),1)
  $(error VALGRIND=1 and SANITIZE= do not mix: use one at a time)
endif
endif

base_cflags := -std=gnu11 -Wall -Wextra $(werror) -D_GNU_SOURCE \
	       -fvisibility=hidden -Iinclude -Ilib $(URING_CFLAGS)
ALL_CFLAGS := $(base_cflags) $(CPPFLAGS) $(CFLAGS) $(EXTRA_CFLAGS) $(san_flags)
ALL_LDFLAGS := $(LDFLAGS) $(san_flags)

# Every object and program depends on this file, which changes only when the
# compiler or the flags do: switching SANITIZE=, WERROR=, CC= or CFLAGS=
# rebuilds everything instead of mixing old and new objects.
FLAGS_FILE := $(O)/.build-flags
flags_text := $(CC) | $(ALL_CFLAGS) | $(ALL_LDFLAGS) | $(LIBS)

# ---------------------------------------------------------------------------
# What to build

lib-y :=
selftests-y :=
bench-y :=
examples-y :=
include lib/Build
include selftests/Build
include bench/Build
include examples/Build
include fuzz/Build

SONAME		:= libipcsock.so.$(VERSION_MAJOR)
STATIC_LIB	:= $(O)/libipcsock.a
SHARED_LIB	:= $(O)/libipcsock.so.$(VERSION)
SONAME_LINK	:= $(O)/$(SONAME)
DEV_LINK	:= $(O)/libipcsock.so
PC_FILE		:= $(O)/ipcsock.pc
VERSION_SCRIPT	:= lib/libipcsock.map
ABI_STAMP	:= $(O)/.abi-checked

# libbpf-style: the same sources built twice, without and with -fPIC.
STATIC_OBJS	:= $(addprefix $(O)/staticobjs/lib/,$(lib-y))
SHARED_OBJS	:= $(addprefix $(O)/sharedobjs/lib/,$(lib-y))

SELFTEST_PROGS	:= $(addprefix $(O)/selftests/,$(selftests-y))
SELFTEST_OBJS	:= $(addsuffix .o,$(SELFTEST_PROGS))
TESTS		?= $(selftests-y)

BENCH_OBJS	:= $(addprefix $(O)/bench/,$(bench-y))
BENCH_PROG	:= $(if $(bench-y),$(O)/bench/ipcsock-bench)
BENCH_LDLIBS	?= -lm

EXAMPLE_PROGS	:= $(addprefix $(O)/examples/,$(examples-y))
EXAMPLE_OBJS	:= $(addsuffix .o,$(EXAMPLE_PROGS))

ALL_OBJS = $(STATIC_OBJS) $(SHARED_OBJS) $(SELFTEST_OBJS) $(BENCH_OBJS) \
	   $(EXAMPLE_OBJS) $(SELFTEST_SUPPORT)

KSELFTEST_DIR	:= $(IPCSOCK_CACHE)/kselftest
CHECKPATCH	:= $(IPCSOCK_CACHE)/checkpatch/checkpatch.pl
DEPS_STAMP	:= $(IPCSOCK_CACHE)/.stamp

# ---------------------------------------------------------------------------
# Library

all: $(STATIC_LIB) $(SHARED_LIB) $(SONAME_LINK) $(DEV_LINK) $(PC_FILE) \
     $(ABI_STAMP)

lib: $(STATIC_LIB) $(SHARED_LIB) $(SONAME_LINK) $(DEV_LINK)
	@:

$(FLAGS_FILE): FORCE
	@mkdir -p $(@D)
	@printf '%s\n' '$(subst ','\'',$(flags_text))' > $@.tmp; \
	if cmp -s $@.tmp $@; then rm -f $@.tmp; else mv -f $@.tmp $@; fi

$(STATIC_OBJS): $(O)/staticobjs/%.o: %.c $(FLAGS_FILE)
	@mkdir -p $(@D)
	$(call msg,CC,$@)$(CC) $(ALL_CFLAGS) -MMD -MP -c -o $@ $<

$(SHARED_OBJS): $(O)/sharedobjs/%.o: %.c $(FLAGS_FILE)
	@mkdir -p $(@D)
	$(call msg,CC,$@)$(CC) $(ALL_CFLAGS) -fPIC -MMD -MP -c -o $@ $<

$(STATIC_LIB): $(STATIC_OBJS)
	$(call msg,AR,$@)rm -f $@ && $(AR) rcs $@ $^

$(SHARED_LIB): $(SHARED_OBJS) $(VERSION_SCRIPT)
	$(call msg,LD,$@)$(CC) -shared $(ALL_LDFLAGS) -Wl,-soname,$(SONAME) \
		-Wl,--version-script=$(VERSION_SCRIPT) $(zdefs) \
		-o $@ $(SHARED_OBJS) $(LIBS)

$(SONAME_LINK): $(SHARED_LIB)
	$(call msg,LN,$@)ln -sf $(notdir $<) $@

$(DEV_LINK): $(SONAME_LINK)
	$(call msg,LN,$@)ln -sf $(notdir $<) $@

# The exported symbols, the version script and the IPCSOCK_API declarations
# must agree, and the newest version node must match VERSION (as libbpf).
$(ABI_STAMP): $(SHARED_LIB) $(VERSION_SCRIPT) include/ipcsock.h \
	      scripts/check-abi.sh
	$(call msg,ABI,$(SHARED_LIB))CC='$(CC)' NM='$(NM)' bash scripts/check-abi.sh \
		$(VERSION_MAJOR).$(VERSION_MINOR) include/ipcsock.h \
		$(VERSION_SCRIPT) $(SHARED_LIB)
	@touch $@

check-abi: $(ABI_STAMP)
	@:

# Regenerated on every run but rewritten only when PREFIX, LIBDIR,
# INCLUDEDIR or VERSION changed, so `make install PREFIX=/usr` after a plain
# `make` installs the right file.
pc_libdir := $(patsubst $(PREFIX)/%,$${prefix}/%,$(LIBDIR))
pc_includedir := $(patsubst $(PREFIX)/%,$${prefix}/%,$(INCLUDEDIR))

$(PC_FILE): ipcsock.pc.in FORCE
	@mkdir -p $(@D)
	$(Q)sed -e '/^#/d' -e 's|@PREFIX@|$(PREFIX)|g' -e 's|@LIBDIR@|$(pc_libdir)|g' \
		-e 's|@INCLUDEDIR@|$(pc_includedir)|g' \
		-e 's|@VERSION@|$(VERSION)|g' $< > $@.tmp
	$(Q)if cmp -s $@.tmp $@; then rm -f $@.tmp; else \
		$(call quiet_print,GEN,$@) \
		mv -f $@.tmp $@; fi

# ---------------------------------------------------------------------------
# Selftests: selftests/<name>.c -> $(O)/selftests/<name>, against the static
# library, with the kernel's kselftest harness from the deps cache.
# The harness is written for the kernel's -Wall: under -Wextra its own code
# and its TEST()/EXPECT_*() expansions trip -Wunused-parameter (gcc and
# clang, even with -isystem) and -Wsign-compare (gcc, for the everyday
# EXPECT_EQ(0, an_unsigned)), so those two are off for selftests only.

SELFTEST_CFLAGS := -I$(KSELFTEST_DIR) -Wno-unused-parameter -Wno-sign-compare

# With LeakSanitizer, tests' leaks must be looked for before the harness's
# _exit() in each test child: see scripts/selftest-lsan.c.
comma := ,
ifneq ($(filter address leak,$(subst $(comma), ,$(SANITIZE))),)
  SELFTEST_SUPPORT := $(O)/selftests/.support/lsan.o
  SELFTEST_LDFLAGS := -Wl,--wrap=_exit
endif

selftests: $(SELFTEST_PROGS)
	@:

$(O)/selftests/.support/lsan.o: scripts/selftest-lsan.c $(FLAGS_FILE)
	@mkdir -p $(@D)
	$(call msg,CC,$@)$(CC) $(ALL_CFLAGS) -MMD -MP -c -o $@ $<

$(SELFTEST_OBJS): $(O)/selftests/%.o: selftests/%.c $(FLAGS_FILE) \
		  | $(DEPS_STAMP)
	@mkdir -p $(@D)
	$(call msg,CC,$@)$(CC) $(ALL_CFLAGS) $(SELFTEST_CFLAGS) -MMD -MP \
		-c -o $@ $<

$(SELFTEST_PROGS): %: %.o $(SELFTEST_SUPPORT) $(STATIC_LIB)
	$(call msg,LD,$@)$(CC) $(ALL_LDFLAGS) $(SELFTEST_LDFLAGS) -o $@ $< \
		$(SELFTEST_SUPPORT) $(STATIC_LIB) $(LIBS)

# Packaging checks, counted with the selftests: scripts/check-man.sh (every
# exported function has a man page; the pages lint clean; their examples
# build and run) and scripts/check-consumer.sh (a program built with nothing
# but pkg-config's flags against `make install DESTDIR=$(CONSUMER_DESTDIR)`,
# shared and static, runs), scripts/check-cxx.sh (the header and the
# README's example build as C and C++), scripts/check-kerneldoc.sh (the
# kernel's kernel-doc finds the header's comments complete) and
# scripts/check-deps.sh (deps.sh's advice for apt sources that lack
# linux-source-6.12). PACKAGING_TESTS= leaves them out.
PACKAGING_TESTS	?= scripts/check-man.sh scripts/check-consumer.sh scripts/check-cxx.sh \
		   scripts/check-kerneldoc.sh scripts/check-deps.sh
CONSUMER_DESTDIR := $(abspath $(O))/consumer/destdir
packaging_env	= CC='$(CC)' IPCSOCK_VERSION=$(VERSION_MAJOR).$(VERSION_MINOR) \
		  IPCSOCK_EXAMPLE_LIBS='$(abspath $(STATIC_LIB)) $(LIBS)' \
		  IPCSOCK_EXAMPLE_FLAGS='$(san_flags)' \
		  IPCSOCK_CONSUMER_FLAGS='$(san_flags)' \
		  IPCSOCK_DESTDIR=$(CONSUMER_DESTDIR)

# The examples are left out under valgrind and ThreadSanitizer (see
# Examples below).
no_examples	:= $(filter 1,$(VALGRIND))$(filter thread,$(subst $(comma), ,$(SANITIZE)))

# Order matters: the cache must exist before anything compiles against it,
# so deps and the build are separate make runs.
check:
	$(Q)$(MAKE) deps
	$(Q)$(MAKE) all selftests examples bench-build
	$(Q)rm -rf $(CONSUMER_DESTDIR) && $(MAKE) install DESTDIR=$(CONSUMER_DESTDIR)
	$(Q)$(packaging_env) bash scripts/run-tests.sh \
		$(if $(filter 1,$(VALGRIND)),--valgrind) \
		$(addprefix $(O)/selftests/,$(TESTS)) $(PACKAGING_TESTS) \
		$(if $(no_examples),,$(EXAMPLE_RUNNER))

# ---------------------------------------------------------------------------
# Benchmark: every object in bench-y linked into $(O)/bench/ipcsock-bench,
# against the static library. `make bench` is one of the README's two
# commands: like check it runs deps first (a fresh machine has no liburing),
# then builds and runs the program with $(BENCH_ARGS). `make check` only
# builds it (bench-build), so a broken benchmark fails CI.

BENCH_ARGS ?=

bench:
	$(Q)$(MAKE) deps
	$(Q)$(MAKE) all bench-build
ifneq ($(bench-y),)
	$(call msg,BENCH,$(strip $(BENCH_PROG) $(BENCH_ARGS)))$(BENCH_PROG) $(BENCH_ARGS)
endif

bench-build: $(BENCH_PROG)
ifeq ($(bench-y),)
	@echo '  bench: not built yet (bench/Build lists no objects)'
else
	@:
endif

# `make bench-plot` draws $(BENCH_CSV) with bench/plot.gp into $(BENCH_SVG):
# the round-trip time distribution per implementation and throughput
# against batch size. Without that CSV file it runs the benchmark first,
# with $(BENCH_ARGS).
BENCH_CSV ?= $(O)/bench/bench.csv
BENCH_SVG ?= $(O)/bench/bench.svg

bench-plot:
	$(Q)command -v gnuplot >/dev/null 2>&1 || { \
		echo 'bench-plot: needs gnuplot (apt-get install gnuplot-nox)' >&2; \
		exit 1; }
	$(Q)$(MAKE) all bench-build
ifneq ($(bench-y),)
	$(Q)if [ ! -f $(BENCH_CSV) ]; then \
		$(call quiet_print,BENCH,$(strip $(BENCH_PROG) $(BENCH_ARGS) --csv $(BENCH_CSV))) \
		$(BENCH_PROG) $(BENCH_ARGS) --csv $(BENCH_CSV) || exit 1; fi
	$(call msg,PLOT,$(BENCH_SVG))gnuplot -c bench/plot.gp $(BENCH_CSV) > $(BENCH_SVG).tmp
	$(Q)mv -f $(BENCH_SVG).tmp $(BENCH_SVG)
endif

$(BENCH_OBJS): $(O)/bench/%.o: bench/%.c $(FLAGS_FILE)
	@mkdir -p $(@D)
	$(call msg,CC,$@)$(CC) $(ALL_CFLAGS) -MMD -MP -c -o $@ $<

$(BENCH_PROG): $(BENCH_OBJS) $(STATIC_LIB)
	$(call msg,LD,$@)$(CC) $(ALL_LDFLAGS) -o $@ $(BENCH_OBJS) \
		$(STATIC_LIB) $(LIBS) $(BENCH_LDLIBS)

# ---------------------------------------------------------------------------
# Examples: examples/<name>.c -> $(O)/examples/<name>, against the shared
# library (so they can use nothing but the exported API), found at run time
# through an $ORIGIN rpath that leads back to $(O) from the program's
# directory (.. for examples/foo, ../.. for examples/dir/foo). Per-program
# EXAMPLE_CFLAGS and EXAMPLE_LDLIBS are set in examples/Build. `make check`
# runs them all through $(EXAMPLE_RUNNER), a copy of
# examples/run-examples.sh, which counts each as one test (not under
# VALGRIND=1 or SANITIZE=thread: timing-bound programs, and a thousand
# processes, each of which ThreadSanitizer makes slow to start).

EXAMPLE_RUNNER	:= $(if $(examples-y),$(O)/examples/run-examples)
space		:= $(subst ,, )
example_rpath	= $(subst $(space),/,$(patsubst %,..,$(subst /, ,$(patsubst $(O)/%,%,$(@D)))))

examples: $(EXAMPLE_PROGS) $(EXAMPLE_RUNNER)
ifeq ($(examples-y),)
	@echo '  examples: not built yet (examples/Build lists none)'
else
	@:
endif

$(EXAMPLE_OBJS): $(O)/examples/%.o: examples/%.c $(FLAGS_FILE)
	@mkdir -p $(@D)
	$(call msg,CC,$@)$(CC) $(ALL_CFLAGS) $(EXAMPLE_CFLAGS) -MMD -MP -c -o $@ $<

$(EXAMPLE_PROGS): %: %.o $(DEV_LINK)
	$(call msg,LD,$@)$(CC) $(ALL_LDFLAGS) -o $@ $< -L$(O) -lipcsock \
		$(EXAMPLE_LDLIBS) -Wl,-rpath,'$$ORIGIN/$(example_rpath)'

$(EXAMPLE_RUNNER): examples/run-examples.sh
	@mkdir -p $(@D)
	$(call msg,GEN,$@)$(INSTALL) -m 755 $< $@

# ---------------------------------------------------------------------------
# Soak: soak/ipcsock-soak.c -> $(O)/soak/ipcsock-soak, against the static
# library. `make soak` runs it for $(SOAK_SECONDS) (default 60), split into
# rounds (io_uring against epoll and back, IPCSOCK_LOOP_RING_SENDS, large
# messages with short queues): two processes exchange random messages and
# fds both ways, every one checked, with fd count and RSS sampled each
# second; any loss, reorder, corruption, fd leak or growth fails it. Runs
# under SANITIZE= too. SOAK_ARGS adds arguments (--seed N, --rounds 1,3,
# -v); the program's --help lists them.

SOAK_SECONDS	?= 60
SOAK_ARGS	?=
SOAK_PROG	:= $(O)/soak/ipcsock-soak
SOAK_OBJS	:= $(O)/soak/ipcsock-soak.o

soak:
	$(Q)$(MAKE) deps
	$(Q)$(MAKE) soak-build
	$(call msg,SOAK,$(SOAK_PROG) -s $(SOAK_SECONDS) $(SOAK_ARGS))$(SOAK_PROG) \
		-s $(SOAK_SECONDS) $(SOAK_ARGS)

soak-build: $(SOAK_PROG)
	@:

$(SOAK_OBJS): $(O)/soak/%.o: soak/%.c $(FLAGS_FILE)
	@mkdir -p $(@D)
	$(call msg,CC,$@)$(CC) $(ALL_CFLAGS) -MMD -MP -c -o $@ $<

$(SOAK_PROG): $(SOAK_OBJS) $(STATIC_LIB)
	$(call msg,LD,$@)$(CC) $(ALL_LDFLAGS) -o $@ $(SOAK_OBJS) $(STATIC_LIB) \
		$(LIBS)

soak-clean:
	$(Q)rm -f $(SOAK_PROG) $(SOAK_OBJS) $(SOAK_OBJS:.o=.d)
	$(Q)rmdir $(O)/soak 2>/dev/null || true

clean: soak-clean

-include $(SOAK_OBJS:.o=.d)

.PHONY: soak soak-build soak-clean

# ---------------------------------------------------------------------------
# Dependencies: packages and the files borrowed from the kernel tarball.

deps:
	$(Q)bash scripts/deps.sh
	$(Q)if [ -f $(IPCSOCK_CACHE)/.clang-format ]; then $(MAKE) .clang-format; fi

$(DEPS_STAMP):
	$(Q)bash scripts/deps.sh

# ---------------------------------------------------------------------------
# checkpatch, as the kernel runs it on files (--file --no-tree): one line per
# problem (--terse, which implies -q; adding -q again would bring back a
# "total:" line for every clean file), no per-file totals (--no-summary);
# any ERROR or WARNING fails. No --strict: its CHECKs include advice that is
# wrong outside the kernel (u32 over uint32_t, for one).
# Ignored, because the kernel-only replacement they suggest does not exist
# in userspace:
#   PREFER_DEFINED_ATTRIBUTE_MACRO  __packed, __printf(), __maybe_unused, ...
#                                   come from the kernel's
#                                   compiler_attributes.h; we spell
#                                   __attribute__((...)) out.
#   SSCANF_TO_KSTRTO                kstrto*() are kernel functions.
# NEW_TYPEDEFS stays on: checkpatch already allows function-pointer
# typedefs (the ipcsock_*_fn callbacks); other new typedefs should not pass.
CHECKPATCH_IGNORE := PREFER_DEFINED_ATTRIBUTE_MACRO,SSCANF_TO_KSTRTO
CHECKPATCH_FLAGS := --no-tree --file --terse --no-summary --show-types \
		    --max-line-length=100 --ignore $(CHECKPATCH_IGNORE)
CHECKPATCH_FILES = $(wildcard lib/*.c lib/*.h include/*.h selftests/*.c \
			      selftests/*.h bench/*.c examples/*.c \
			      examples/*/*.c examples/*/*.h fuzz/*.c \
			      scripts/*.c soak/*.c)

checkpatch: | $(DEPS_STAMP)
	$(call msg,CHECK,$(words $(CHECKPATCH_FILES)) files)perl $(CHECKPATCH) \
		$(CHECKPATCH_FLAGS) $(CHECKPATCH_FILES)

SHELL_SCRIPTS := $(wildcard scripts/*.sh examples/*.sh) .ci/run

shellcheck:
	$(call msg,CHECK,$(SHELL_SCRIPTS))shellcheck $(SHELL_SCRIPTS)

# The kernel's .clang-format, extracted by deps, is GPL-2.0, so it is never
# committed (.gitignore): deps links it at the top of the tree, where
# clang-format, `git clang-format` and editors look for it. format-check
# runs clang-format --dry-run over $(FORMAT_FILES) (the checkpatch set) and
# fails on any change it would make. Advisory, not part of check or CI:
# checkpatch is the enforced style, and the kernel's file is a guide the
# kernel does not follow everywhere (it would undo tab-aligned #define
# values, which checkpatch accepts).
CLANG_FORMAT	?= clang-format
FORMAT_FILES	?= $(CHECKPATCH_FILES)

.clang-format: FORCE | $(DEPS_STAMP)
	$(Q)[ -f $(IPCSOCK_CACHE)/.clang-format ] || { echo \
		'$@: $(IPCSOCK_CACHE) has none (the kernel tarball had none)' >&2; \
		exit 1; }
	$(Q)[ "$$(readlink $@)" = $(IPCSOCK_CACHE)/.clang-format ] || { \
		$(call quiet_print,LN,$@) \
		ln -sfn $(IPCSOCK_CACHE)/.clang-format $@; }

format-check: .clang-format
	$(call msg,FORMAT,$(words $(FORMAT_FILES)) files)$(CLANG_FORMAT) \
		--dry-run -Werror $(FORMAT_FILES)

# ---------------------------------------------------------------------------
# Install

MAN3_PAGES = $(wildcard man/*.3)
MAN7_PAGES = $(wildcard man/*.7)
HEADERS = $(wildcard include/*.h)

install: all
	$(call msg,INSTALL,headers -> $(DESTDIR)$(INCLUDEDIR))$(INSTALL) -d -m 755 $(DESTDIR)$(INCLUDEDIR)
	$(Q)$(INSTALL) -m 644 $(HEADERS) $(DESTDIR)$(INCLUDEDIR)/
	$(call msg,INSTALL,libraries -> $(DESTDIR)$(LIBDIR))$(INSTALL) -d -m 755 $(DESTDIR)$(LIBDIR)
	$(Q)$(INSTALL) -m 644 $(STATIC_LIB) $(DESTDIR)$(LIBDIR)/
	$(Q)$(INSTALL) -m 755 $(SHARED_LIB) $(DESTDIR)$(LIBDIR)/
	$(Q)ln -sf $(notdir $(SHARED_LIB)) $(DESTDIR)$(LIBDIR)/$(notdir $(SONAME_LINK))
	$(Q)ln -sf $(notdir $(SONAME_LINK)) $(DESTDIR)$(LIBDIR)/$(notdir $(DEV_LINK))
	$(call msg,INSTALL,$(notdir $(PC_FILE)) -> $(DESTDIR)$(PKGCONFIGDIR))$(INSTALL) -d -m 755 $(DESTDIR)$(PKGCONFIGDIR)
	$(Q)$(INSTALL) -m 644 $(PC_FILE) $(DESTDIR)$(PKGCONFIGDIR)/
ifneq ($(MAN3_PAGES),)
	$(call msg,INSTALL,man pages -> $(DESTDIR)$(MANDIR)/man3)$(INSTALL) -d -m 755 $(DESTDIR)$(MANDIR)/man3
	$(Q)$(INSTALL) -m 644 $(MAN3_PAGES) $(DESTDIR)$(MANDIR)/man3/
endif
ifneq ($(MAN7_PAGES),)
	$(call msg,INSTALL,man pages -> $(DESTDIR)$(MANDIR)/man7)$(INSTALL) -d -m 755 $(DESTDIR)$(MANDIR)/man7
	$(Q)$(INSTALL) -m 644 $(MAN7_PAGES) $(DESTDIR)$(MANDIR)/man7/
endif

uninstall:
	$(call msg,RM,installed files under $(DESTDIR)$(PREFIX))rm -f \
		$(addprefix $(DESTDIR)$(INCLUDEDIR)/,$(notdir $(HEADERS))) \
		$(addprefix $(DESTDIR)$(LIBDIR)/,$(notdir $(STATIC_LIB) \
			$(SHARED_LIB) $(SONAME_LINK) $(DEV_LINK))) \
		$(DESTDIR)$(PKGCONFIGDIR)/$(notdir $(PC_FILE)) \
		$(addprefix $(DESTDIR)$(MANDIR)/man3/,$(notdir $(MAN3_PAGES))) \
		$(addprefix $(DESTDIR)$(MANDIR)/man7/,$(notdir $(MAN7_PAGES)))

# ---------------------------------------------------------------------------
# C++ API (include/ipcsock.hpp, header-only): installed with the C header.
# Its selftests, selftests/cxx/<name>.cpp -> $(O)/selftests/cxx/<name> for
# each name in selftests/cxx/Build, against the static library, with their
# own TAP runner (the kselftest harness does not compile as C++): `make
# selftests` builds them, `make check` runs them with the C selftests
# (TESTS=cxx/<name> picks one) and runs selftests/cxx/check-header.sh
# with the packaging checks. CXX defaults to the C++ compiler of CC's
# family: the sanitizer runtime must match the library's.

HEADERS += include/ipcsock.hpp

ifeq ($(origin CXX),default)
  CXX := $(if $(findstring clang,$(CC)),$(subst clang,clang++,$(CC)),$(if $(findstring gcc,$(CC)),$(subst gcc,g++,$(CC)),g++))
endif
CXXFLAGS	?= -O2 -g

cxx-selftests-y :=
include selftests/cxx/Build

CXX_SELFTEST_PROGS := $(addprefix $(O)/selftests/cxx/,$(cxx-selftests-y))
CXX_SELFTEST_OBJS := $(addsuffix .o,$(CXX_SELFTEST_PROGS))
CXX_FLAGS_FILE	:= $(O)/selftests/cxx/.build-flags
ALL_CXXFLAGS	:= -std=c++17 -Wall -Wextra -Wpedantic $(werror) -D_GNU_SOURCE \
		   -Iinclude $(CPPFLAGS) $(CXXFLAGS) $(san_flags)

ifeq ($(origin TESTS),file)
  TESTS += $(addprefix cxx/,$(cxx-selftests-y))
endif
PACKAGING_TESTS += selftests/cxx/check-header.sh

selftests: $(CXX_SELFTEST_PROGS)

$(CXX_FLAGS_FILE): FORCE
	@mkdir -p $(@D)
	@printf '%s\n' '$(subst ','\'',$(CXX) | $(ALL_CXXFLAGS) | $(ALL_LDFLAGS))' > $@.tmp; \
	if cmp -s $@.tmp $@; then rm -f $@.tmp; else mv -f $@.tmp $@; fi

$(CXX_SELFTEST_OBJS): $(O)/selftests/cxx/%.o: selftests/cxx/%.cpp \
		      $(CXX_FLAGS_FILE) $(FLAGS_FILE)
	@mkdir -p $(@D)
	$(call msg,CXX,$@)$(CXX) $(ALL_CXXFLAGS) -MMD -MP -c -o $@ $<

$(CXX_SELFTEST_PROGS): %: %.o $(STATIC_LIB)
	$(call msg,LD,$@)$(CXX) $(ALL_LDFLAGS) -o $@ $< $(STATIC_LIB) $(LIBS)

cxx-selftests-clean:
	$(Q)rm -rf $(O)/selftests/cxx

clean: cxx-selftests-clean

-include $(CXX_SELFTEST_OBJS:.o=.d)

.PHONY: cxx-selftests-clean

# ---------------------------------------------------------------------------
# Cleaning. clean keeps the deps cache (extracting it takes a while),
# distclean removes it too. Only what this Makefile makes is removed, so
# O=. (where selftests/, bench/ and examples/ are the source directories)
# and an IPCSOCK_CACHE shared with other trees are safe.

clean:
	$(call msg,CLEAN,$(O))rm -rf $(O)/staticobjs $(O)/sharedobjs
	$(Q)rm -f $(STATIC_LIB) $(SHARED_LIB) $(SONAME_LINK) $(DEV_LINK) \
		$(PC_FILE) $(PC_FILE).tmp $(FLAGS_FILE) $(FLAGS_FILE).tmp \
		$(ABI_STAMP) $(SELFTEST_PROGS) $(BENCH_PROG) $(EXAMPLE_PROGS) \
		$(foreach d,selftests bench examples,$(O)/$(d)/*.o $(O)/$(d)/*.d) \
		$(EXAMPLE_OBJS) $(EXAMPLE_OBJS:.o=.d) $(EXAMPLE_RUNNER)
	$(Q)rm -rf $(O)/selftests/.support $(O)/consumer
	$(Q)rmdir $(filter-out $(O)/examples/,$(sort $(dir $(EXAMPLE_PROGS)))) \
		$(O)/selftests $(O)/bench $(O)/examples 2>/dev/null || true

distclean: clean
	$(call msg,CLEAN,$(IPCSOCK_CACHE))rm -rf $(KSELFTEST_DIR) \
		$(IPCSOCK_CACHE)/checkpatch $(IPCSOCK_CACHE)/kernel-doc \
		$(IPCSOCK_CACHE)/.clang-format \
		$(DEPS_STAMP) $(IPCSOCK_CACHE)/.lock
	$(Q)[ "$$(readlink .clang-format)" != $(IPCSOCK_CACHE)/.clang-format ] || \
		rm -f .clang-format
	$(Q)rmdir $(IPCSOCK_CACHE) 2>/dev/null || true
	$(Q)rmdir $(O) 2>/dev/null || true

# ---------------------------------------------------------------------------

help:
	@echo 'libipcsock $(VERSION)'
	@echo
	@echo 'Targets:'
	@echo '  all (default)  libipcsock.a, libipcsock.so.$(VERSION) + links, ipcsock.pc,'
	@echo '                 and the ABI check (header = version script = exports)'
	@echo '  lib            only the libraries'
	@echo '  deps           install missing packages (as root) and extract the'
	@echo '                 kselftest harness and checkpatch into $$(IPCSOCK_CACHE);'
	@echo '                 link the kernel'"'"'s .clang-format at the top of the tree'
	@echo '  selftests      build $$(O)/selftests/<name> for each name in selftests/Build'
	@echo '  check          deps, then all + selftests + examples + bench, then run'
	@echo '                 the selftests and the packaging checks (man pages, an'
	@echo '                 installed-tree consumer); last line "N passed, N failed,'
	@echo '                 N skipped"'
	@echo '  check-abi      only the ABI check'
	@echo '  bench          deps, then build $$(O)/bench/ipcsock-bench from the objects'
	@echo '                 in bench/Build and run it with $$(BENCH_ARGS)'
	@echo '  bench-build    only build the benchmark'
	@echo '  bench-plot     gnuplot SVG $$(BENCH_SVG) of $$(BENCH_CSV), running the'
	@echo '                 benchmark first if that file does not exist'
	@echo '  examples       $$(O)/examples/<name> for each name in examples/Build'
	@echo '  fuzz           deps, then build the libFuzzer harness (clang) and run it'
	@echo '                 $$(FUZZ_SECONDS) s (default 60) on a copy of fuzz/corpus/'
	@echo '  fuzz-build     only build it; fuzz-seeds rewrites fuzz/corpus/'
	@echo '  soak           deps, then build $$(O)/soak/ipcsock-soak and run it'
	@echo '                 $$(SOAK_SECONDS) s (default 60): two processes, both'
	@echo '                 backends, every message checked, fds and RSS sampled'
	@echo '  soak-build     only build it'
	@echo '  checkpatch     kernel checkpatch.pl over the C files of lib/ include/'
	@echo '                 selftests/ bench/ examples/ fuzz/ scripts/ soak/; fails'
	@echo '                 on any error or warning'
	@echo '  shellcheck     shellcheck over scripts/*.sh and .ci/run'
	@echo '  format-check   clang-format --dry-run with the kernel'"'"'s .clang-format over'
	@echo '                 $$(FORMAT_FILES) (default: the checkpatch files); advisory'
	@echo '  install        headers, libraries, ipcsock.pc, man pages under DESTDIR+PREFIX'
	@echo '  uninstall      remove what install put there'
	@echo '  clean          remove build outputs, keep the deps cache'
	@echo '  distclean      clean, and remove the deps cache'
	@echo
	@echo 'Variables:'
	@echo '  O=dir          output directory (default: build)'
	@echo '  V=1            print whole commands'
	@echo '  CC=clang       compiler (default: cc); CFLAGS (default: -O2 -g),'
	@echo '                 LDFLAGS, CPPFLAGS and EXTRA_CFLAGS are added to ours'
	@echo '  WERROR=0       do not turn warnings into errors'
	@echo '  SANITIZE=list  e.g. address,undefined: -fsanitize=list everywhere'
	@echo '  VALGRIND=1     make check runs every selftest under valgrind'
	@echo '  TESTS="a b"    make check runs only these selftests'
	@echo '  PACKAGING_TESTS=  make check leaves out the man page and consumer checks'
	@echo '  BENCH_ARGS=... arguments make bench gives the benchmark; BENCH_LDLIBS (-lm)'
	@echo '  FUZZ_SECONDS=n, FUZZ_ARGS=...  how long make fuzz runs, extra libFuzzer flags'
	@echo '  SOAK_SECONDS=n, SOAK_ARGS=...  how long make soak runs, extra soak arguments'
	@echo '  BENCH_CSV=file, BENCH_SVG=file  bench-plot input and output'
	@echo '                 (default: $$(O)/bench/bench.csv, $$(O)/bench/bench.svg)'
	@echo '  IPCSOCK_CACHE=dir  where deps puts the kernel files (default: $$(O)/.cache)'
	@echo '  IPCSOCK_TEST_TIMEOUT=s  per-program time limit in make check (default: 600)'
	@echo '  PREFIX (/usr/local), LIBDIR ($$(PREFIX)/lib), INCLUDEDIR ($$(PREFIX)/include),'
	@echo '  PKGCONFIGDIR ($$(LIBDIR)/pkgconfig), MANDIR ($$(PREFIX)/share/man), DESTDIR'

-include $(ALL_OBJS:.o=.d)

.PHONY: default all lib selftests check check-abi bench bench-build bench-plot \
	examples deps \
	checkpatch shellcheck format-check install uninstall clean distclean help FORCE
FORCE:
