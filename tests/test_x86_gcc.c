// SPDX-License-Identifier: MIT
/*
 * gcc-compiled C in the guest: the functions of x86_gcc_guest.c (built
 * with the guest flags: -O2 -ffreestanding -march=x86-64-v2
 * -mno-red-zone) and of x86_sse_guest.c (-O2 -march=x86-64-v2, as the
 * KVM selftests' guest code, with floating point) run natively and in
 * the interpreter, and must agree.
 * The guest sees this executable's loaded segments at their host
 * addresses (copied into guest RAM), so calls into libgcc helpers and
 * jump tables in .rodata work unchanged.
 */
#include <link.h>

#include "tap.h"
#include "x86_gcc_guest.h"
#include "x86_harness.h"
#include "x86_sse_guest.h"

#define MEM_SIZE (96ull << 20)
#define TABLES 0x200000ull /* page-table pages, bump allocated */
#define BUF 0x1000000ull   /* argument buffers */
#define IMAGE 0x2000000ull /* copies of the executable's segments */

static struct hvm vm;
static uint64_t next_table = TABLES, next_image = IMAGE;

/* Map the 4 KiB page at @lin to @gpa, building tables as needed. */
static void map4k(uint64_t lin, uint64_t gpa)
{
	uint64_t table = H_PML4;

	for (int lvl = 4; lvl > 1; lvl--) {
		uint64_t *e = hvm_q(
			&vm, table + ((lin >> (12 + 9 * (lvl - 1))) & 511) * 8);

		if (!(*e & 1)) {
			REQUIRE(next_table < BUF);
			*e = next_table | 7;
			next_table += 4096;
		}
		REQUIRE(!(*e & 0x80)); /* not inside a large page */
		table = *e & 0x000ffffffffff000ull;
	}
	*hvm_q(&vm, table + ((lin >> 12) & 511) * 8) = gpa | 7;
}

/* Raw copy of our own image: sanitizer redzones are data here. */
__attribute__((no_sanitize_address)) static void raw_copy(uint8_t *d,
							  const uint8_t *s)
{
	for (unsigned k = 0; k < 4096; k++)
		((volatile uint8_t *)d)[k] = ((const volatile uint8_t *)s)[k];
}

static int copy_segments(struct dl_phdr_info *info, size_t size, void *arg)
{
	(void)size;
	(void)arg;
	for (unsigned k = 0; k < info->dlpi_phnum; k++) {
		const ElfW(Phdr) *ph = &info->dlpi_phdr[k];
		uint64_t start, end;

		if (ph->p_type != PT_LOAD)
			continue;
		start = (info->dlpi_addr + ph->p_vaddr) & ~0xfffull;
		end = (info->dlpi_addr + ph->p_vaddr + ph->p_memsz + 0xfff) &
		      ~0xfffull;
		REQUIRE(start >= (1ull << 30));
		for (uint64_t a = start; a < end; a += 4096) {
			REQUIRE(next_image + 4096 <= MEM_SIZE);
			raw_copy(vm.mem + next_image, (const uint8_t *)a);
			map4k(a, next_image);
			next_image += 4096;
		}
	}
	return 1; /* the main program only */
}

/*
 * Call @fn in the guest with up to 6 arguments; returns RAX.  AL = 8 as
 * for a varargs call that may pass vector registers: the prologue then
 * saves XMM0-7.
 */
static uint64_t gcall6(void *fn, uint64_t a0, uint64_t a1, uint64_t a2,
		       uint64_t a3, uint64_t a4, uint64_t a5)
{
	struct kvm_regs r;
	int st;

	memset(&r, 0, sizeof(r));
	r.rax = 8;
	r.rdi = a0;
	r.rsi = a1;
	r.rdx = a2;
	r.rcx = a3;
	r.r8 = a4;
	r.r9 = a5;
	r.rsp = H_STACK - 8;
	memcpy(vm.mem + r.rsp, &(uint64_t){H_CODE}, 8); /* return */
	r.rip = (uint64_t)fn;
	r.rflags = 0x202;
	x86_set_regs(&vm.cpu, &r);
	st = hvm_run(&vm, 1ull << 32);
	if (st != X86_STOP_VMCALL || vm.cpu.rip != H_CODE + 3) {
		printf("# stop %d vector %d rip %#llx\n", st, hvm_vector(&vm),
		       (unsigned long long)vm.cpu.rip);
		return 0xdeadbeef;
	}
	return vm.cpu.gpr[X86_RAX];
}

static uint64_t gcall(void *fn, uint64_t a0, uint64_t a1, uint64_t a2,
		      uint64_t a3)
{
	return gcall6(fn, a0, a1, a2, a3, 0, 0);
}

static uint64_t seed = 12345;

static uint64_t rnd(void)
{
	seed = seed * 6364136223846793005ull + 1442695040888963407ull;
	return seed >> 11;
}

