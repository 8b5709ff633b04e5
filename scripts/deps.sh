#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# deps.sh - get what building and testing libipcsock needs.
#
# Installs the packages the build and the tests need (as root; otherwise
# names them and fails) and extracts the files it borrows from the kernel
# source tarball into the cache; scripts/README.md lists both.
# `deps.sh --check-apt PACKAGE...` only checks that apt can install them.
#
# Environment:
#   IPCSOCK_CACHE          cache directory (default: build/.cache in the
#                          source tree; the Makefile passes $(O)/.cache)
#   IPCSOCK_KERNEL_TARBALL kernel source tarball
#                          (default: /usr/src/linux-source-6.12.tar.xz)
set -eu

srctree=$(cd "$(dirname "$0")/.." && pwd)
cache=${IPCSOCK_CACHE:-$srctree/build/.cache}
default_tarball=/usr/src/linux-source-6.12.tar.xz
tarball=${IPCSOCK_KERNEL_TARBALL:-$default_tarball}

die()
{
	echo "deps.sh: $*" >&2
	exit 1
}

# ---------------------------------------------------------------------------
# 1. Packages

missing_packages()
{
	local pkgs=()

	command -v cc >/dev/null 2>&1 || pkgs+=(gcc)
	[ -r /usr/include/stdio.h ] || pkgs+=(libc6-dev)
	command -v pkg-config >/dev/null 2>&1 || pkgs+=(pkg-config)
	if [ ! -r /usr/include/liburing.h ] ||
	   ! pkg-config --exists liburing 2>/dev/null; then
		pkgs+=(liburing-dev)
	fi
	pkg-config --exists glib-2.0 2>/dev/null || pkgs+=(libglib2.0-dev)
	# <sys/sdt.h> for the USDT probes (lib/trace.h)
	echo '#include <sys/sdt.h>' | cc -E -x c - >/dev/null 2>&1 ||
		pkgs+=(systemtap-sdt-dev)
	if [ ! -r "$tarball" ]; then
		[ "$tarball" = "$default_tarball" ] ||
			die "IPCSOCK_KERNEL_TARBALL=$tarball: no such file"
		pkgs+=(linux-source-6.12)
	fi
	echo "${pkgs[*]}"
}

# The modules checkpatch.pl and kernel-doc load that perl-base lacks.
have_checkpatch_perl()
{
	perl -MTerm::ANSIColor -MEncode -MGetopt::Long -MPod::Usage -e 1 \
		>/dev/null 2>&1
}

# What `make fuzz` lacks: clang, and the libFuzzer runtime of that clang's
# version (libclang-rt-N-dev; libclang-rt-dev goes with the clang package).
missing_fuzz_packages()
{
	local rt major

	if ! command -v clang >/dev/null 2>&1; then
		echo "clang libclang-rt-dev"
		return
	fi
	rt=$(clang -print-file-name="libclang_rt.fuzzer-$(uname -m).a")
	if [ ! -f "$rt" ]; then
		major=$(clang -dumpversion)
		echo "libclang-rt-${major%%.*}-dev"
	fi
}

# libcamera 0.0.3 for the benchmark and compat/libcamera/: its headers and
# pkg-config file (libcamera-dev), and its IPA modules and proxy workers
# (libcamera-ipa), real processes that speak its IPC.
libcamera_version=0.0.3

missing_libcamera_packages()
{
	local pkgs=()

	pkg-config --exact-version=$libcamera_version libcamera 2>/dev/null ||
		pkgs+=(libcamera-dev)
	case $(dpkg-query -W -f '${Status} ${Version}' libcamera-ipa 2>/dev/null) in
	"install ok installed $libcamera_version"-*) ;;
	*) pkgs+=(libcamera-ipa) ;;
	esac
	echo "${pkgs[*]}"
}

# libcamera_installable [--known] PACKAGE...: those whose apt candidate is
# libcamera 0.0.3, and, without --known, those apt does not know yet (the
# update before installing may bring them); the others are named on
# stderr.
libcamera_installable()
{
	local pkg cand known=0 ok=()

	if [ "$1" = --known ]; then
		known=1
		shift
	fi
	for pkg in "$@"; do
		cand=$(LC_ALL=C apt-cache policy "$pkg" 2>/dev/null |
		       sed -n 's/^ *Candidate: //p')
		case $cand in
		"$libcamera_version"-*)
			ok+=("$pkg")
			;;
		"" | "(none)")
			if [ $known = 0 ]; then
				ok+=("$pkg")
			else
				echo "deps.sh: warning: apt has no $pkg: the benchmark's libcamera implementation and compat/libcamera/check.sh are left out" >&2
			fi
			;;
		*)
			echo "deps.sh: warning: apt offers $pkg $cand, not $libcamera_version: the benchmark's libcamera implementation and compat/libcamera/check.sh are left out" >&2
			;;
		esac
	done
	echo "${ok[*]}"
}

