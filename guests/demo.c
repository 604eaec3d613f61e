// SPDX-License-Identifier: MIT
/*
 * The demo of `make run`: a guest that shows gmem's memory model from the
 * inside, under gmemvm.
 *
 *   1. conversions: a 2 MiB buffer goes private, half of it shared and
 *      back, then all of it shared, with the data checked at each step
 *      (what survives, and what reads as zeros because the VMM released
 *      the other side's backing);
 *   2. meanwhile vCPU 1 (if there is one) converts 4 KiB pages of its own
 *      buffer back and forth, checking them too;
 *   3. execute-only memory (with gmemvm --xo): code mapped through the XO
 *      alias runs, and a read of it is a #PF delivered to the guest;
 *   4. hardening: the guest locks its own text no-write with
 *      GMEM_HC_PROTECT, shows that code still runs and that the lock
 *      cannot be converted away, then writes to its text, as an exploit
 *      patching the kernel would: the VMM refuses the write and stops the
 *      guest (with --on-violation=stop, gmemvm's only action).
 *
 * Guest argument 0 (RDI): 1 skips step 4, so the demo ends with DONE(0).
 */
#include <stdbool.h>

#include "guest.h"

#define SZ_1M (1ULL << 20)
#define SZ_2M (2ULL << 20)
#define PAGES(n) ((n) / PAGE_SIZE)

extern char __image_start[];

static volatile uint64_t ap_result; /* 0 running, 1 passed, 2 failed */
static volatile uint64_t ap_trips;

static int64_t map(uint64_t gpa, uint64_t size, bool to_private)
{
	return (int64_t)guest_map_gpa_range(
		gpa, PAGES(size),
		to_private ? KVM_MAP_GPA_RANGE_ENCRYPTED
			   : KVM_MAP_GPA_RANGE_DECRYPTED);
}

static void fill(uint64_t gpa, uint64_t size, uint64_t seed)
{
	volatile uint64_t *p = (volatile uint64_t *)gpa;

	for (uint64_t i = 0; i < size / 8; i += 64)
		p[i] = seed ^ (gpa + i * 8);
}

/* True if every sampled word holds the pattern (or zero, seed 0). */
static bool holds(uint64_t gpa, uint64_t size, uint64_t seed)
{
	volatile uint64_t *p = (volatile uint64_t *)gpa;

	for (uint64_t i = 0; i < size / 8; i += 64)
		if (p[i] != (seed ? seed ^ (gpa + i * 8) : 0))
			return false;
	return true;
}

static const char *yes(bool b)
{
	return b ? "yes" : "NO";
}

static uint64_t align_2m(uint64_t a)
{
	return (a + SZ_2M - 1) & ~(SZ_2M - 1);
}

/* vCPU 1: 4 KiB round trips in the 2 MiB after vCPU 0's buffer. */
void guest_ap_main(uint64_t cpu)
{
	uint64_t base = align_2m(guest_boot->free_start) + SZ_2M;
	bool ok = true;

	if (cpu != 1)
		return;
	for (uint64_t i = 0; i < 128 && ok; i++) {
		uint64_t page = base + (i * 7 % 512) * PAGE_SIZE;

		ok = map(page, PAGE_SIZE, true) == 0 &&
		     holds(page, PAGE_SIZE, 0);
		fill(page, PAGE_SIZE, 0xa5a5a5a5ULL + i);
		ok = ok && holds(page, PAGE_SIZE, 0xa5a5a5a5ULL + i) &&
		     map(page, PAGE_SIZE, false) == 0 &&
		     holds(page, PAGE_SIZE, 0);
		ap_trips = i + 1;
	}
	ap_result = ok ? 1 : 2;
}

