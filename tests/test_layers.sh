#!/bin/sh
# The library's layers, lowest first.  A file may include the headers of
# its own layer and of those below it, never of one above: layers call
# down and return result records up (README, "Layout").
#
#   1 base       util uaccess handle, and the public headers (gmem/*.h)
#   2 parts      attr coalesced msr_filter ioapic ioeventfd irq_route irqfd
#                lapic mce x86/*:
#                each knows nothing of VMs or vCPUs
#   3 VM         vm, and what struct gmem_vm holds beside it: memslot,
#                guest_memfd, dirty_log, mmu (they share the VM's locks
#                and state, as KVM's MMU shares struct kvm)
#   4 vCPU       vcpu kvmclock
#   5 API        ioctl stats loader
#
# Usage: test_layers.sh SRC_DIR.  Test 2 runs the check on a copy of the
# tree with an upward include added, so the check itself is checked.
src=$1
echo "TAP version 13"
echo "1..2"

layer() {
	case $1 in
	gmem/* | util | uaccess | handle) echo 1 ;;
	attr | coalesced | msr_filter | ioapic | ioeventfd | irq_route | irqfd | lapic | mce | x86/*) echo 2 ;;
	vm | memslot | guest_memfd | dirty_log | mmu) echo 3 ;;
	vcpu | kvmclock) echo 4 ;;
	ioctl | stats | loader) echo 5 ;;
	*) echo 0 ;;
	esac
}

# Print one line per violation (or unknown file) under directory $1.
check() {
	(cd "$1" && find . -name '*.[ch]' | sed 's|^\./||' | sort) |
		while read -r f; do
			name=${f%.[ch]}
			lf=$(layer "$name")
			if [ "$lf" = 0 ]; then
				echo "$f: not in any layer"
				continue
			fi
			grep -oE '^#include "[a-z0-9_/]+\.h"' "$1/$f" |
				sed 's/^#include "//; s/\.h"$//' |
				while read -r h; do
					lh=$(layer "$h")
					if [ "$lh" = 0 ]; then
						echo "$f: includes $h.h, in no layer"
					elif [ "$lh" -gt "$lf" ]; then
						echo "$f (layer $lf) includes $h.h (layer $lh)"
					fi
				done
		done
}

bad=$(check "$src")
if [ -z "$bad" ]; then
	echo "ok 1 - no source file includes a header of a layer above it"
else
	echo "not ok 1 - no source file includes a header of a layer above it"
	echo "$bad" | sed 's/^/# /'
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cp -r "$src" "$tmp/src"
printf '#include "vcpu.h"\n' >>"$tmp/src/mmu.c"
bad=$(check "$tmp/src")
case $bad in
*"mmu.c (layer 3) includes vcpu.h (layer 4)"*)
	echo "ok 2 - an upward include (mmu.c of vcpu.h) is caught"
	;;
*)
	echo "not ok 2 - an upward include (mmu.c of vcpu.h) is caught"
	;;
esac
