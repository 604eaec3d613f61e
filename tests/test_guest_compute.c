// SPDX-License-Identifier: MIT
/*
 * Compute guests: ordinary -O2 code (loops, tables, shifts, rotates,
 * 64-bit multiply and divide, indirect calls, switch jump tables) whose
 * results the guest checks itself against known answers.  Each check is
 * one GUEST_SYNC(n) step so the host reports which one failed.
 */
#include <stdint.h>

/* What the bytecode program computes, in C, for both halves. */
static int64_t reference_sum(int64_t n)
{
	int64_t sum = 0;

	for (int64_t i = 0; i < n; i++) {
		int64_t x = i, steps = 0;

		while (x > 1) {
			x = (x & 1) ? 3 * x + 1 : x / 2;
			steps++;
		}
		sum += (i * i) % 7 + steps;
	}
	return sum;
}

#ifdef GUEST

#include "guest.h"

/* ---- sorting ----------------------------------------------------------- */

static uint64_t rng_state = 88172645463325252ULL;

static uint64_t xorshift64(void)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 7;
	rng_state ^= rng_state << 17;
	return rng_state;
}

static void insertion_sort(int64_t *a, int n)
{
	for (int i = 1; i < n; i++) {
		int64_t v = a[i];
		int j = i - 1;

		while (j >= 0 && a[j] > v) {
			a[j + 1] = a[j];
			j--;
		}
		a[j + 1] = v;
	}
}

static void quicksort(int64_t *a, int lo, int hi)
{
	while (lo < hi) {
		int64_t pivot = a[lo + (hi - lo) / 2];
		int i = lo, j = hi;

		while (i <= j) {
			while (a[i] < pivot)
				i++;
			while (a[j] > pivot)
				j--;
			if (i <= j) {
				int64_t t = a[i];

				a[i++] = a[j];
				a[j--] = t;
			}
		}
		/* Recurse into the smaller half to bound the stack. */
		if (j - lo < hi - i) {
			quicksort(a, lo, j);
			lo = i;
		} else {
			quicksort(a, i, hi);
			hi = j;
		}
	}
}

#define NSORT 2000
static int64_t sort_a[NSORT], sort_b[NSORT];

static void test_sort(void)
{
	uint64_t sum_before = 0, sum_after = 0;

	for (int i = 0; i < NSORT; i++) {
		sort_a[i] = (int64_t)xorshift64() >> (i % 40);
		sort_b[i] = sort_a[i];
		sum_before += (uint64_t)sort_a[i];
	}
	quicksort(sort_a, 0, NSORT - 1);
	insertion_sort(sort_b, NSORT);
	for (int i = 0; i < NSORT; i++) {
		sum_after += (uint64_t)sort_a[i];
		if (i)
			GUEST_ASSERT(sort_a[i - 1] <= sort_a[i]);
		GUEST_ASSERT_EQ(sort_a[i], sort_b[i]);
	}
	GUEST_ASSERT_EQ(sum_before, sum_after);
}

/* ---- CRC-32 (IEEE 802.3, reflected, poly 0xEDB88320) -------------------- */

static uint32_t crc_table[256];

static void crc32_init(void)
{
	for (uint32_t i = 0; i < 256; i++) {
		uint32_t c = i;

		for (int k = 0; k < 8; k++)
			c = (c & 1) ? 0xedb88320U ^ (c >> 1) : c >> 1;
		crc_table[i] = c;
	}
}

static uint32_t crc32(const void *data, size_t n)
{
	const uint8_t *p = data;
	uint32_t c = 0xffffffffU;

	while (n--)
		c = crc_table[(c ^ *p++) & 0xff] ^ (c >> 8);
	return c ^ 0xffffffffU;
}

/* Bitwise version: no table, different instruction mix. */
static uint32_t crc32_bitwise(const void *data, size_t n)
{
	const uint8_t *p = data;
	uint32_t c = 0xffffffffU;

	while (n--) {
		c ^= *p++;
		for (int k = 0; k < 8; k++)
			c = (c >> 1) ^ (0xedb88320U & -(c & 1));
	}
	return ~c;
}

