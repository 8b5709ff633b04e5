# SPDX-License-Identifier: MIT
#
# libipcsock top-level Makefile, in the style of Kbuild and tools/build:
# each directory's Build file lists what it builds and with which flags,
# scripts/build.mk builds it all. Outputs go under $(O) (build/), the
# kernel files `make deps` extracts under $(IPCSOCK_CACHE) ($(O)/.cache).
# `make help` lists the targets and variables.

VERSION_MAJOR	:= 0
VERSION_MINOR	:= 2
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
# Knobs (make help says what each does)

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
# The C++ compiler of CC's family: the sanitizer runtimes must match.
ifeq ($(origin CXX),default)
  CXX := $(if $(findstring clang,$(CC)),$(subst clang,clang++,$(CC)),$(if $(findstring gcc,$(CC)),$(subst gcc,g++,$(CC)),g++))
endif
CFLAGS		?= -O2 -g
CXXFLAGS	?= -O2 -g
LDFLAGS		?=
WERROR		?= 1
SANITIZE	?=
VALGRIND	?=

# ---------------------------------------------------------------------------
# Flags: CFLAGS, CXXFLAGS and LDFLAGS are the user's, those the code needs
# are always added.

comma		:= ,
space		:= $(subst ,, )

URING_CFLAGS := $(shell { $(PKG_CONFIG) --cflags liburing || true; } 2>/dev/null)
URING_LIBS := $(shell { $(PKG_CONFIG) --libs liburing || echo -luring; } 2>/dev/null)
LIBS := $(URING_LIBS) -lpthread
# y where the real libcamera 0.0.3 is: bench/Build, compat/libcamera/Build.
LIBCAMERA := $(shell $(PKG_CONFIG) --exact-version=0.0.3 libcamera 2>/dev/null && echo y)
werror := $(if $(filter 0,$(WERROR)),,-Werror)

# -fno-sanitize-recover=all makes a UBSan report fail the test that caused
# it. Without sanitizers any undefined symbol in the shared library is an
# error (-z defs); with them the program resolves the runtime's symbols
# (clang does not link the runtime into shared objects).
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
ALL_CXXFLAGS := -std=c++17 -Wall -Wextra -Wpedantic $(werror) -D_GNU_SOURCE \
		-Iinclude $(CPPFLAGS) $(CXXFLAGS) $(san_flags)
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
# What to build: each directory's Build file lists it, scripts/build.mk
# builds it; lib/ and scripts/ build objects, the others programs. lib/'s
# objects are built twice (as libbpf does), without and with -fPIC.

OBJ_DIRS	:= scripts
PROG_DIRS	:= selftests selftests/cxx bench examples fuzz soak \
		   compat/libcamera
BUILD_DIRS	:= lib $(OBJ_DIRS) $(PROG_DIRS)
include scripts/build.mk

lib-objs	:= $(addprefix $(O)/staticobjs/lib/,$(lib-y))
lib-pic-objs	:= $(addprefix $(O)/sharedobjs/lib/,$(lib-y))
$(eval $(call compile,lib,lib,$(O)/staticobjs/lib,$(lib-objs)))
$(eval $(call compile,lib,lib,$(O)/sharedobjs/lib,$(lib-pic-objs),-fPIC))
-include $(ALL_OBJS:.o=.d)

# The targets that build: a directory's programs are $(<dir>-progs), from
# its Build file.
all: lib $(PC_FILE) $(ABI_STAMP) ## the libraries, ipcsock.pc, the ABI check
lib: $(STATIC_LIB) $(SHARED_LIB) $(SONAME_LINK) $(DEV_LINK) ## only the libraries
selftests: $(selftests-progs) $(selftests-cxx-progs) ## the C and C++ selftests
examples: $(examples-progs) $(EXAMPLE_RUNNER) ## the example programs
bench-build: $(bench-progs) ## only build the benchmark
compat: $(compat-libcamera-progs) ## compat/'s checks (with libcamera 0.0.3)
fuzz-build: $(fuzz-progs) ## only build the fuzzing harness
soak-build: $(soak-progs) ## only build the soak test
check-abi: $(ABI_STAMP) ## only the ABI check (header = version script = exports)
lib selftests examples bench-build compat fuzz-build soak-build check-abi:
	@:

# ---------------------------------------------------------------------------
# Library, pkg-config file, ABI check

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
# Tests: scripts/run-tests.sh runs the selftests, the packaging checks
# (scripts/README.md) and the examples (not under VALGRIND=1 or
# SANITIZE=thread: timing-bound programs, and a thousand processes that
# ThreadSanitizer makes slow to start).

