# SPDX-License-Identifier: MIT
#
# libipcsock top-level Makefile, in the style of Kbuild and tools/build.
#
# Each directory that builds something has a Build file that lists what it
# builds; one compile rule and one link rule, in scripts/build.mk, build
# all of it. Everything the build writes goes under $(O), build/
# unless told otherwise; the kernel files that `make deps` extracts go to
# $(IPCSOCK_CACHE), $(O)/.cache unless told otherwise.
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
# always present, whatever CFLAGS says. FUZZ_CC and FUZZ_CFLAGS play the
# parts of CC and CFLAGS for the fuzzing harness (clang, with Debian's
# libclang-rt-14-dev for libFuzzer).
CFLAGS		?= -O2 -g
LDFLAGS		?=
WERROR		?= 1
SANITIZE	?=
VALGRIND	?=
FUZZ_CC		?= clang
FUZZ_CFLAGS	?= -O1 -g

# ---------------------------------------------------------------------------
# Flags

comma		:= ,
space		:= $(subst ,, )

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
ifeq ($(VALGRIND),1)
  $(error VALGRIND=1 and SANITIZE= do not mix: use one at a time)
endif
else
  san_flags :=
  zdefs := -Wl,-z,defs
endif
sanitizers	:= $(subst $(comma), ,$(SANITIZE))
# y with LeakSanitizer: scripts/Build, selftests/Build.
LSAN		:= $(if $(filter address leak,$(sanitizers)),y)

base_cflags := -std=gnu11 -Wall -Wextra $(werror) -D_GNU_SOURCE \
	       -fvisibility=hidden -Iinclude -Ilib $(URING_CFLAGS)
ALL_CFLAGS := $(base_cflags) $(CPPFLAGS) $(CFLAGS) $(EXTRA_CFLAGS) $(san_flags)
ALL_LDFLAGS := $(LDFLAGS) $(san_flags)

SONAME		:= libipcsock.so.$(VERSION_MAJOR)
STATIC_LIB	:= $(O)/libipcsock.a
SHARED_LIB	:= $(O)/libipcsock.so.$(VERSION)
SONAME_LINK	:= $(O)/$(SONAME)
DEV_LINK	:= $(O)/libipcsock.so
PC_FILE		:= $(O)/ipcsock.pc
VERSION_SCRIPT	:= lib/libipcsock.map
ABI_STAMP	:= $(O)/.abi-checked

KSELFTEST_DIR	:= $(IPCSOCK_CACHE)/kselftest
CHECKPATCH	:= $(IPCSOCK_CACHE)/checkpatch/checkpatch.pl
DEPS_STAMP	:= $(IPCSOCK_CACHE)/.stamp

# ---------------------------------------------------------------------------
# What to build: each directory's Build file lists it (scripts/build.mk
# says how); lib/ and scripts/ build objects, the others programs.

OBJ_DIRS	:= scripts
PROG_DIRS	:= selftests bench examples fuzz soak
BUILD_DIRS	:= lib $(OBJ_DIRS) $(PROG_DIRS)
include scripts/build.mk

# ---------------------------------------------------------------------------
# Library: libbpf-style, lib/Build's objects built twice, without and with
# -fPIC.

lib-objs	:= $(addprefix $(O)/staticobjs/lib/,$(lib-y))
lib-pic-objs	:= $(addprefix $(O)/sharedobjs/lib/,$(lib-y))
$(eval $(call compile,lib,lib,$(O)/staticobjs/lib,$(lib-objs)))
$(eval $(call compile,lib,lib,$(O)/sharedobjs/lib,$(lib-pic-objs),-fPIC))

all: $(STATIC_LIB) $(SHARED_LIB) $(SONAME_LINK) $(DEV_LINK) $(PC_FILE) \
     $(ABI_STAMP)

lib: $(STATIC_LIB) $(SHARED_LIB) $(SONAME_LINK) $(DEV_LINK)
	@:

$(STATIC_LIB): $(lib-objs)
	$(call msg,AR,$@)rm -f $@ && $(AR) rcs $@ $^

$(SHARED_LIB): $(lib-pic-objs) $(VERSION_SCRIPT)
	$(call msg,LD,$@)$(lib-cc) -shared $(lib-ldflags) -Wl,-soname,$(SONAME) \
		-Wl,--version-script=$(VERSION_SCRIPT) $(zdefs) \
		-o $@ $(lib-pic-objs) $(lib-libs)