static void test_crc32(void)
{
	static const char check[] = "123456789";
	static uint8_t big[4096];

	crc32_init();
	GUEST_ASSERT_EQ(crc32(check, 9), 0xcbf43926U);
	GUEST_ASSERT_EQ(crc32_bitwise(check, 9), 0xcbf43926U);
	GUEST_ASSERT_EQ(crc32("", 0), 0);
	GUEST_ASSERT_EQ(
		crc32("The quick brown fox jumps over the lazy dog", 43),
		0x414fa339U);
	for (unsigned i = 0; i < sizeof(big); i++)
		big[i] = (uint8_t)(i * 7 + 3);
	GUEST_ASSERT_EQ(crc32(big, sizeof(big)),
			crc32_bitwise(big, sizeof(big)));
}

/* ---- SHA-256 (FIPS 180-4) ---------------------------------------------- */

struct sha256 {
	uint32_t h[8];
	uint8_t buf[64];
	uint64_t len;
};

static const uint32_t sha_k[64] = {
	0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1,
	0x923f82a4, 0xab1c5ed5, 0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3,
	0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174, 0xe49b69c1, 0xefbe4786,
	0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
	0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147,
	0x06ca6351, 0x14292967, 0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13,
	0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85, 0xa2bfe8a1, 0xa81a664b,
	0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
	0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a,
	0x5b9cca4f, 0x682e6ff3, 0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208,
	0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
};

static inline uint32_t ror32(uint32_t x, unsigned n)
{
	return (x >> n) | (x << (32 - n));
}

static void sha256_block(struct sha256 *s, const uint8_t *p)
{
	uint32_t w[64], a, b, c, d, e, f, g, h;

	for (int i = 0; i < 16; i++)
		w[i] = (uint32_t)p[4 * i] << 24 | (uint32_t)p[4 * i + 1] << 16 |
		       (uint32_t)p[4 * i + 2] << 8 | p[4 * i + 3];
	for (int i = 16; i < 64; i++) {
		uint32_t s0 = ror32(w[i - 15], 7) ^ ror32(w[i - 15], 18) ^
			      (w[i - 15] >> 3);
		uint32_t s1 = ror32(w[i - 2], 17) ^ ror32(w[i - 2], 19) ^
			      (w[i - 2] >> 10);

		w[i] = w[i - 16] + s0 + w[i - 7] + s1;
	}
	a = s->h[0], b = s->h[1], c = s->h[2], d = s->h[3];
	e = s->h[4], f = s->h[5], g = s->h[6], h = s->h[7];
	for (int i = 0; i < 64; i++) {
		uint32_t t1 = h + (ror32(e, 6) ^ ror32(e, 11) ^ ror32(e, 25)) +
			      ((e & f) ^ (~e & g)) + sha_k[i] + w[i];
		uint32_t t2 = (ror32(a, 2) ^ ror32(a, 13) ^ ror32(a, 22)) +
			      ((a & b) ^ (a & c) ^ (b & c));

		h = g, g = f, f = e, e = d + t1;
		d = c, c = b, b = a, a = t1 + t2;
	}
	s->h[0] += a, s->h[1] += b, s->h[2] += c, s->h[3] += d;
	s->h[4] += e, s->h[5] += f, s->h[6] += g, s->h[7] += h;
}

static void sha256_init(struct sha256 *s)
{
	static const uint32_t iv[8] = {
		0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
		0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19,
	};

	memcpy(s->h, iv, sizeof(iv));
	s->len = 0;
}

static void sha256_update(struct sha256 *s, const void *data, size_t n)
{
	const uint8_t *p = data;

	while (n--) {
		s->buf[s->len++ % 64] = *p++;
		if (s->len % 64 == 0)
			sha256_block(s, s->buf);
	}
}

static void sha256_final(struct sha256 *s, uint8_t out[32])
{
	uint64_t bits = s->len * 8;
	uint8_t pad = 0x80;

	sha256_update(s, &pad, 1);
	pad = 0;
	while (s->len % 64 != 56)
		sha256_update(s, &pad, 1);
	for (int i = 7; i >= 0; i--) {
		uint8_t b = bits >> (8 * i);

		sha256_update(s, &b, 1);
	}
	for (int i = 0; i < 8; i++) {
		out[4 * i] = s->h[i] >> 24;
		out[4 * i + 1] = s->h[i] >> 16;
		out[4 * i + 2] = s->h[i] >> 8;
		out[4 * i + 3] = s->h[i];
	}
}

