#!/bin/sh
# Run the KVM selftests of LIST (see tests/selftests/list for its format),
# built in DIR, each under $GMEM_RUN with a timeout, and print one TAP line
# per test for prove:
#
#   exit 0             ok                       (a 'skip' entry: not ok)
#   (an 'xfail' entry: ok/not ok # TODO reason, never a failure)
#   exit 4 (KSFT_SKIP) ok # SKIP reason         (a 'pass' entry: not ok)
#   anything else      not ok, with the last lines of the test's output
#
# usage: run.sh LIST DIR
# environment:
#   GMEM_RUN           the launcher (required): GMEM_RUN PROGRAM ARGS
#   SELFTESTS_TIMEOUT  seconds per test (default 120)
#   SELFTESTS_FILTER   run only the entries whose line matches this
#                      grep -E pattern
#   SELFTESTS_LOGS     where each test's output goes (default DIR/logs)
set -u
set -f # the arguments in LIST are split on blanks, never globbed

list=${1:?usage: run.sh LIST DIR}
dir=${2:?usage: run.sh LIST DIR}
timeout=${SELFTESTS_TIMEOUT:-120}
filter=${SELFTESTS_FILTER:-}
logs=${SELFTESTS_LOGS:-$dir/logs}
tail_lines=20

# The entries: comments and blank lines dropped, the filter applied.
entries() {
	sed -e '/^[[:space:]]*#/d' -e '/^[[:space:]]*$/d' "$list" |
		if [ -n "$filter" ]; then grep -E -e "$filter"; else cat; fi
}

n=$(entries | wc -l)
echo "1..$n"
if [ -z "${GMEM_RUN:-}" ] || [ ! -x "$GMEM_RUN" ]; then
	echo "Bail out! no launcher: GMEM_RUN='${GMEM_RUN:-}' is not an" \
		"executable (make dropin builds it)"
	exit 1
fi
mkdir -p "$logs" || exit 1
set +f
rm -f "$logs"/*.log # the last run's
set -f

# diag FILE: its last lines as TAP diagnostics.
diag() {
	tail -n "$tail_lines" "$1" | sed 's/^/#   /'
}

# 'intel' entries: 'pass' on an Intel host, 'skip' elsewhere.
if grep -q '^vendor_id.*GenuineIntel' /proc/cpuinfo 2>/dev/null; then
	intel_is=pass
else
	intel_is=skip
fi

i=0
entries | {
	while read -r expect bin rest; do
		i=$((i + 1))
		case $rest in
		*'#'*)
			args=${rest%%#*}
			reason=${rest#*#}
			;;
		*)
			args=$rest
			reason=
			;;
		esac
		# Blanks trimmed and squeezed (set -f: no globbing).
		# shellcheck disable=SC2086
		set -- $args
		args=$*
		# shellcheck disable=SC2086
		set -- $reason
		reason=$*
		name="$bin${args:+ $args}"
		log="$logs/$(printf %02d $i)-$(basename "$bin").log"

		case $expect in
		pass | skip | xfail | intel) ;;
		*)
			echo "not ok $i - $name"
			echo "# $list: '$expect' is not 'pass', 'skip', 'xfail'" \
				"or 'intel'"
			continue
			;;
		esac
		if [ "$expect" != pass ] && [ -z "$reason" ]; then
			echo "not ok $i - $name"
			echo "# $list: '$expect' needs its reason after '#'"
			continue
		fi
		[ "$expect" = intel ] && expect=$intel_is
		if [ ! -x "$dir/$bin" ]; then
			echo "not ok $i - $name"
			echo "# $dir/$bin was not built"
			continue
		fi

		start=$(date +%s)
		# shellcheck disable=SC2086 # $args is split on purpose
		timeout -k 10 "$timeout" "$GMEM_RUN" "$dir/$bin" $args \
			</dev/null >"$log" 2>&1
		status=$?
		secs=$(($(date +%s) - start))
		# What the test itself said when it skipped (kselftest's
		# "1..0 # SKIP ..." or "ok N ... # SKIP ...").
		said=$(grep -E '# SKIP' "$log" | tail -n 1 |
			sed -e 's/.*# SKIP *//' -e 's/^- *//')

		case $expect:$status in
		pass:0)
			echo "ok $i - $name ($secs s)"
			;;
		xfail:0)
			# TAP TODO: prove reports it as unexpectedly passing.
			echo "ok $i - $name ($secs s) # TODO $reason"
			;;
		xfail:*)
			echo "not ok $i - $name ($secs s) # TODO $reason"
			diag "$log"
			;;
		skip:4)
			echo "ok $i - $name # SKIP $reason${said:+ (the test: $said)}"
			;;
		pass:4)
			echo "not ok $i - $name ($secs s)"
			echo "# skipped (exit status 4), but it must pass${said:+: $said}"
			diag "$log"
			;;
		skip:0)
			echo "not ok $i - $name ($secs s)"
			echo "# passed, but $list lists it as an expected skip" \
				"($reason): update the list"
			;;
		*:124)
			echo "not ok $i - $name ($secs s)"
			echo "# timed out after $timeout s; its last output:"
			diag "$log"
			;;
		*:137)
			echo "not ok $i - $name ($secs s)"
			if [ "$secs" -ge "$timeout" ]; then
				echo "# timed out after $timeout s (and ignored" \
					"SIGTERM); its last output:"
			else
				echo "# killed by SIGKILL (out of memory?); its last output:"
			fi
			diag "$log"
			;;
		*)
			echo "not ok $i - $name ($secs s)"
			# 254 is a failed TEST_ASSERT's exit, not a signal.
			if [ "$status" -gt 128 ] && [ "$status" -le 192 ]; then
				echo "# killed by signal $((status - 128)); its last output:"
			else
				echo "# exit status $status; its last output:"
			fi
			diag "$log"
			;;
		esac
	done
}