static void step_conversions(void)
{
	uint64_t buf = align_2m(guest_boot->free_start);
	int64_t r;

	guest_printf("-- conversions (KVM_HC_MAP_GPA_RANGE), 2 MiB at %#llx\n",
		     (unsigned long long)buf);
	r = map(buf, SZ_2M, true);
	fill(buf, SZ_2M, 0x1111);
	guest_printf("to private: %lld; wrote a pattern; reads back: %s\n",
		     (long long)r, yes(holds(buf, SZ_2M, 0x1111)));
	GUEST_ASSERT(r == 0 && holds(buf, SZ_2M, 0x1111));

	r = map(buf, SZ_1M, false);
	guest_printf("first 1 MiB to shared: %lld; reads zeros: %s; "
		     "private half intact: %s\n",
		     (long long)r, yes(holds(buf, SZ_1M, 0)),
		     yes(holds(buf + SZ_1M, SZ_1M, 0x1111)));
	GUEST_ASSERT(r == 0 && holds(buf, SZ_1M, 0) &&
		     holds(buf + SZ_1M, SZ_1M, 0x1111));
	fill(buf, SZ_1M, 0x2222);

	r = map(buf, SZ_1M, true);
	guest_printf("wrote shared data, back to private: %lld; reads zeros: "
		     "%s (the old private pages were punched out)\n",
		     (long long)r, yes(holds(buf, SZ_1M, 0)));
	GUEST_ASSERT(r == 0 && holds(buf, SZ_1M, 0));

	r = map(buf, SZ_2M, false);
	guest_printf("all 2 MiB to shared: %lld; reads zeros: %s\n",
		     (long long)r, yes(holds(buf, SZ_2M, 0)));
	GUEST_ASSERT(r == 0 && holds(buf, SZ_2M, 0));

	guest_printf("bad requests: unaligned %lld, beyond RAM %lld, "
		     "0 pages %lld\n",
		     (long long)map(buf + 8, PAGE_SIZE, true),
		     (long long)map(guest_boot->mem_size, PAGE_SIZE, true),
		     (long long)guest_map_gpa_range(
			     buf, 0, KVM_MAP_GPA_RANGE_ENCRYPTED));
}

static void step_ap(void)
{
	if (guest_boot->nr_cpus < 2)
		return;
	while (!ap_result)
		asm volatile("pause");
	guest_printf("-- vCPU 1 meanwhile: %llu round trips of a 4 KiB page "
		     "private <-> shared, data checked: %s\n",
		     (unsigned long long)ap_trips,
		     ap_result == 1 ? "ok" : "FAILED");
	GUEST_ASSERT_EQ(ap_result, 1);
}

/* A page for execute-only code: mov $0x600d, %eax; ret. */
static uint8_t xo_code[4096] __aligned(4096);

static void step_xo(void)
{
	uint32_t a, b, c, d;
	uint64_t xo_bit, va = (uint64_t)xo_code;
	int vec;

	cpuid(0x40000000, 0, &a, &b, &c, &d);
	if (a < 0x40000001 || memcmp(&b, "gmem", 4)) {
		guest_printf(
			"-- execute-only memory: not offered (gmemvm --xo)\n");
		return;
	}
	cpuid(0x40000001, 0, &a, &b, &c, &d);
	if (!(a & 1)) {
		guest_printf(
			"-- execute-only memory: not offered (gmemvm --xo)\n");
		return;
	}
	cpuid(0x80000008, 0, &a, &b, &c, &d);
	xo_bit = 1ULL << (a & 0xff);
	xo_code[0] = 0xb8; /* mov $imm32, %eax */
	xo_code[1] = 0x0d;
	xo_code[2] = 0x60;
	xo_code[3] = xo_code[4] = 0;
	xo_code[5] = 0xc3; /* ret */
	/* The PTE bit M, which the guest thinks reserved, selects XO. */
	guest_map_page(va, va | xo_bit, 0);
	guest_printf("-- execute-only memory (XO alias, PTE bit %u)\n",
		     a & 0xff);
	guest_printf("call into the XO page: returns %#x\n",
		     ((uint32_t(*)(void))va)());
	vec = guest_probe_read(xo_code + 0x10);
	guest_printf("read it: vector %d (#PF), error code %#llx, CR2 %#llx: "
		     "code can run but cannot be read\n",
		     vec, (unsigned long long)guest_last_fault.error_code,
		     (unsigned long long)guest_last_fault.cr2);
	GUEST_ASSERT_EQ(vec, VEC_PF);
	GUEST_ASSERT_EQ(guest_last_fault.error_code, PF_P);
	GUEST_ASSERT_EQ(guest_last_fault.cr2, va + 0x10);
	guest_map_page(va, va, PTE_W);
}