static void hex(const uint8_t *d, int n, char *out)
{
	static const char digits[] = "0123456789abcdef";

	for (int i = 0; i < n; i++) {
		out[2 * i] = digits[d[i] >> 4];
		out[2 * i + 1] = digits[d[i] & 15];
	}
	out[2 * n] = '\0';
}

static void sha256_hex(const void *data, size_t n, char out[65])
{
	struct sha256 s;
	uint8_t d[32];

	sha256_init(&s);
	sha256_update(&s, data, n);
	sha256_final(&s, d);
	hex(d, 32, out);
}

static void test_sha256(void)
{
	static const char two_blocks[] =
		"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
	static uint8_t million_a[4096];
	struct sha256 s;
	uint8_t d[32];
	char out[65];

	sha256_hex("abc", 3, out);
	GUEST_ASSERT_MSG(!strcmp(out, "ba7816bf8f01cfea414140de5dae2223"
				      "b00361a396177a9cb410ff61f20015ad"),
			 "sha256(abc) = %s", out);
	sha256_hex("", 0, out);
	GUEST_ASSERT_MSG(!strcmp(out, "e3b0c44298fc1c149afbf4c8996fb924"
				      "27ae41e4649b934ca495991b7852b855"),
			 "sha256() = %s", out);
	sha256_hex(two_blocks, strlen(two_blocks), out);
	GUEST_ASSERT_MSG(!strcmp(out, "248d6a61d20638b8e5c026930c3e6039"
				      "a33ce45964ff2167f6ecedd419db06c1"),
			 "sha256(abcdbcde...) = %s", out);

	/* One million 'a's, fed in page-sized pieces. */
	memset(million_a, 'a', sizeof(million_a));
	sha256_init(&s);
	for (size_t left = 1000000; left;) {
		size_t n = left < sizeof(million_a) ? left : sizeof(million_a);

		sha256_update(&s, million_a, n);
		left -= n;
	}
	sha256_final(&s, d);
	hex(d, 32, out);
	GUEST_ASSERT_MSG(!strcmp(out, "cdc76e5c9914fb9281a1c7e284d73e67"
				      "f1809a48a497200e046d39ccc7112cd0"),
			 "sha256(a * 10^6) = %s", out);
}

/* ---- a bytecode interpreter -------------------------------------------- */

enum op {
	OP_PUSH,
	OP_POP,
	OP_DUP,
	OP_SWAP,
	OP_OVER,
	OP_ADD,
	OP_SUB,
	OP_MUL,
	OP_DIV,
	OP_MOD,
	OP_AND,
	OP_XOR,
	OP_SHL,
	OP_LT,
	OP_JMP,
	OP_JZ,
	OP_JNZ,
	OP_LOAD,
	OP_STORE,
	OP_CALL,
	OP_RET,
	OP_HALT,
};

struct vm_state {
	int64_t stack[64];
	int64_t vars[16];
	int32_t rstack[16];
	int sp, rsp;
	uint64_t steps;
};

/*
 * A switch-dispatched stack machine: gcc compiles the switch into a jump
 * table, so this exercises indirect jumps through rodata.
 */
