/* SPDX-License-Identifier: MIT */
#ifndef GMEM_X86_SSE_GUEST_H
#define GMEM_X86_SSE_GUEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define GS_N 64

struct gs_rec {
	uint64_t a[3];
	uint16_t b[8];
	uint8_t tag[8];
};

struct gs_lanes {
	int32_t x[GS_N], y[GS_N], sum[GS_N], min[GS_N], max[GS_N];
	uint8_t bytes[GS_N];
	uint64_t wide[GS_N];
};

/* Floating point: inputs x, y, a, b, i; the rest are results. */
struct gs_fp {
	double x[GS_N], y[GS_N];
	float a[GS_N], b[GS_N], fma[GS_N];
	int32_t i[GS_N];
	uint64_t u[GS_N];
	double sum, dot_d, udsum, quot[GS_N], conv[GS_N];
	float dot, fmin, fmax;
	int64_t trunc[GS_N];
	int32_t itrunc[GS_N];
	uint32_t below, nan_seen;
};

size_t gs_format(char *buf, size_t n, const char *fmt, ...);
void gs_records(struct gs_rec *out, const struct gs_rec *in, unsigned n);
void gs_lanes(struct gs_lanes *l);
void gs_fp(struct gs_fp *f);

#endif /* GMEM_X86_SSE_GUEST_H */