static int __attribute__((noinline)) patched(void)
{
	return 42;
}

static void step_lock(void)
{
	uint64_t text = (uint64_t)__image_start;
	uint64_t end = ((uint64_t)patched + PAGE_SIZE) & ~(PAGE_SIZE - 1);
	volatile uint8_t *target = (volatile uint8_t *)patched;
	int64_t r;

	if (end < (uint64_t)guest_main + 1)
		end = ((uint64_t)guest_main + PAGE_SIZE) & ~(PAGE_SIZE - 1);
	guest_printf("-- hardening (GMEM_HC_PROTECT)\n");
	r = (int64_t)guest_protect(text, PAGES(end - text), GMEM_PROTECT_NW);
	guest_printf("lock text %#llx-%#llx no-write: %lld; code still runs: "
		     "%s\n",
		     (unsigned long long)text, (unsigned long long)end - 1,
		     (long long)r, yes(patched() == 42));
	GUEST_ASSERT(r == 0);
	r = map(text, PAGE_SIZE, true);
	guest_printf("convert a locked page to private: %lld (EPERM: locks "
		     "are for good)\n",
		     (long long)r);
	GUEST_ASSERT(r == -1);
	guest_printf("now patching the locked text at %#llx, as an exploit "
		     "would...\n",
		     (unsigned long long)target);
	*target = 0xc3; /* ret */
	guest_printf("the write went through: the lock did not hold!\n");
	GUEST_DONE(3);
}

/* @v with eight decimals, as guest_printf has no %f. */
static const char *fixed8(char buf[32], double v)
{
	uint64_t whole = (uint64_t)v;
	uint64_t frac = (uint64_t)((v - (double)whole) * 1e8 + 0.5);

	snprintf(buf, 32, "%llu.%08llu", (unsigned long long)whole,
		 (unsigned long long)frac);
	return buf;
}

/*
 * Ordinary compiled floating point: SSE2 doubles, as gcc emits them, and
 * long double, which is the x87's 80-bit format.
 */
static void step_fp(void)
{
	char a[32], b[32];
	double pi = 0, r = 1;
	long double e = 1, t = 1;
	volatile long double one_x = 1;
	volatile double one_d = 1;

	for (int k = 0; k < 100000; k++)
		pi += (k & 1 ? -4.0 : 4.0) / (2 * k + 1);
	for (int i = 0; i < 6; i++)
		r = (r + 2 / r) / 2;
	guest_printf("-- floating point (SSE2, as gcc -O2 -march=x86-64-v2 "
		     "compiles C)\n");
	guest_printf("pi by 100000 terms of Leibniz's series: %s; sqrt(2) by "
		     "Newton's method: %s\n",
		     fixed8(a, pi), fixed8(b, r));
	for (int k = 1; k < 25; k++) {
		t /= k;
		e += t;
	}
	guest_printf("long double (x87): e by 25 terms of its series: %s; "
		     "(1 + 2^-60) - 1 is 2^-60: %s (in double: %s)\n",
		     fixed8(a, (double)e),
		     (one_x + 0x1p-60L) - one_x == 0x1p-60L ? "yes" : "no",
		     (one_d + 0x1p-60) - one_d == 0x1p-60 ? "yes" : "no");
}

void guest_main(uint64_t skip_lock, uint64_t arg1)
{
	(void)arg1;
	guest_printf("gmem demo: %llu vCPU%s, %llu MiB of RAM\n",
		     (unsigned long long)guest_boot->nr_cpus,
		     guest_boot->nr_cpus == 1 ? "" : "s",
		     (unsigned long long)(guest_boot->mem_size >> 20));
	step_fp();
	step_conversions();
	step_ap();
	step_xo();
	if (!skip_lock)
		step_lock();
	guest_printf("-- done\n");
}