$(SONAME_LINK): $(SHARED_LIB)
$(DEV_LINK): $(SONAME_LINK)
$(SONAME_LINK) $(DEV_LINK):
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
	$(Q)$(call update_file,$(call quiet_print,GEN,$@))

lib-clean-files := $(O)/staticobjs $(O)/sharedobjs $(STATIC_LIB) \
		   $(SHARED_LIB) $(SONAME_LINK) $(DEV_LINK) $(PC_FILE) \
		   $(PC_FILE).tmp $(ABI_STAMP)

# ---------------------------------------------------------------------------
# Selftests: $(O)/selftests/<name> against the static library, with the
# kernel's kselftest harness from the deps cache (selftests/Build).

selftests: $(selftests-progs)
	@:

$(selftests-objs): | $(DEPS_STAMP)

# Packaging checks, counted with the selftests: scripts/check-man.sh (every
# exported function has a man page; the pages lint clean; their examples
# build and run) and scripts/check-consumer.sh (a program built with nothing
# but pkg-config's flags against `make install DESTDIR=$(CONSUMER_DESTDIR)`,
# shared and static, runs), scripts/check-cxx.sh (the header and the
# README's example build as C and C++), scripts/check-kerneldoc.sh (the
# kernel's kernel-doc finds the header's comments complete) and
# scripts/check-deps.sh (deps.sh's advice for apt sources that lack
# linux-source-6.12). PACKAGING_TESTS= leaves them out.
TESTS		?= $(selftests-y)
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
no_examples	:= $(filter 1,$(VALGRIND))$(filter thread,$(sanitizers))

# $(call deps_then,TARGETS): check, bench, fuzz and soak first run deps, then
# build. Order matters: the cache must exist before anything compiles
# against it, so deps and the build are separate make runs.
deps_then = $(Q)$(MAKE) deps && $(MAKE) $(1)

check:
	$(call deps_then,all selftests examples bench-build)
	$(Q)rm -rf $(CONSUMER_DESTDIR) && $(MAKE) install DESTDIR=$(CONSUMER_DESTDIR)
	$(Q)$(packaging_env) bash scripts/run-tests.sh \
		$(if $(filter 1,$(VALGRIND)),--valgrind) \
		$(addprefix $(O)/selftests/,$(TESTS)) $(PACKAGING_TESTS) \
		$(if $(no_examples),,$(EXAMPLE_RUNNER))

# ---------------------------------------------------------------------------
# Benchmark: $(O)/bench/ipcsock-bench (bench/Build). `make bench` is one of
# the README's two commands: like check it runs deps first (a fresh machine
# has no liburing), then builds and runs the program with $(BENCH_ARGS).
# `make check` only builds it (bench-build), so a broken benchmark fails CI.

BENCH_ARGS	?=
BENCH_LDLIBS	?= -lm
BENCH_PROG	:= $(O)/bench/ipcsock-bench

bench:
	$(call deps_then,all bench-build)
	$(call msg,BENCH,$(strip $(BENCH_PROG) $(BENCH_ARGS)))$(BENCH_PROG) $(BENCH_ARGS)

bench-build: $(bench-progs)
	@:

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
	$(Q)if [ ! -f $(BENCH_CSV) ]; then \
		$(call quiet_print,BENCH,$(strip $(BENCH_PROG) $(BENCH_ARGS) --csv $(BENCH_CSV))) \
		$(BENCH_PROG) $(BENCH_ARGS) --csv $(BENCH_CSV) || exit 1; fi
	$(call msg,PLOT,$(BENCH_SVG))gnuplot -c bench/plot.gp $(BENCH_CSV) > $(BENCH_SVG).tmp
	$(Q)mv -f $(BENCH_SVG).tmp $(BENCH_SVG)

# ---------------------------------------------------------------------------
# Examples: $(O)/examples/<name> against the shared library, so that they
# can use nothing but the exported API (examples/Build). `make check` runs
# them all through $(EXAMPLE_RUNNER), a copy of examples/run-examples.sh,
# which counts each as one test (not under VALGRIND=1 or SANITIZE=thread:
# timing-bound programs, and a thousand processes, each of which
# ThreadSanitizer makes slow to start).

EXAMPLE_RUNNER	:= $(O)/examples/run-examples
examples-clean-files := $(EXAMPLE_RUNNER)

examples: $(examples-progs) $(EXAMPLE_RUNNER)
	@:

$(examples-progs): $(DEV_LINK)

