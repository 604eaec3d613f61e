/* SPDX-License-Identifier: MIT */
/*
 * What every `make bench` program shares: a clock, medians, progress on
 * stderr, and the result rows.
 *
 * A row is one figure: gmem's value, an anchor measured in the same run
 * (or the target itself where nothing comparable exists), their ratio,
 * the target as text and whether it is met.  Rows go to stdout as they
 * come and to the CSV named on the command line (default
 * bench/results.csv), whose columns are
 *
 *	family,figure,gmem,unit,anchor,anchor_name,ratio,target,met
 *
 * with met = yes, no or - (no target).  Commas in text become ';'.
 * bench/report.sh prints the whole run's table from it.
 */
#ifndef GMEM_BENCH_H
#define GMEM_BENCH_H

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#define KiB 1024ULL
#define MiB (1024 * KiB)
#define GiB (1024 * MiB)
#define TiB (1024 * GiB)

enum { MET_NA = -1, MET_NO = 0, MET_YES = 1 };

static FILE *bench_csv;
static const char *bench_family = "?";

static inline double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static inline void bench_open(const char *family, int argc, char **argv)
{
	bench_family = family;
	bench_csv = fopen(argc > 1 ? argv[1] : "bench/results.csv", "a");
	if (!bench_csv)
		perror("results csv");
	setvbuf(stdout, NULL, _IOLBF, 0);
}

static inline void bench_close(void)
{
	if (bench_csv)
		fclose(bench_csv);
}

/* Progress of a long benchmark, on stderr so the table stays clean. */
static inline void __attribute__((format(printf, 1, 2)))
progress(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "[bench %s] ", bench_family);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

/* Copy @s into @buf with the CSV's separator made harmless. */
static inline const char *csv_field(char *buf, size_t len, const char *s)
{
	size_t i;

	for (i = 0; s[i] && i + 1 < len; i++)
		buf[i] = s[i] == ',' ? ';' : s[i];
	buf[i] = '\0';
	return buf;
}

static inline void row(const char *figure, double gmem, const char *unit,
		       double anchor, const char *anchor_name,
		       const char *target, int met)
{
	double ratio = anchor > 0 ? gmem / anchor : 0;
	const char *m = met == MET_YES ? "yes" : met == MET_NO ? "no" : "-";
	char f[96], an[64], tg[64];

	printf("%-44s %12.4g %-6s %12.4g %-26s %9.4g  %-18s %s\n", figure, gmem,
	       unit, anchor, anchor_name, ratio, target, m);
	if (bench_csv) {
		fprintf(bench_csv, "%s,%s,%.6g,%s,%.6g,%s,%.6g,%s,%s\n",
			bench_family, csv_field(f, sizeof(f), figure), gmem,
			unit, anchor, csv_field(an, sizeof(an), anchor_name),
			ratio, csv_field(tg, sizeof(tg), target), m);
		fflush(bench_csv);
	}
}

static inline int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

/* Median of @n samples (sorts them). */
static inline double median(double *v, int n)
{
	qsort(v, n, sizeof(*v), cmp_double);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static inline bool bench_quick(void)
{
	return getenv("GMEM_BENCH_QUICK") != NULL;
}

#endif /* GMEM_BENCH_H */
