// SPDX-License-Identifier: MIT
/*
 * Allocation-failure sweep over the whole API (gmem.h: "a failing call
 * changes nothing"), complementing test_enomem's fixed scenarios.
 *
 * 1. Model-driven: the reference model's random steps (tests/model.h:
 *    attributes, slots, guest_memfd create/close/fallocate/poison,
 *    exec-only, reads/writes/fetches through a vCPU, typed and façade).
 *    Each step is run with its 1st allocation failed, then its 2nd, ...
 *    until it completes without reaching the failing one.  Every time the
 *    failure fired, the call must have returned -ENOMEM and the whole
 *    state — both attribute maps and their sequence numbers, every slot's
 *    read-back, every file's size — must still be what the model held
 *    before the step; then the step is replayed from the same choices.
 * 2. Calls the model does not make, swept the same way from a fixed
 *    state: vCPU creation (typed and KVM_CREATE_VCPU), a guest run that
 *    faults memory in, GMEM_CAP_XO_ALIAS, and the ELF loader.
 *
 *   test_enomem_sweep [seed [steps]]  (or $GMEM_SEED, $GMEM_SWEEP_STEPS)
 */
#include "model.h"

#include <gmem/loader.h>

static uint64_t rng;

static uint64_t rnd(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

static void model_mismatch_hook(void)
{
}

static long swept; /* calls made with an allocation failed */
static long swept_kind[NR_KINDS];

/* Everything the model can see, for all VMs, against its copy. */
static void check_unchanged(void)
{
	for (int v = 0; v < NVM; v++) {
		for (uint32_t id = 0; id < NSLOT; id++)
			check_slot(&vms[v], id);
		compare_all(&vms[v], SEQ_STAYS);
		for (int i = 0; i < NFILE; i++) {
			struct mfile *f = &vms[v].file[i];
			struct stat st;

			if (!f->open)
				continue;
			if (gmem_file_stat(f->fd, &st) ||
			    (uint64_t)st.st_size != f->pages * PAGE)
				mismatch("file %d of vm%d changed", i, v);
		}
	}
}

static struct mvm saved[NVM];

/* One step, with each of its allocations failed in turn. */
static void sweep_step(void)
{
	uint64_t rng0 = rng;
	long n, base;

	memcpy(saved, vms, sizeof(vms));
	for (n = 1;; n++) {
		bool fired;

		rng = rng0;
		failed = false;
		model_quiet = true;
		model_injecting = true;
		model_last_got = 0;
		base = gmem_test_fail_alloc(n);
		one_step();
		fired = model_injecting && gmem_test_fail_alloc(0) >= base + n;
		model_quiet = false;
		model_injecting = false;
		if (!fired)
			break;
		swept++;
		swept_kind[cur_kind]++;
		failed = false;
		if (model_last_got != -ENOMEM) {
			mismatch("allocation %ld failed, the call returned %ld",
				 n, model_last_got);
			return;
		}
		/* the model as before the step, and the state must agree */
		memcpy(vms, saved, sizeof(vms));
		check_unchanged();
		if (failed) {
			tap_diag("after failing allocation %ld", n);
			return;
		}
	}
	/* the last round ran uninjected: a mismatch there is a plain one */
	if (failed) {
		failed = false;
		rng = rng0;
		memcpy(vms, saved, sizeof(vms));
		mismatch("the step disagrees with the model without injection");
	}
}

/* ---- calls outside the model --------------------------------------------- */

#define MEM (4 * MIB)
#define FAR (1ULL << 30)

struct fixed {
	struct gmem_vm *vm;
	int sys, vmfd, vcpufd;
	struct gmem_vcpu *vcpu;
	uint8_t *mem, *far; /* slot 0 at GPA 0, slot 1 at FAR */
};

static void fixed_setup(struct fixed *f)
{
	struct kvm_userspace_memory_region2 r;

	memset(f, 0, sizeof(*f));
	f->vcpufd = -1;
	f->sys = gmem_open();
	REQUIRE(f->sys >= 0);
	f->vmfd = gmem_ioctl(f->sys, KVM_CREATE_VM, KVM_X86_SW_PROTECTED_VM);
	REQUIRE(f->vmfd >= 0);
	REQUIRE(gmem_vm_from_handle(f->vmfd, &f->vm) == 0);
	f->mem = test_mem(MEM);
	r = region2(0, 0, 0, MEM, (uintptr_t)f->mem);
	REQUIRE(gmem_vm_set_memory_region2(f->vm, &r) == 0);
	f->far = test_mem(MEM);
	r = region2(1, 0, FAR, MEM, (uintptr_t)f->far);
	REQUIRE(gmem_vm_set_memory_region2(f->vm, &r) == 0);
}

static void fixed_teardown(struct fixed *f)
{
	if (f->vcpu)
		gmem_vcpu_destroy(f->vcpu);
	if (f->vcpufd >= 0)
		REQUIRE(gmem_close(f->vcpufd) == 0);
	gmem_vm_put(f->vm);
	REQUIRE(gmem_close(f->vmfd) == 0);
	REQUIRE(gmem_close(f->sys) == 0);
	munmap(f->mem, MEM);
	munmap(f->far, MEM);
}

static long fx_vcpu_create(struct fixed *f)
{
	return gmem_vcpu_create(f->vm, 3, &f->vcpu);
}

static long fx_vcpu_create_ioctl(struct fixed *f)
{
	long r = fac_ret(gmem_ioctl(f->vmfd, KVM_CREATE_VCPU, 3));

	if (r >= 0)
		f->vcpufd = (int)r;
	return r;
}

static long fx_xo_alias(struct fixed *f)
{
	struct kvm_enable_cap c = {.cap = GMEM_CAP_XO_ALIAS};

	c.args[0] = 40;
	return gmem_vm_enable_cap(f->vm, &c);
}

/*
 * A guest that writes a word at FAR + 4 KiB and halts.  FAR lies in a
 * second slot 1 GiB up, where no stage-2 table exists yet, so the run
 * must allocate one when it faults the page in.
 */
static const uint8_t tiny_elf_code[] = {
	0x48, 0xc7, 0xc0, 0x00, 0x10, 0x00, 0x40, /* mov rax, FAR + 0x1000 */
	0x48, 0xc7, 0x00, 0x2a, 0x00, 0x00, 0x00, /* movq [rax], 42 */
	0xf4,					  /* hlt */
};

static size_t tiny_elf(uint8_t *buf)
{
	/* ELF64 header + one PT_LOAD at 2 MiB holding the code. */
	const uint64_t base = 0x200000, off = 64 + 56;
	size_t len = off + sizeof(tiny_elf_code);

	memset(buf, 0, len);
	memcpy(buf, "\177ELF\2\1\1", 7);
	*(uint16_t *)(buf + 16) = 2;	      /* ET_EXEC */
	*(uint16_t *)(buf + 18) = 62;	      /* EM_X86_64 */
	*(uint32_t *)(buf + 20) = 1;	      /* EV_CURRENT */
	*(uint64_t *)(buf + 24) = base + off; /* e_entry */
	*(uint64_t *)(buf + 32) = 64;	      /* e_phoff */
	*(uint16_t *)(buf + 52) = 64;	      /* e_ehsize */
	*(uint16_t *)(buf + 54) = 56;	      /* e_phentsize */
	*(uint16_t *)(buf + 56) = 1;	      /* e_phnum */
	*(uint32_t *)(buf + 64) = 1;	      /* PT_LOAD */
	*(uint32_t *)(buf + 68) = 5;	      /* R+X */
	*(uint64_t *)(buf + 72) = 0;	      /* p_offset */
	*(uint64_t *)(buf + 80) = base;	      /* p_vaddr */
	*(uint64_t *)(buf + 88) = base;	      /* p_paddr */
	*(uint64_t *)(buf + 96) = len;	      /* p_filesz */
	*(uint64_t *)(buf + 104) = len;	      /* p_memsz */
	*(uint64_t *)(buf + 112) = 4096;      /* p_align */
	memcpy(buf + off, tiny_elf_code, sizeof(tiny_elf_code));
	return len;
}

static long fx_load(struct fixed *f)
{
	struct gmem_load_opts o = {.mem_size = FAR + MEM};
	uint8_t img[256];
	size_t len = tiny_elf(img);

	return gmem_load_elf(f->vcpu, img, len, &o, NULL);
}

static void fx_vcpu0(struct fixed *f)
{
	REQUIRE(gmem_vcpu_create(f->vm, 0, &f->vcpu) == 0);
}

/* Load (uninjected), then sweep the run, which faults pages in. */
static void fx_run_setup(struct fixed *f)
{
	fx_vcpu0(f);
	REQUIRE(fx_load(f) == 0);
}

static long fx_run(struct fixed *f)
{
	struct kvm_run *run = gmem_vcpu_kvm_run(f->vcpu);
	int r = gmem_vcpu_run(f->vcpu);

	if (r)
		return r;
	if (run->exit_reason != KVM_EXIT_HLT ||
	    *(uint64_t *)(f->far + 0x1000) != 42)
		return TVM_BAD_RET;
	return 0;
}

struct fixed_op {
	const char *name;
	void (*setup)(struct fixed *f); /* after fixed_setup, uninjected */
	long (*call)(struct fixed *f);
	bool must_alloc;
	bool check_mem; /* guest memory must be untouched */
};

static const struct fixed_op fixed_ops[] = {
	{"gmem_vcpu_create", NULL, fx_vcpu_create, true, false},
	{"KVM_CREATE_VCPU", NULL, fx_vcpu_create_ioctl, true, false},
	{"KVM_ENABLE_CAP(GMEM_CAP_XO_ALIAS)", NULL, fx_xo_alias, false, false},
	{"gmem_load_elf", fx_vcpu0, fx_load, true, false},
	{"gmem_vcpu_run faulting memory in", fx_run_setup, fx_run, true, true},
};

static void sweep_fixed(const struct fixed_op *op)
{
	struct fixed f;
	long c0, count, r;
	char name[160];
	int h0, h1;

	fixed_setup(&f);
	if (op->setup)
		op->setup(&f);
	c0 = gmem_test_fail_alloc(0);
	r = op->call(&f);
	count = gmem_test_fail_alloc(0) - c0;
	fixed_teardown(&f);
	CHECK(r >= 0);
	if (op->must_alloc)
		CHECK(count > 0);
	for (long n = 1; n <= count && r >= 0; n++) {
		fixed_setup(&f);
		if (op->setup)
			op->setup(&f);
		h0 = gmem_open();
		gmem_close(h0);
		gmem_test_fail_alloc(n);
		r = op->call(&f);
		gmem_test_fail_alloc(0);
		swept++;
		if (r != -ENOMEM) {
			tap_case_failed = 1;
			tap_diag("failing allocation %ld of %ld: returned %ld",
				 n, count, r);
		}
		/* no handle, vCPU id or guest write was consumed */
		h1 = gmem_open();
		gmem_close(h1);
		CHECK_EQ(h1, h0);
		if (op->check_mem)
			CHECK_EQ(*(uint64_t *)(f.far + 0x1000), 0);
		r = op->call(&f);
		if (r < 0) {
			tap_case_failed = 1;
			tap_diag("after failing allocation %ld the retry "
				 "returned %ld",
				 n, r);
		}
		fixed_teardown(&f);
	}
	snprintf(name, sizeof(name), "ENOMEM at each of %ld allocations: %s",
		 count, op->name);
	tap_result(name);
}

static uint64_t env_or(const char *name, const char *arg, uint64_t def)
{
	const char *s = arg ? arg : getenv(name);

	return s && *s ? strtoull(s, NULL, 0) : def;
}

int main(int argc, char **argv)
{
	uint64_t seed, steps;

	seed = env_or("GMEM_SEED", argc > 1 ? argv[1] : NULL,
		      (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 20));
	steps = env_or("GMEM_SWEEP_STEPS", argc > 2 ? argv[2] : NULL, 50000);
	if (!seed)
		seed = 1;
	tap_plan(2 + (int)ARRAY_LEN(fixed_ops), 300);
	tap_diag("seed %" PRIu64 " (rerun: %s %" PRIu64 "), %" PRIu64 " steps",
		 seed, argv[0], seed, steps);
	rng = seed;
	model_init();
	for (step = 0; step < (long)steps && !failed; step++)
		sweep_step();
	tap_diag("%ld steps, %ld calls made with an allocation failed", step,
		 swept);
	for (int k = 0; k < NR_KINDS; k++)
		tap_diag("  %s: %ld", kind_name[k], swept_kind[k]);
	if (failed)
		tap_case_failed = 1;
	CHECK(swept > 0);
	tap_result("model steps: each allocation failed leaves the state as "
		   "it was");
	model_fini();
	if (failed)
		tap_case_failed = 1;
	tap_result("everything closes after the sweep");

	for (size_t i = 0; i < ARRAY_LEN(fixed_ops); i++)
		sweep_fixed(&fixed_ops[i]);
	tap_diag("%ld calls swept in all", swept);
	return tap_done();
}