$(EXAMPLE_RUNNER): examples/run-examples.sh
	@mkdir -p $(@D)
	$(call msg,GEN,$@)$(INSTALL) -m 755 $< $@

# ---------------------------------------------------------------------------
# Fuzzing: $(O)/fuzz/<name>, libFuzzer harnesses (fuzz/Build). `make fuzz`
# runs each for $(FUZZ_SECONDS) (default 60) on a fresh copy of its seed
# corpus, fuzz/corpus/, and fails on any crash, sanitizer report, leak or
# broken invariant; a failing input is left in $(FUZZ_RUN)/<name>/artifacts/
# (run the harness on that file alone to reproduce it). FUZZ_ARGS adds
# libFuzzer flags (e.g. -jobs=2, -seed=1). `make fuzz-seeds` rewrites
# fuzz/corpus/ with the seeds the harness generates (fuzz-peer -seed=DIR).

FUZZ_SECONDS	?= 60
FUZZ_ARGS	?=
FUZZ_RUN	:= $(O)/fuzz/run
fuzz-clean-files := $(FUZZ_RUN)

# A smaller ASan quarantine than the 256 MiB default: the library allocates
# a channel per input, and reusing memory sooner doubles the speed. It
# still catches a use after free within the last 16 MiB of frees.
FUZZ_ASAN_OPTIONS := quarantine_size_mb=16
FUZZ_UBSAN_OPTIONS := print_stacktrace=1
# -max_len: inputs are operations, and 1 KiB holds a few hundred of them.
# -timeout: an input that takes this long is stuck (the harness itself
# gives up on a conversation after a few seconds and reports why).
FUZZ_RUN_FLAGS	:= -max_len=1024 -timeout=30 -print_final_stats=1

fuzz-build: $(fuzz-progs)
	@:

# Each harness starts from a copy of the committed seeds, so that the run
# never writes into fuzz/corpus/ (new inputs go to $(FUZZ_RUN)/<name>/corpus).
fuzz:
	$(call deps_then,fuzz-build)
	$(call msg,FUZZ,$(fuzz-y) for $(FUZZ_SECONDS) s)for prog in $(fuzz-progs); do \
		run=$(FUZZ_RUN)/$${prog##*/}; \
		rm -rf $$run && mkdir -p $$run/corpus $$run/artifacts && \
		cp fuzz/corpus/* $$run/corpus/ || exit 1; \
		ASAN_OPTIONS=$(FUZZ_ASAN_OPTIONS):$$ASAN_OPTIONS \
		UBSAN_OPTIONS=$(FUZZ_UBSAN_OPTIONS):$$UBSAN_OPTIONS \
		$$prog $(FUZZ_RUN_FLAGS) -max_total_time=$(FUZZ_SECONDS) \
			-artifact_prefix=$$run/artifacts/ $(FUZZ_ARGS) \
			$$run/corpus || exit 1; \
	done

# The regress-* seeds are inputs that once found a bug, kept as they were.
fuzz-seeds: $(O)/fuzz/fuzz-peer
	$(call msg,GEN,fuzz/corpus)mkdir -p fuzz/corpus && \
		find fuzz/corpus -type f ! -name 'regress-*' -delete && \
		$< -seed=fuzz/corpus

# ---------------------------------------------------------------------------
# Soak: $(O)/soak/ipcsock-soak (soak/Build). `make soak` runs it for
# $(SOAK_SECONDS) (default 60), split into rounds (io_uring against epoll
# and back, IPCSOCK_LOOP_RING_SENDS, large messages with short queues): two
# processes exchange random messages and fds both ways, every one checked,
# with fd count and RSS sampled each second; any loss, reorder, corruption,
# fd leak or growth fails it. Runs under SANITIZE= too. SOAK_ARGS adds
# arguments (--seed N, --rounds 1,3, -v); the program's --help lists them.

SOAK_SECONDS	?= 60
SOAK_ARGS	?=
SOAK_PROG	:= $(O)/soak/ipcsock-soak

soak:
	$(call deps_then,soak-build)
	$(call msg,SOAK,$(SOAK_PROG) -s $(SOAK_SECONDS) $(SOAK_ARGS))$(SOAK_PROG) \
		-s $(SOAK_SECONDS) $(SOAK_ARGS)

soak-build: $(soak-progs)
	@:

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
			      selftests/*.h bench/*.c bench/*.h \
			      examples/*.c examples/*.h examples/*/*.c \
			      examples/*/*.h fuzz/*.c fuzz/*.h scripts/*.c \
			      soak/*.c)

# selftests/selftest.h's BACKEND_VARIANTS() and CTX_FIXTURE() declare a
# fixture, its variants and its setup with the harness's own macros, which
# make file-scope declarations and functions (FIXTURE_VARIANT_ADD() ends
# in an initializer the caller's braces complete): they cannot go inside
# do { } while (0), so MULTISTATEMENT_MACRO_USE_DO_WHILE is off for that
# file alone.
CHECKPATCH_VARIANTS := selftests/selftest.h

checkpatch: | $(DEPS_STAMP)
	$(call msg,CHECK,$(words $(CHECKPATCH_FILES)) files)perl $(CHECKPATCH) \
		$(CHECKPATCH_FLAGS) \
		$(filter-out $(CHECKPATCH_VARIANTS),$(CHECKPATCH_FILES)) && \
	perl $(CHECKPATCH) $(CHECKPATCH_FLAGS) \
		--ignore MULTISTATEMENT_MACRO_USE_DO_WHILE $(CHECKPATCH_VARIANTS)

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

# $(call install_files,WHAT,DIR,MODE,FILES)
install_files = $(call msg,INSTALL,$(1) -> $(2))$(INSTALL) -d -m 755 $(2) && \
		$(INSTALL) -m $(3) $(4) $(2)/

install: all
	$(call install_files,headers,$(DESTDIR)$(INCLUDEDIR),644,$(HEADERS))
	$(call install_files,libraries,$(DESTDIR)$(LIBDIR),644,$(STATIC_LIB))
	$(Q)$(INSTALL) -m 755 $(SHARED_LIB) $(DESTDIR)$(LIBDIR)/
	$(Q)ln -sf $(notdir $(SHARED_LIB)) $(DESTDIR)$(LIBDIR)/$(notdir $(SONAME_LINK))
	$(Q)ln -sf $(notdir $(SONAME_LINK)) $(DESTDIR)$(LIBDIR)/$(notdir $(DEV_LINK))
	$(call install_files,$(notdir $(PC_FILE)),$(DESTDIR)$(PKGCONFIGDIR),644,$(PC_FILE))
	$(if $(MAN3_PAGES),$(call install_files,man pages,$(DESTDIR)$(MANDIR)/man3,644,$(MAN3_PAGES)))
	$(if $(MAN7_PAGES),$(call install_files,man pages,$(DESTDIR)$(MANDIR)/man7,644,$(MAN7_PAGES)))

uninstall:
	$(call msg,RM,installed files under $(DESTDIR)$(PREFIX))rm -f \
		$(addprefix $(DESTDIR)$(INCLUDEDIR)/,$(notdir $(HEADERS))) \
		$(addprefix $(DESTDIR)$(LIBDIR)/,$(notdir $(STATIC_LIB) \
			$(SHARED_LIB) $(SONAME_LINK) $(DEV_LINK))) \
		$(DESTDIR)$(PKGCONFIGDIR)/$(notdir $(PC_FILE)) \
		$(foreach s,3 7,$(addprefix $(DESTDIR)$(MANDIR)/man$(s)/,$(notdir $(MAN$(s)_PAGES))))

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

# The benchmark's C++ objects (bench-cxx-y in bench/Build: the real
# libcamera's implementation), which bench/Build links into $(BENCH_PROG).
BENCH_CXX_OBJS	:= $(addprefix $(O)/bench/,$(bench-cxx-y))

$(BENCH_CXX_OBJS): $(O)/bench/%.o: bench/%.cpp $(CXX_FLAGS_FILE) $(O)/bench/.build-flags
	@mkdir -p $(@D)
	$(call msg,CXX,$@)$(CXX) $(ALL_CXXFLAGS) $(bench-cxxflags) -MMD -MP -c -o $@ $<

$(BENCH_PROG): $(BENCH_CXX_OBJS)
-include $(BENCH_CXX_OBJS:.o=.d)

# ---------------------------------------------------------------------------
# Cleaning. clean keeps the deps cache (extracting it takes a while),
# distclean removes it too. Only what this Makefile makes is removed (see
# DIR-clean above), so O=. (where selftests/, bench/ and examples/ are the
# source directories) and an IPCSOCK_CACHE shared with other trees are safe.

clean: $(addsuffix -clean,$(BUILD_DIRS))
	$(call msg,CLEAN,$(O))rm -rf $(O)/consumer

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
	examples fuzz fuzz-build fuzz-seeds soak soak-build deps checkpatch \
	shellcheck format-check install uninstall clean distclean help
