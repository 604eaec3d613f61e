#!/bin/sh
# The drop-in's soak: unmodified KVM programs (the 6.12 selftests' stress
# tests) run in parallel, each again and again, with a sanitizer-built
# libgmem-kvm.so preloaded, for a fixed time.  One TAP line per program:
# how many runs, and ok only if every run exited 0 with no sanitizer
# report.  A run still going when the time is up finishes first.
#
# usage: soak.sh NAME DIR SECONDS PRELOAD
#   NAME     asan or tsan (for the messages and the logs' names)
#   DIR      the selftests' build directory
#   PRELOAD  the LD_PRELOAD list (sanitizer runtime first, then the
#            drop-in)
set -u

name=${1:?usage: soak.sh NAME DIR SECONDS PRELOAD}
dir=${2:?usage: soak.sh NAME DIR SECONDS PRELOAD}
seconds=${3:?usage: soak.sh NAME DIR SECONDS PRELOAD}
preload=${4:?usage: soak.sh NAME DIR SECONDS PRELOAD}
logs=$dir/logs/soak-$name
mkdir -p "$logs" || exit 1

# The programs: memslots changing under writing vCPUs, every page
# faulted by several vCPUs, private<->shared conversions from the guest,
# memslot moves under a running vCPU, and dirty logging (bitmaps and
# rings, with signal kicks) while a vCPU writes.
programs='memslot_modification_stress_test -v 2 -b 64M -i 20
demand_paging_test -v 2 -b 64M
x86_64/private_mem_conversions_test -n 2
set_memory_region_test
dirty_log_test -i 4
x86_64/xapic_ipi_test -s 1'

# Sanitizer reports fail the run: ASan exits non-zero by itself, TSan is
# told to.  Leaks are the programs' own business (kvm_util frees little
# at exit), so LeakSanitizer stays off.
export ASAN_OPTIONS=detect_leaks=0:abort_on_error=0
export TSAN_OPTIONS=halt_on_error=1:exitcode=66
export UBSAN_OPTIONS=halt_on_error=1

# loop INDEX PROGRAM ARGS: run until the deadline; "runs fails" in a file.
loop() {
	i=$1
	shift
	end=$(($(date +%s) + seconds))
	runs=0
	fails=0
	while [ "$(date +%s)" -lt "$end" ]; do
		if LD_PRELOAD=$preload "$dir/$@" >"$logs/$i.log" 2>&1; then
			:
		else
			fails=$((fails + 1))
			cp "$logs/$i.log" "$logs/$i.fail.log"
		fi
		runs=$((runs + 1))
	done
	echo "$runs $fails" >"$logs/$i.count"
}

n=$(echo "$programs" | wc -l)
echo "1..$n"
echo "$programs" | {
	i=0
	while read -r line; do
		i=$((i + 1))
		# shellcheck disable=SC2086 # the arguments are split on purpose
		loop "$i" $line &
	done
	wait
}

i=0
echo "$programs" | while read -r line; do
	i=$((i + 1))
	read -r runs fails <"$logs/$i.count"
	if [ "$runs" -gt 0 ] && [ "$fails" -eq 0 ]; then
		echo "ok $i - $name: $line: $runs runs in ${seconds}s"
	else
		echo "not ok $i - $name: $line: $fails of $runs runs failed"
		[ -f "$logs/$i.fail.log" ] &&
			tail -n 20 "$logs/$i.fail.log" | sed 's/^/#   /'
	fi
done