static int64_t vm_exec(struct vm_state *m, const int32_t *code)
{
	int pc = 0;

	m->sp = m->rsp = 0;
	m->steps = 0;
	for (;;) {
		int32_t op = code[pc++];
		int64_t a, b;

		m->steps++;
		switch (op) {
		case OP_PUSH:
			m->stack[m->sp++] = code[pc++];
			break;
		case OP_POP:
			m->sp--;
			break;
		case OP_DUP:
			m->stack[m->sp] = m->stack[m->sp - 1];
			m->sp++;
			break;
		case OP_SWAP:
			a = m->stack[m->sp - 1];
			m->stack[m->sp - 1] = m->stack[m->sp - 2];
			m->stack[m->sp - 2] = a;
			break;
		case OP_OVER:
			m->stack[m->sp] = m->stack[m->sp - 2];
			m->sp++;
			break;
		case OP_ADD ... OP_LT:
			b = m->stack[--m->sp];
			a = m->stack[m->sp - 1];
			switch (op) {
			case OP_ADD:
				a += b;
				break;
			case OP_SUB:
				a -= b;
				break;
			case OP_MUL:
				a *= b;
				break;
			case OP_DIV:
				a /= b;
				break;
			case OP_MOD:
				a %= b;
				break;
			case OP_AND:
				a &= b;
				break;
			case OP_XOR:
				a ^= b;
				break;
			case OP_SHL:
				a = (int64_t)((uint64_t)a << (b & 63));
				break;
			case OP_LT:
				a = a < b;
				break;
			}
			m->stack[m->sp - 1] = a;
			break;
		case OP_JMP:
			pc = code[pc];
			break;
		case OP_JZ:
			pc = m->stack[--m->sp] ? pc + 1 : code[pc];
			break;
		case OP_JNZ:
			pc = m->stack[--m->sp] ? code[pc] : pc + 1;
			break;
		case OP_LOAD:
			m->stack[m->sp++] = m->vars[code[pc++]];
			break;
		case OP_STORE:
			m->vars[code[pc++]] = m->stack[--m->sp];
			break;
		case OP_CALL:
			m->rstack[m->rsp++] = pc + 1;
			pc = code[pc];
			break;
		case OP_RET:
			pc = m->rstack[--m->rsp];
			break;
		case OP_HALT:
			return m->sp ? m->stack[m->sp - 1] : 0;
		default:
			GUEST_ASSERT_MSG(0, "bad opcode %d at %d", op, pc - 1);
		}
	}
}

/*
 * The program, assembled at run time so that jump targets are labels:
 *
 *	sum = 0;
 *	for (i = 0; i < n; i++)
 *		sum += (i * i) % 7 + collatz(i);
 *
 * with collatz(x) (steps until x <= 1) as a subroutine.  Variables:
 * 0 sum, 1 i, 2 n, 3 x, 4 steps.
 */
static int32_t code[128];
static int ncode;

static int here(void)
{
	return ncode;
}

static void emit(int32_t op)
{
	GUEST_ASSERT(ncode < (int)ARRAY_SIZE(code));
	code[ncode++] = op;
}

static void emit2(int32_t op, int32_t arg)
{
	emit(op);
	emit(arg);
}

/* Emit a jump with its target to be patched; returns the target's slot. */
static int emit_jump(int32_t op)
{
	emit2(op, -1);
	return ncode - 1;
}

static void assemble(void)
{
	int loop, to_done, call_collatz, c_loop, to_c_done, to_c_even;
	int to_c_next, c_even;

	ncode = 0;
	emit2(OP_PUSH, 0), emit2(OP_STORE, 0);
	emit2(OP_PUSH, 0), emit2(OP_STORE, 1);
	loop = here();
	emit2(OP_LOAD, 1), emit2(OP_LOAD, 2), emit(OP_LT);
	to_done = emit_jump(OP_JZ);
	emit2(OP_LOAD, 1), emit(OP_DUP), emit(OP_MUL), emit2(OP_PUSH, 7);
	emit(OP_MOD);
	emit2(OP_LOAD, 1);
	call_collatz = emit_jump(OP_CALL);
	emit(OP_ADD);
	emit2(OP_LOAD, 0), emit(OP_ADD), emit2(OP_STORE, 0);
	emit2(OP_LOAD, 1), emit2(OP_PUSH, 1), emit(OP_ADD), emit2(OP_STORE, 1);
	emit2(OP_JMP, loop);
	code[to_done] = here();
	emit2(OP_LOAD, 0), emit(OP_HALT);

	/* collatz: ( x -- steps ) */
	code[call_collatz] = here();
	emit2(OP_STORE, 3), emit2(OP_PUSH, 0), emit2(OP_STORE, 4);
	c_loop = here();
	emit2(OP_PUSH, 1), emit2(OP_LOAD, 3), emit(OP_LT);
	to_c_done = emit_jump(OP_JZ);
	emit2(OP_LOAD, 3), emit2(OP_PUSH, 1), emit(OP_AND);
	to_c_even = emit_jump(OP_JZ);
	emit2(OP_LOAD, 3), emit2(OP_PUSH, 3), emit(OP_MUL), emit2(OP_PUSH, 1);
	emit(OP_ADD), emit2(OP_STORE, 3);
	to_c_next = emit_jump(OP_JMP);
	c_even = here();
	code[to_c_even] = c_even;
	emit2(OP_LOAD, 3), emit2(OP_PUSH, 2), emit(OP_DIV), emit2(OP_STORE, 3);
	code[to_c_next] = here();
	emit2(OP_LOAD, 4), emit2(OP_PUSH, 1), emit(OP_ADD), emit2(OP_STORE, 4);
	emit2(OP_JMP, c_loop);
	code[to_c_done] = here();
	emit2(OP_LOAD, 4), emit(OP_RET);
}