TESTS		?= $(selftests-y) $(addprefix cxx/,$(selftests-cxx-y))
PACKAGING_TESTS	?= scripts/check-man.sh scripts/check-consumer.sh \
		   scripts/check-cxx.sh scripts/check-kerneldoc.sh \
		   scripts/check-deps.sh scripts/check-probes.sh \
		   selftests/cxx/check-header.sh \
		   compat/libcamera/check.sh compat/libcamera/interop.sh
CONSUMER_DESTDIR := $(abspath $(O))/consumer/destdir
packaging_env	= CC='$(CC)' IPCSOCK_VERSION=$(VERSION_MAJOR).$(VERSION_MINOR) \
		  IPCSOCK_EXAMPLE_LIBS='$(abspath $(STATIC_LIB)) $(LIBS)' \
		  IPCSOCK_EXAMPLE_FLAGS='$(san_flags)' \
		  IPCSOCK_CONSUMER_FLAGS='$(san_flags)' \
		  IPCSOCK_DESTDIR=$(CONSUMER_DESTDIR) \
		  IPCSOCK_SHARED_LIB=$(abspath $(SHARED_LIB)) \
		  IPCSOCK_COMPAT_OUT=$(O)/compat/libcamera
no_examples	:= $(filter 1,$(VALGRIND))$(filter thread,$(sanitizers))

# $(call deps_then,TARGETS): deps, then the build, in separate make runs:
# the cache must exist before anything compiles against it.
deps_then = $(Q)$(MAKE) deps && $(MAKE) $(1)

$(selftests-objs): | $(DEPS_STAMP)

check: ## deps, build all but fuzz, run the tests: "N passed, N failed, N skipped"
	$(call deps_then,all selftests examples bench-build compat)
	$(Q)rm -rf $(CONSUMER_DESTDIR) && $(MAKE) install DESTDIR=$(CONSUMER_DESTDIR)
	$(Q)$(packaging_env) bash scripts/run-tests.sh \
		$(if $(filter 1,$(VALGRIND)),--valgrind) \
		$(addprefix $(O)/selftests/,$(TESTS)) $(PACKAGING_TESTS) \
		$(if $(no_examples),,$(EXAMPLE_RUNNER))

# ---------------------------------------------------------------------------
# Satellites: bench/, examples/, fuzz/, soak/. Their Build files set the
# variables used here, their README.md files say what the programs do.

bench: ## deps, build the benchmark, run it with $(BENCH_ARGS)
	$(call deps_then,all bench-build)
	$(call msg,BENCH,$(strip $(BENCH_PROG) $(BENCH_ARGS)))$(BENCH_PROG) $(BENCH_ARGS)

bench-plot: ## gnuplot $(BENCH_SVG) from $(BENCH_CSV) (made by bench if missing)
	$(Q)command -v gnuplot >/dev/null 2>&1 || { \
		echo 'bench-plot: needs gnuplot (apt-get install gnuplot-nox)' >&2; \
		exit 1; }
	$(Q)$(MAKE) all bench-build
	$(Q)if [ ! -f $(BENCH_CSV) ]; then \
		$(call quiet_print,BENCH,$(strip $(BENCH_PROG) $(BENCH_ARGS) --csv $(BENCH_CSV))) \
		$(BENCH_PROG) $(BENCH_ARGS) --csv $(BENCH_CSV) || exit 1; fi
	$(call msg,PLOT,$(BENCH_SVG))gnuplot -c bench/plot.gp $(BENCH_CSV) > $(BENCH_SVG).tmp
	$(Q)mv -f $(BENCH_SVG).tmp $(BENCH_SVG)

$(EXAMPLE_RUNNER): examples/run-examples.sh
	@mkdir -p $(@D)
	$(call msg,GEN,$@)$(INSTALL) -m 755 $< $@

fuzz: ## deps, build the libFuzzer harness, run it $(FUZZ_SECONDS) s
	$(call deps_then,fuzz-build)
	$(call msg,FUZZ,$(fuzz-y) for $(FUZZ_SECONDS) s)bash fuzz/run.sh \
		$(FUZZ_RUN) $(FUZZ_SECONDS) $(fuzz-progs) -- $(FUZZ_ARGS)

# The regress-* seeds are inputs that once found a bug, kept as they were.
fuzz-seeds: $(O)/fuzz/fuzz-peer ## rewrite fuzz/corpus/ with generated seeds
	$(call msg,GEN,fuzz/corpus)mkdir -p fuzz/corpus && \
		find fuzz/corpus -type f ! -name 'regress-*' -delete && \
		$< -write-seeds=fuzz/corpus

soak: ## deps, build the soak test, run it $(SOAK_SECONDS) s
	$(call deps_then,soak-build)
	$(call msg,SOAK,$(SOAK_PROG) -s $(SOAK_SECONDS) $(SOAK_ARGS))$(SOAK_PROG) \
		-s $(SOAK_SECONDS) $(SOAK_ARGS)