# Debian 12 has linux-source-6.12 in the bookworm-security suite only, the
# security updates: a standard install lists that suite in its apt sources,
# but a minimal system (debootstrap, some chroots and images) may have
# bookworm alone, where apt-get fails with "Unable to locate package".
security_line='deb http://deb.debian.org/debian-security bookworm-security main'
security_list=/etc/apt/sources.list.d/bookworm-security.list

# Succeed if apt has an installable version of every package named; else
# say what to do and fail. Reads apt's lists as they are.
check_apt()
{
	local pkg unknown=()

	for pkg in "$@"; do
		LC_ALL=C apt-cache policy "$pkg" 2>/dev/null |
			grep -q '^ *Candidate: [^(]' || unknown+=("$pkg")
	done
	[ ${#unknown[@]} -gt 0 ] || return 0
	echo "deps.sh: apt has no installable version of: ${unknown[*]}" >&2
	for pkg in "${unknown[@]}"; do
		case $pkg in
		linux-source-6.12)
			cat >&2 <<-EOF

			Debian 12 (bookworm) has linux-source-6.12 in its bookworm-security
			suite (the security updates). A standard install has that suite in
			its apt sources; this system's sources lack it. Add it, as root:

			    echo '$security_line' > $security_list
			    apt-get update

			(or, where the sources are in the deb822 style of
			/etc/apt/sources.list.d/debian.sources, append this stanza there,
			after a blank line:

			    Types: deb
			    URIs: http://deb.debian.org/debian-security
			    Suites: bookworm-security
			    Components: main
			    Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

			and run apt-get update), then run \`make deps\` again.
			EOF
			;;
		*)
			echo "$pkg: Debian 12 has it in bookworm, component main: check the apt sources (apt-cache policy $pkg)." >&2
			;;
		esac
	done
	return 1
}

if [ "${1:-}" = --check-apt ]; then
	shift
	check_apt "$@"
	exit
fi

missing=$(missing_packages)
optional=
if ! have_checkpatch_perl; then
	optional=perl
fi
if ! command -v mandoc >/dev/null 2>&1; then
	optional="${optional:+$optional }mandoc"
fi
if ! command -v gnuplot >/dev/null 2>&1; then
	optional="${optional:+$optional }gnuplot-nox"
fi
if ! command -v "${CXX:-c++}" >/dev/null 2>&1; then
	optional="${optional:+$optional }g++"
fi
# Attaches to the USDT probes in check-probes.sh (which needs root anyway).
if ! command -v bpftrace >/dev/null 2>&1; then
	optional="${optional:+$optional }bpftrace"
fi
fuzz_missing=$(missing_fuzz_packages)
if [ -n "$fuzz_missing" ]; then
	optional="${optional:+$optional }$fuzz_missing"
fi
other_optional=$optional
libcamera_missing=$(missing_libcamera_packages)
if [ -n "$libcamera_missing" ]; then
	# shellcheck disable=SC2086
	libcamera_missing=$(libcamera_installable $libcamera_missing)
fi
if [ -n "$libcamera_missing" ]; then
	optional="${optional:+$optional }$libcamera_missing"
fi
install="$missing${missing:+${optional:+ }}$optional"

if [ -n "$install" ]; then
	if [ "$(id -u)" -ne 0 ]; then
		if [ -n "$missing" ]; then
			cat >&2 <<-EOF
			deps.sh: libipcsock needs these packages, which are missing:

			    $missing

			Install them as root, e.g.:

			    sudo apt-get install --no-install-recommends $install

			or run \`make deps\` as root, which does that.
			EOF
			# Lists that know libc6 are not merely empty: a package
			# they lack is in a suite the sources do not name.
			if LC_ALL=C apt-cache policy libc6 2>/dev/null |
			   grep -q '^ *Candidate: [^(]'; then
				# shellcheck disable=SC2086
				check_apt $missing || true
			fi
			exit 1
		fi
		echo "deps.sh: warning: not installed: $optional (perl for \`make checkpatch\` and the kernel-doc check, mandoc for the man page lint of \`make check\`, g++ for its C++ build of the header, gnuplot-nox for \`make bench-plot\`, bpftrace for the probe firing check of \`make check\`, clang and libclang-rt for \`make fuzz\`, libcamera-dev and libcamera-ipa $libcamera_version for the benchmark's libcamera implementation)" >&2
	else
		echo "  APT     $install"
		export DEBIAN_FRONTEND=noninteractive
		apt-get update -q ||
			die "apt-get update failed"
		# The fresh lists may offer another libcamera than 0.0.3, or
		# none: then it is left out.
		if [ -n "$libcamera_missing" ]; then
			# shellcheck disable=SC2086
			libcamera_missing=$(libcamera_installable --known $libcamera_missing)
			install="$missing${missing:+${other_optional:+ }}$other_optional"
			install="$install${install:+${libcamera_missing:+ }}$libcamera_missing"
		fi
		if [ -n "$install" ]; then
			# Word splitting of the list is intended.
			# shellcheck disable=SC2086
			check_apt $install || exit 1
			# shellcheck disable=SC2086
			apt-get install -q -y --no-install-recommends $install ||
				die "apt-get could not install: $install"
		fi
		missing=$(missing_packages)
		[ -z "$missing" ] || die "still missing after apt-get: $missing"
	fi
fi

# ---------------------------------------------------------------------------
# 2. Kernel files

required=(
	kselftest/kselftest_harness.h
	kselftest/kselftest.h
	checkpatch/checkpatch.pl
	checkpatch/spelling.txt
	checkpatch/const_structs.checkpatch
	kernel-doc/kernel-doc
)
stamp=$cache/.stamp

tarball_id()
{
	stat -L -c '%n %s %Y' "$tarball"
}

cache_is_current()
{
	local f

	[ -f "$stamp" ] && [ "$(cat "$stamp")" = "$(tarball_id)" ] || return 1
	for f in "${required[@]}"; do
		[ -s "$cache/$f" ] || return 1
	done
}

if cache_is_current; then
	echo "  DEPS    ok (cache: $cache)"
	exit 0
fi

mkdir -p "$cache"
# Two makes sharing a cache must not extract at the same time.
if command -v flock >/dev/null 2>&1; then
	exec 9>"$cache/.lock"
	flock 9
	if cache_is_current; then
		echo "  DEPS    ok (cache: $cache)"
		exit 0
	fi
fi

echo "  EXTRACT kselftest harness, checkpatch, kernel-doc from ${tarball##*/} into $cache"
tmp=$(mktemp -d "$cache/.extract.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

# "*" stands for the tarball's top directory (linux-source-6.12/); it does
# not match "/", and --strip-components drops it.
optional='*/.clang-format'
if ! tar -xJf "$tarball" -C "$tmp" --strip-components=1 \
	 --wildcards --no-wildcards-match-slash \
	 '*/tools/testing/selftests/kselftest_harness.h' \
	 '*/tools/testing/selftests/kselftest.h' \
	 '*/scripts/checkpatch.pl' \
	 '*/scripts/spelling.txt' \
	 '*/scripts/const_structs.checkpatch' \
	 '*/scripts/kernel-doc' \
	 "$optional" 2>"$tmp/tar.err"; then
	# Only the optional member may be absent; anything else is an error.
	if grep -v -F -e "$optional: Not found in archive" \
		  -e 'Exiting with failure status due to previous errors' \
		  "$tmp/tar.err" >&2; then
		die "could not extract from $tarball"
	fi
fi

rm -rf "$cache/kselftest" "$cache/checkpatch" "$cache/kernel-doc" \
       "$cache/.clang-format"
mkdir "$cache/kselftest" "$cache/checkpatch" "$cache/kernel-doc"
mv "$tmp/tools/testing/selftests/kselftest_harness.h" \
   "$tmp/tools/testing/selftests/kselftest.h" "$cache/kselftest/"
mv "$tmp/scripts/checkpatch.pl" "$tmp/scripts/spelling.txt" \
   "$tmp/scripts/const_structs.checkpatch" "$cache/checkpatch/"
mv "$tmp/scripts/kernel-doc" "$cache/kernel-doc/"
if [ -f "$tmp/.clang-format" ]; then
	mv "$tmp/.clang-format" "$cache/.clang-format"
fi

for f in "${required[@]}"; do
	[ -s "$cache/$f" ] || die "$f is missing from $tarball"
done
tarball_id >"$stamp"
