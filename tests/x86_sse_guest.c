// SPDX-License-Identifier: MIT
/*
 * Guest code for test_x86_gcc built as the KVM selftests build theirs:
 * gcc -O2 -march=x86-64-v2, without -mgeneral-regs-only, so that gcc
 * uses SSE where it likes: the varargs prologue saving XMM0-7, struct
 * copies and clears, vectorised loops over fixed-size arrays, and
 * floating point: sums, dot products, conversions and compares.
 */
#include <stdarg.h>

#include "x86_sse_guest.h"

/* A small vsnprintf, in the manner of the selftests' guest_vsnprintf. */
static size_t put_num(char *buf, size_t n, size_t at, uint64_t v, unsigned base,
		      bool neg)
{
	char tmp[24];
	unsigned k = 0;

	do {
		tmp[k++] = "0123456789abcdef"[v % base];
		v /= base;
	} while (v);
	if (neg)
		tmp[k++] = '-';
	while (k--) {
		if (at + 1 < n)
			buf[at] = tmp[k];
		at++;
	}
	return at;
}

size_t gs_format(char *buf, size_t n, const char *fmt, ...)
{
	va_list ap;
	size_t at = 0;

	va_start(ap, fmt);
	for (; *fmt; fmt++) {
		if (*fmt != '%' || !fmt[1]) {
			if (at + 1 < n)
				buf[at] = *fmt;
			at++;
			continue;
		}
		switch (*++fmt) {
		case 'd': {
			long v = va_arg(ap, long);

			at = put_num(buf, n, at,
				     v < 0 ? -(uint64_t)v : (uint64_t)v, 10,
				     v < 0);
			break;
		}
		case 'x':
			at = put_num(buf, n, at, va_arg(ap, uint64_t), 16,
				     false);
			break;
		case 's':
			for (const char *s = va_arg(ap, const char *); *s; s++)
				if (at + 1 < n)
					buf[at++] = *s;
				else
					at++;
			break;
		default:
			if (at + 1 < n)
				buf[at] = *fmt;
			at++;
			break;
		}
	}
	va_end(ap);
	if (n)
		buf[at < n ? at : n - 1] = 0;
	return at;
}

/* Struct copies, clears and field updates: 16-byte moves. */
void gs_records(struct gs_rec *out, const struct gs_rec *in, unsigned n)
{
	for (unsigned k = 0; k < n; k++) {
		struct gs_rec r = in[k];

		if (r.a[0] & 1)
			r = (struct gs_rec){0};
		r.a[1] += r.a[2];
		r.b[3] ^= (uint16_t)k;
		out[k] = r;
	}
}

/* Loops over fixed-size arrays: what -O2's cheap vectoriser takes. */
void gs_lanes(struct gs_lanes *l)
{
	for (unsigned k = 0; k < GS_N; k++) {
		l->sum[k] = l->x[k] + l->y[k];
		l->min[k] = l->x[k] < l->y[k] ? l->x[k] : l->y[k];
		l->max[k] = l->x[k] > l->y[k] ? l->x[k] : l->y[k];
		l->bytes[k] =
			l->bytes[k] > 0x40 ? l->bytes[k] - 0x20 : l->bytes[k];
		l->wide[k] = (uint64_t)(uint32_t)l->x[k] * (uint32_t)l->y[k];
	}
}

/*
 * Doubles and floats the way C code uses them: a sum, dot products
 * (scalar and vectorised), divisions, conversions both ways (int, int64,
 * uint64, float <-> double) and compares, NaN included.
 */
void gs_fp(struct gs_fp *f)
{
	double sum = 0, dd = 0, ud = 0;
	float dot = 0, mn = f->a[0], mx = f->a[0];
	uint32_t below = 0, nan = 0;

	for (unsigned k = 0; k < GS_N; k++) {
		sum += f->x[k];
		dd += f->x[k] * f->y[k];
		dot += f->a[k] * f->b[k];
		mn = f->a[k] < mn ? f->a[k] : mn;
		mx = f->a[k] > mx ? f->a[k] : mx;
		below += f->x[k] < f->y[k];
		nan += f->x[k] != f->x[k];
		ud += (double)f->u[k];
		f->quot[k] = f->y[k] != 0 ? f->x[k] / f->y[k] : -0.0;
		f->conv[k] = (double)f->i[k] * 0.5 + (float)f->x[k];
		f->trunc[k] = f->x[k] > -9e18 && f->x[k] < 9e18
				      ? (int64_t)f->x[k]
				      : 0;
		f->itrunc[k] = f->a[k] > -2e9f && f->a[k] < 2e9f
				       ? (int32_t)f->a[k]
				       : 0;
	}
	for (unsigned k = 0; k < GS_N; k++)
		f->fma[k] = f->a[k] * f->b[k] + (float)f->i[k];
	f->sum = sum;
	f->dot_d = dd;
	f->udsum = ud;
	f->dot = dot;
	f->fmin = mn;
	f->fmax = mx;
	f->below = below;
	f->nan_seen = nan;
}