/* Returns the result; the host checks it against its own computation. */
static int64_t test_bytecode(int64_t n)
{
	static struct vm_state m;
	int64_t r;

	assemble();
	m.vars[2] = n;
	r = vm_exec(&m, code);
	GUEST_ASSERT_EQ(r, reference_sum(n));
	GUEST_PRINTF("bytecode: n = %lld, result %lld, %llu steps",
		     (long long)n, (long long)r, (unsigned long long)m.steps);
	return r;
}

void guest_main(uint64_t arg0, uint64_t arg1)
{
	GUEST_SYNC(1);
	test_sort();
	GUEST_SYNC(2);
	test_crc32();
	GUEST_SYNC(3);
	test_sha256();
	GUEST_SYNC(4);
	/* The host answers the first SYNC with n and checks the result. */
	GUEST_SYNC(test_bytecode((int64_t)arg0));
	GUEST_DONE(0);
}

#else

#include "tap.h"
#include "guest_util.h"

#define MEM (32ULL << 20)
#define BYTECODE_N 3000

static const char *const steps[] = {
	"sorting (quicksort vs insertion sort, 2000 keys)",
	"CRC-32 (\"123456789\" = 0xcbf43926)",
	"SHA-256 (abc, empty, two blocks, a million 'a's)",
	"bytecode interpreter, result checked by the host",
};

static void run(unsigned long type, unsigned int flags, const char *what)
{
	struct gmem_load_opts opts = {.rdi = BYTECODE_N};
	struct guest_vm *gvm;
	struct guest_vcpu *v;
	struct guest_ucall uc;
	char msg[768];
	int ret;

	ret = guest_vm_create(type, MEM, flags, &gvm);
	REQUIRE(ret == 0);
	REQUIRE(guest_vcpu_add(gvm, &v) == 0);
	REQUIRE(guest_vm_load(gvm, "compute", &opts) == 0);
	printf("# %s\n", what);

	/* SYNC(n) opens step n; the step passed if SYNC(n + 1) follows. */
	ret = guest_vcpu_run(v, &uc);
	CHECK(ret == UCALL_SYNC && uc.args[0] == 1);
	for (unsigned i = 0; i < 4; i++) {
		ret = guest_vcpu_run(v, &uc);
		if (ret != UCALL_SYNC) {
			printf("# %s\n",
			       guest_describe(v, ret, &uc, msg, sizeof(msg)));
			tap_case_failed = 1;
			tap_result(steps[i]);
			for (i++; i < 4; i++)
				tap_skip(steps[i], "an earlier step failed");
			goto out;
		}
		if (i < 3)
			CHECK_EQ(uc.args[0], i + 2);
		else
			CHECK_EQ(uc.args[0], reference_sum(BYTECODE_N));
		tap_result(steps[i]);
	}
	CHECK_EQ(guest_vcpu_run_to_done(v, NULL), 0);
	tap_result("GUEST_DONE");
out:
	guest_vm_destroy(gvm);
}

int main(void)
{
	tap_plan(10, 120);
	run(KVM_X86_DEFAULT_VM, 0, "shared memory");
	run(KVM_X86_SW_PROTECTED_VM, GUEST_VM_PRIVATE,
	    "private guest_memfd memory");
	return tap_done();
}

#endif
