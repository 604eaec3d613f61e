#!/bin/sh
# gmem-run: run a program with /dev/kvm served by gmem.
#
# The program's open("/dev/kvm") and every call on the fds it leads to
# reach gmem through libgmem-kvm.so (LD_PRELOAD); everything else is the
# real system.  See the README, "gmem-run".
set -e

usage() {
	cat <<USAGE
usage: gmem-run [OPTIONS] PROGRAM [ARGS...]
Run PROGRAM with /dev/kvm served by gmem (libgmem-kvm.so, LD_PRELOAD).

  -t, --trace     print each call gmem answers to stderr (GMEM_RUN_TRACE=1)
  -L, --lib PATH  use this libgmem-kvm.so
  -h, --help      this text
  -V, --version   gmem-run's version
USAGE
}

lib=${GMEM_KVM_LIB:-}
while [ $# -gt 0 ]; do
	case $1 in
	-t | --trace) export GMEM_RUN_TRACE=1; shift ;;
	-L | --lib)
		[ $# -ge 2 ] || { usage >&2; exit 2; }
		lib=$2; shift 2 ;;
	-h | --help) usage; exit 0 ;;
	-V | --version) echo "gmem-run @VERSION@"; exit 0 ;;
	--) shift; break ;;
	-*) echo "gmem-run: unknown option $1" >&2; usage >&2; exit 2 ;;
	*) break ;;
	esac
done
[ $# -gt 0 ] || { usage >&2; exit 2; }

if [ -z "$lib" ]; then
	here=$(dirname "$(readlink -f "$0")")
	for c in "$here/libgmem-kvm.so" "$here/../lib/gmem/libgmem-kvm.so" \
		"@LIBDIR@/gmem/libgmem-kvm.so"; do
		if [ -f "$c" ]; then lib=$c; break; fi
	done
fi
[ -n "$lib" ] && [ -f "$lib" ] || {
	echo "gmem-run: libgmem-kvm.so not found (try --lib)" >&2
	exit 127
}
lib=$(readlink -f "$lib")

export GMEM_RUN=1
export LD_PRELOAD="$lib${LD_PRELOAD:+:$LD_PRELOAD}"
exec "$@"