int main(void)
{
	static uint8_t bytes[65536];
	static int64_t arr[5000];
	static char str[256], out[256];
	static uint8_t pool[GG_NODE_SIZE * 300];
	uint64_t g;

	tap_plan(11, 120);
	REQUIRE(hvm_init(&vm, MEM_SIZE) == 0);
	/* SSE on, as Linux and the KVM selftests' library run guests. */
	struct kvm_sregs sr;

	x86_get_sregs(&vm.cpu, &sr);
	sr.cr4 |= X86_CR4_OSFXSR | X86_CR4_OSXMMEXCPT;
	x86_set_sregs(&vm.cpu, &sr);
	memcpy(vm.mem + H_CODE, "\x0f\x01\xc1", 3); /* vmcall */
	dl_iterate_phdr(copy_segments, NULL);
	hvm_set_cpl(&vm, 3);

	for (unsigned k = 0; k < sizeof(bytes); k++)
		bytes[k] = rnd();
	memcpy(vm.mem + BUF, bytes, sizeof(bytes));
	g = gcall(gg_crc32, BUF, sizeof(bytes), 0, 0);
	CHECK_EQ(g, gg_crc32(bytes, sizeof(bytes)));
	tap_result("crc32 (loops, shifts, masks)");

	for (unsigned k = 0; k < 5000; k++)
		arr[k] = (int64_t)rnd() - (int64_t)rnd();
	memcpy(vm.mem + BUF, arr, sizeof(arr));
	gcall(gg_qsort, BUF, 0, 4999, 0);
	gg_qsort(arr, 0, 4999);
	CHECK(memcmp(vm.mem + BUF, arr, sizeof(arr)) == 0);
	tap_result("quicksort (recursion, signed compares)");

	g = gcall(gg_sieve, BUF, 60000, 0, 0);
	CHECK_EQ(g, gg_sieve(bytes, 60000));
	CHECK(memcmp(vm.mem + BUF, bytes, 60000) == 0);
	tap_result("sieve (byte stores, nested loops)");

	bool ok = true;

	for (unsigned k = 0; k < 300 && ok; k++) {
		uint64_t a = rnd() << (k % 13), b = rnd() >> (k % 7);

		if (k % 5 == 0)
			b = -b;
		g = gcall(gg_mix, a, b, 0, 0);
		if (g != gg_mix(a, b)) {
			printf("# mix(%#llx, %#llx): %#llx vs %#llx\n",
			       (unsigned long long)a, (unsigned long long)b,
			       (unsigned long long)g,
			       (unsigned long long)gg_mix(a, b));
			ok = false;
		}
	}
	CHECK(ok);
	tap_result("128-bit mul/div (libgcc), builtins, jump table");

	CHECK_EQ(gcall(gg_fib, 25, 0, 0, 0), gg_fib(25));
	tap_result("recursive fib(25)");

	strcpy(str, "the quick brown fox jumps over the lazy dog 0123");
	memcpy(vm.mem + BUF, str, sizeof(str));
	g = gcall(gg_strops, BUF + 1024, BUF, sizeof(str), 0);
	CHECK_EQ(g, gg_strops(out, str, sizeof(str)));
	CHECK(strcmp((char *)vm.mem + BUF + 1024, out) == 0);
	tap_result("string handling");

	memset(vm.mem + BUF, 0, sizeof(pool));
	g = gcall(gg_list, BUF, 300, 77, 0);
	CHECK_EQ(g, gg_list((struct gg_node *)pool, 300, 77));
	tap_result("linked list with mixed-width fields");

	/* SSE-compiled code: varargs, struct copies, vector loops. */
	static const char fmt[] = "[%d|%x|%s|100%%]";
	static char got[64], want[64];

	memcpy(vm.mem + BUF, fmt, sizeof(fmt));
	strcpy((char *)vm.mem + BUF + 512, "xmm");
	g = gcall6(gs_format, BUF + 1024, sizeof(got), BUF, -12345, 0xdeadbeef,
		   BUF + 512);
	CHECK_EQ(g, gs_format(want, sizeof(want), fmt, -12345L, 0xdeadbeefull,
			      "xmm"));
	memcpy(got, vm.mem + BUF + 1024, sizeof(got));
	CHECK(strcmp(got, want) == 0);
	tap_result("SSE: varargs formatting (XMM0-7 saved by the prologue)");

	static struct gs_rec recs[100], recs_out[100];

	for (unsigned k = 0; k < sizeof(recs); k++)
		((uint8_t *)recs)[k] = rnd();
	memcpy(vm.mem + BUF, recs, sizeof(recs));
	gcall(gs_records, BUF + sizeof(recs), BUF, 100, 0);
	gs_records(recs_out, recs, 100);
	CHECK(memcmp(vm.mem + BUF + sizeof(recs), recs_out, sizeof(recs_out)) ==
	      0);
	tap_result("SSE: struct copies and clears");

	static struct gs_lanes lanes;

	for (unsigned k = 0; k < sizeof(lanes); k++)
		((uint8_t *)&lanes)[k] = rnd();
	memcpy(vm.mem + BUF, &lanes, sizeof(lanes));
	gcall(gs_lanes, BUF, 0, 0, 0);
	gs_lanes(&lanes);
	CHECK(memcmp(vm.mem + BUF, &lanes, sizeof(lanes)) == 0);
	tap_result("SSE: vectorised loops (add, min, max, bytes, 64-bit mul)");

	static struct gs_fp fp;

	for (unsigned k = 0; k < GS_N; k++) {
		fp.x[k] = (double)(int64_t)rnd() / (double)(rnd() | 1);
		fp.y[k] = k % 7 ? (double)(int32_t)rnd() / 1024.0 : 0.0;
		fp.a[k] = (float)(int32_t)rnd() / 65536.0f;
		fp.b[k] = (float)(int16_t)rnd() / 256.0f;
		fp.i[k] = rnd();
		fp.u[k] = rnd();
	}
	fp.x[5] = __builtin_nan("");
	fp.x[9] = -0.0;
	fp.x[11] = 1e-310; /* denormal */
	memcpy(vm.mem + BUF, &fp, sizeof(fp));
	gcall(gs_fp, BUF, 0, 0, 0);
	gs_fp(&fp);
	CHECK(memcmp(vm.mem + BUF, &fp, sizeof(fp)) == 0);
	tap_result("SSE: floating point (sums, dot products, divisions, "
		   "conversions, compares)");

	hvm_destroy(&vm);
	return tap_done();
}
