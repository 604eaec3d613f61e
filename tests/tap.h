/* SPDX-License-Identifier: MIT */
/*
 * Minimal TAP producer for the test programs, in the manner of the kernel's
 * kselftest.h: one verdict per case, file:line on failure, skips for missing
 * capabilities, and a per-test timeout (alarm) so that a hang fails instead
 * of stalling prove.
 */
#ifndef GMEM_TAP_H
#define GMEM_TAP_H

#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdbool.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int tap_planned, tap_run, tap_failed, tap_case_failed;

static void tap_alarm(int sig)
{
	(void)sig;
	static const char msg[] = "Bail out! timeout\n";
	(void)!write(1, msg, sizeof(msg) - 1);
	_exit(1);
}

/* Plan @n cases and give the whole program @timeout_s seconds. */
static inline void tap_plan(int n, unsigned timeout_s)
{
	tap_planned = n;
	setvbuf(stdout, NULL, _IOLBF, 0);
	printf("TAP version 13\n1..%d\n", n);
	signal(SIGALRM, tap_alarm);
	alarm(timeout_s);
}

static inline void tap_diag(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	printf("# ");
	vprintf(fmt, ap);
	printf("\n");
	va_end(ap);
}

/* Record the verdict of the current case; begin a new one. */
static inline void tap_result(const char *name)
{
	tap_run++;
	if (tap_case_failed)
		tap_failed++;
	printf("%s %d - %s\n", tap_case_failed ? "not ok" : "ok", tap_run,
	       name);
	tap_case_failed = 0;
}

static inline void tap_skip(const char *name, const char *why)
{
	tap_run++;
	printf("ok %d - %s # SKIP %s\n", tap_run, name, why);
}

static inline int tap_done(void)
{
	if (tap_run != tap_planned)
		printf("# planned %d cases, ran %d\n", tap_planned, tap_run);
	return (tap_failed || tap_run != tap_planned) ? 1 : 0;
}

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

/* Assertions mark the current case failed and go on. */
#define CHECK(cond)                                                     \
	do {                                                            \
		if (!(cond)) {                                          \
			tap_case_failed = 1;                            \
			printf("# %s:%d: CHECK(%s) failed\n", __FILE__, \
			       __LINE__, #cond);                        \
		}                                                       \
	} while (0)

#define CHECK_EQ(a, b)                                                       \
	do {                                                                 \
		long long _a = (long long)(a), _b = (long long)(b);          \
		if (_a != _b) {                                              \
			tap_case_failed = 1;                                 \
			printf("# %s:%d: %s == %lld, expected %s == %lld\n", \
			       __FILE__, __LINE__, #a, _a, #b, _b);          \
		}                                                            \
	} while (0)

/* For the façade: the call returns -1 with errno == e. */
#define CHECK_ERRNO(call, e)                                              \
	do {                                                              \
		errno = 0;                                                \
		long _r = (long)(call);                                   \
		if (_r != -1 || errno != (e)) {                           \
			tap_case_failed = 1;                              \
			printf("# %s:%d: %s returned %ld errno %d (%s), " \
			       "expected -1 errno %d (%s)\n",             \
			       __FILE__, __LINE__, #call, _r, errno,      \
			       strerror(errno), (e), strerror(e));        \
		}                                                         \
	} while (0)

/* Abort the whole program: state is too broken to go on. */
#define REQUIRE(cond)                                                       \
	do {                                                                \
		if (!(cond)) {                                              \
			printf("Bail out! %s:%d: %s\n", __FILE__, __LINE__, \
			       #cond);                                      \
			exit(1);                                            \
		}                                                           \
	} while (0)

#endif /* GMEM_TAP_H */