# ---------------------------------------------------------------------------
# Dependencies and style checks. checkpatch runs as the kernel runs it on
# files, one line per problem; any ERROR or WARNING fails. No --strict, whose
# CHECKs give kernel-only advice (u32 over uint32_t). Ignored, because what
# they suggest is kernel-only: PREFER_DEFINED_ATTRIBUTE_MACRO (__packed and
# the like come from compiler_attributes.h) and SSCANF_TO_KSTRTO.
# format-check is advisory: the kernel's .clang-format (GPL-2.0, linked by
# deps, never committed) would undo tab-aligned #defines checkpatch accepts.

deps: ## install missing packages (as root), extract the kernel files
	$(Q)bash scripts/deps.sh
	$(Q)if [ -f $(IPCSOCK_CACHE)/.clang-format ]; then $(MAKE) .clang-format; fi

$(DEPS_STAMP):
	$(Q)bash scripts/deps.sh

CHECKPATCH_IGNORE := PREFER_DEFINED_ATTRIBUTE_MACRO,SSCANF_TO_KSTRTO
CHECKPATCH_FLAGS := --no-tree --file --terse --no-summary --show-types \
		    --max-line-length=100 --ignore $(CHECKPATCH_IGNORE)
CHECKPATCH_FILES = $(wildcard $(addsuffix /*.[ch],lib include selftests bench \
				examples examples/* fuzz scripts soak))
SHELL_SCRIPTS	:= $(wildcard */*.sh */*/*.sh) .ci/run
CLANG_FORMAT	?= clang-format
FORMAT_FILES	?= $(CHECKPATCH_FILES)

# selftests/selftest.h's BACKEND_VARIANTS() and CTX_FIXTURE() declare a
# fixture, its variants and its setup with the harness's own macros, which
# make file-scope declarations and functions (FIXTURE_VARIANT_ADD() ends
# in an initializer the caller's braces complete): they cannot go inside
# do { } while (0), so MULTISTATEMENT_MACRO_USE_DO_WHILE is off for that
# file alone.
CHECKPATCH_VARIANTS := selftests/selftest.h

checkpatch: | $(DEPS_STAMP) ## kernel checkpatch.pl over the C files
	$(call msg,CHECK,$(words $(CHECKPATCH_FILES)) files)perl $(CHECKPATCH) \
		$(CHECKPATCH_FLAGS) \
		$(filter-out $(CHECKPATCH_VARIANTS),$(CHECKPATCH_FILES)) && \
	perl $(CHECKPATCH) $(CHECKPATCH_FLAGS) \
		--ignore MULTISTATEMENT_MACRO_USE_DO_WHILE $(CHECKPATCH_VARIANTS)

shellcheck: ## shellcheck over the shell scripts and .ci/run
	$(call msg,CHECK,$(SHELL_SCRIPTS))shellcheck $(SHELL_SCRIPTS)

.clang-format: FORCE | $(DEPS_STAMP)
	$(Q)[ -f $(IPCSOCK_CACHE)/.clang-format ] || { echo \
		'$@: $(IPCSOCK_CACHE) has none (the kernel tarball had none)' >&2; \
		exit 1; }
	$(Q)[ "$$(readlink $@)" = $(IPCSOCK_CACHE)/.clang-format ] || { \
		$(call quiet_print,LN,$@) \
		ln -sfn $(IPCSOCK_CACHE)/.clang-format $@; }

format-check: .clang-format ## clang-format --dry-run over $(FORMAT_FILES)
	$(call msg,FORMAT,$(words $(FORMAT_FILES)) files)$(CLANG_FORMAT) \
		--dry-run -Werror $(FORMAT_FILES)

# ---------------------------------------------------------------------------
# Install

MAN3_PAGES = $(wildcard man/*.3)
MAN7_PAGES = $(wildcard man/*.7)
HEADERS = $(wildcard include/*.h include/*.hpp)

# $(call install_files,WHAT,DIR,MODE,FILES)
install_files = $(call msg,INSTALL,$(1) -> $(2))$(INSTALL) -d -m 755 $(2) && \
		$(INSTALL) -m $(3) $(4) $(2)/

install: all ## headers, libraries, ipcsock.pc, man pages under DESTDIR+PREFIX
	$(call install_files,headers,$(DESTDIR)$(INCLUDEDIR),644,$(HEADERS))
	$(call install_files,libraries,$(DESTDIR)$(LIBDIR),644,$(STATIC_LIB))
	$(Q)$(INSTALL) -m 755 $(SHARED_LIB) $(DESTDIR)$(LIBDIR)/
	$(Q)ln -sf $(notdir $(SHARED_LIB)) $(DESTDIR)$(LIBDIR)/$(notdir $(SONAME_LINK))
	$(Q)ln -sf $(notdir $(SONAME_LINK)) $(DESTDIR)$(LIBDIR)/$(notdir $(DEV_LINK))
	$(call install_files,$(notdir $(PC_FILE)),$(DESTDIR)$(PKGCONFIGDIR),644,$(PC_FILE))
	$(if $(MAN3_PAGES),$(call install_files,man pages,$(DESTDIR)$(MANDIR)/man3,644,$(MAN3_PAGES)))
	$(if $(MAN7_PAGES),$(call install_files,man pages,$(DESTDIR)$(MANDIR)/man7,644,$(MAN7_PAGES)))

uninstall: ## remove what install put there
	$(call msg,RM,installed files under $(DESTDIR)$(PREFIX))rm -f \
		$(addprefix $(DESTDIR)$(INCLUDEDIR)/,$(notdir $(HEADERS))) \
		$(addprefix $(DESTDIR)$(LIBDIR)/,$(notdir $(STATIC_LIB) \
			$(SHARED_LIB) $(SONAME_LINK) $(DEV_LINK))) \
		$(DESTDIR)$(PKGCONFIGDIR)/$(notdir $(PC_FILE)) \
		$(foreach s,3 7,$(addprefix $(DESTDIR)$(MANDIR)/man$(s)/,$(notdir $(MAN$(s)_PAGES))))

# ---------------------------------------------------------------------------
# Cleaning: only what the build makes (the <dir>-clean targets of
# scripts/build.mk), so O=. and an IPCSOCK_CACHE shared with other trees
# are safe.

clean: $(addsuffix -clean,$(call vp,$(BUILD_DIRS))) ## remove outputs, keep the deps cache
	$(call msg,CLEAN,$(O))rm -rf $(O)/consumer

distclean: clean ## clean, and remove the deps cache
	$(call msg,CLEAN,$(IPCSOCK_CACHE))rm -rf $(KSELFTEST_DIR) \
		$(IPCSOCK_CACHE)/checkpatch $(IPCSOCK_CACHE)/kernel-doc \
		$(IPCSOCK_CACHE)/.clang-format \
		$(DEPS_STAMP) $(IPCSOCK_CACHE)/.lock
	$(Q)[ "$$(readlink .clang-format)" != $(IPCSOCK_CACHE)/.clang-format ] || \
		rm -f .clang-format
	$(Q)rmdir $(IPCSOCK_CACHE) 2>/dev/null || true
	$(Q)rmdir $(O) 2>/dev/null || true

# ---------------------------------------------------------------------------
# Help: the targets are those with a "## what it does" comment above.

help: ## this text
	@echo 'libipcsock $(VERSION). Targets:'
	@sed -n 's/^\([a-z-]*\):.*## \(.*\)/\1|\2/p' Makefile | \
		while IFS='|' read -r t d; do printf '  %-14s %s\n' "$$t" "$$d"; done
	@echo 'Variables:'
	@echo '  O=dir          output directory (default: build)'
	@echo '  V=1            print whole commands'
	@echo '  CC, CXX        compilers (default: cc, the C++ compiler of CC'"'"'s family);'
	@echo '                 CFLAGS, CXXFLAGS (-O2 -g), LDFLAGS, CPPFLAGS, EXTRA_CFLAGS'
	@echo '  WERROR=0       do not turn warnings into errors'
	@echo '  SANITIZE=list  e.g. address,undefined: -fsanitize=list everywhere'
	@echo '  VALGRIND=1     make check runs every selftest under valgrind'
	@echo '  TESTS="a b"    make check runs only these selftests (cxx/<name> for C++)'
	@echo '  PACKAGING_TESTS=  make check leaves out the packaging checks'
	@echo '  BENCH_*, FUZZ_*, SOAK_*  see bench/, fuzz/, soak/: Build, README.md'
	@echo '  IPCSOCK_CACHE=dir  where deps puts the kernel files (default: $$(O)/.cache)'
	@echo '  IPCSOCK_TEST_TIMEOUT=s  per-program time limit in make check (default: 600)'
	@echo '  PREFIX (/usr/local), LIBDIR ($$(PREFIX)/lib), INCLUDEDIR ($$(PREFIX)/include),'
	@echo '  PKGCONFIGDIR ($$(LIBDIR)/pkgconfig), MANDIR ($$(PREFIX)/share/man), DESTDIR'

.PHONY: default all lib selftests check check-abi bench bench-build bench-plot \
	examples compat fuzz fuzz-build fuzz-seeds soak soak-build deps checkpatch \
	shellcheck format-check install uninstall clean distclean help
