#!/bin/sh
# SPDX-License-Identifier: MIT
#
# The end of `make bench`: one table for the whole run from the CSV the
# benchmark programs wrote (columns in bench/bench.h), and the scaling
# curves as a PNG when gnuplot is there.
#
# usage: report.sh results.csv scaling.dat results.png
#        report.sh --markdown results.csv   (the table for README.md)

if [ "$1" = "--markdown" ]; then
	awk -F, 'NR == 1 {
		print "| figure | gmem | anchor (same run) | ratio | target | met |"
		print "| --- | --- | --- | --- | --- | --- |"
		next
	}
	{
		anchor = ($5 + 0 == 0 && $6 == "-") ? "-" : sprintf("%.4g %s", $5, $6)
		ratio = ($7 + 0 == 0) ? "-" : sprintf("%.3g", $7)
		printf "| %s | %.4g %s | %s | %s | %s | %s |\n", $2, $3, $4, \
			anchor, ratio, $8, $9
	}' "${2:-bench/results.csv}"
	exit 0
fi

csv=${1:-bench/results.csv}
dat=${2:-bench/results.scaling.dat}
png=${3:-bench/results.png}

awk -F, '
NR == 1 { next }
{
	if ($5 + 0 == 0 && $6 == "-")
		anchor = "-"
	else
		anchor = sprintf("%.4g %s", $5, $6)
	ratio = ($7 + 0 == 0) ? "-" : sprintf("%.3g", $7)
	printf "%-44s %10.4g %-7s %-38s %8s  %-18s %s\n", \
		$2, $3, $4, anchor, ratio, $8, $9
	if ($9 == "yes") met++
	if ($9 == "no") missed++
}
BEGIN {
	printf "%-44s %10s %-7s %-38s %8s  %-18s %s\n", "figure", "gmem", \
		"", "anchor (same run)", "ratio", "target", "met"
}
END {
	printf "\n%d targets met, %d not met (see README, Performance)\n", \
		met, missed
}' "$csv"
# Timings on a shared or virtual machine mean little without this.
echo "load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)" \
	"($(nproc) CPUs)"

if [ -s "$dat" ] && command -v gnuplot > /dev/null 2>&1; then
	gnuplot <<GP && echo "plot: $png"
set terminal pngcairo size 800,500 noenhanced
set output "$png"
set title "gmem scaling: vCPU threads converting and faulting at once (load avg $(cut -d' ' -f1 /proc/loadavg))"
set xlabel "vCPU threads (this machine: $(nproc) CPUs)"
set ylabel "stage-2 faults per second (thousands)"
set y2label "conversions per second (thousands)"
set ytics nomirror
set y2tics
set xtics (1, 2, 4, 8)
set logscale x 2
set xrange [0.8:10]
set yrange [0:*]
set y2range [0:*]
set key top left
set grid
plot "$dat" using 1:(\$2/1000) with linespoints lw 2 title "stage-2 faults/s", \
     "$dat" using 1:(\$3/1000) axes x1y2 with linespoints lw 2 title "conversions/s", \
     "$dat" using 1:(\$4/1000) axes x1y2 with linespoints lw 2 dt 2 \
	title "conversions per CPU-second (flat: no overhead per thread)"
GP
else
	echo "plot: skipped (no gnuplot or no scaling data)"
fi
