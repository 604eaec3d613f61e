// SPDX-License-Identifier: MIT
/*
 * make bench, guest family: figures measured with real guest code on
 * gmem's vCPU.  Like a guest test, one file holds both halves: built with
 * -DGUEST it is the guest image bench_guest.elf, without it the host
 * program that runs it.
 *
 *   compute     guest MIPS on bench_compute() and bench_sse()
 *               (bench_compute.c), against the same object file run by
 *               qemu-x86_64 in the same run
 *   conversion  round trip of KVM_HC_MAP_GPA_RANGE for 4 KiB, 2 MiB and
 *               1 GiB: guest VMCALL -> KVM_EXIT_HYPERCALL -> the VMM sets
 *               the attributes and discards the old copy (punches the
 *               guest_memfd, or drops the shared pages) -> guest resumes
 *   scaling     1, 2, 4, 8 vCPU threads, each converting its own 64 KiB
 *               between private and shared (attributes only) and writing
 *               every page after each conversion (stage-2 faults), all at
 *               once in one VM
 *
 * The guest asks for its parameters with GUEST_SYNC(n) and the host
 * answers; the host times what lies between two SYNCs.
 */
#include <stdint.h>

/* What the guest asks for (GUEST_SYNC arguments). */
enum {
	ASK_NPAGES = 10,    /* conversion: pages per call; 0 ends the mode */
	ASK_ITERS,	    /* iterations */
	ASK_GPA,	    /* first page; the timed loop starts after this */
	SAY_END,	    /* timed loop done */
	ASK_MORE,	    /* scaling: go on (1) or stop (0)? */
	ASK_COMPUTE_N = 30, /* compute: iterations; the next SYNC's value
			     * is the result */
};

#define MODE_COMPUTE 1
#define MODE_CONVERT 2
#define MODE_SCALE 3
#define MODE_SSE 4

#ifdef GUEST

#include "guest.h"

uint64_t bench_compute(uint64_t n);
uint64_t bench_sse(uint64_t n);

static void convert_loop(void)
{
	for (;;) {
		uint64_t npages = GUEST_SYNC(ASK_NPAGES);
		uint64_t iters, gpa;

		if (!npages)
			return;
		iters = GUEST_SYNC(ASK_ITERS);
		gpa = GUEST_SYNC(ASK_GPA);
		for (uint64_t i = 0; i < iters; i++) {
			uint64_t r;

			r = guest_map_gpa_range(gpa, npages,
						KVM_MAP_GPA_RANGE_DECRYPTED);
			GUEST_ASSERT_EQ(r, 0);
			r = guest_map_gpa_range(gpa, npages,
						KVM_MAP_GPA_RANGE_ENCRYPTED);
			GUEST_ASSERT_EQ(r, 0);
		}
		GUEST_SYNC(SAY_END);
	}
}

/*
 * Every vCPU: convert its own pages back and forth, touching each, until
 * the host says stop (asked every @iters iterations): the run lasts a
 * fixed time whatever the machine's load.
 */
static void scale_worker(void)
{
	uint64_t npages = GUEST_SYNC(ASK_NPAGES);
	uint64_t iters = GUEST_SYNC(ASK_ITERS);
	uint64_t gpa = GUEST_SYNC(ASK_GPA);

	for (uint64_t i = 0;; i++) {
		uint64_t r;

		if (i % iters == 0 && !GUEST_SYNC(ASK_MORE))
			break;

		r = guest_map_gpa_range(gpa, npages,
					KVM_MAP_GPA_RANGE_DECRYPTED);
		GUEST_ASSERT_EQ(r, 0);
		for (uint64_t p = 0; p < npages; p++)
			*(volatile uint64_t *)(gpa + p * PAGE_SIZE) = i;
		r = guest_map_gpa_range(gpa, npages,
					KVM_MAP_GPA_RANGE_ENCRYPTED);
		GUEST_ASSERT_EQ(r, 0);
		for (uint64_t p = 0; p < npages; p++)
			*(volatile uint64_t *)(gpa + p * PAGE_SIZE) = i;
	}
	GUEST_SYNC(SAY_END);
}

void guest_main(uint64_t mode, uint64_t arg1)
{
	(void)arg1;
	switch (mode) {
	case MODE_COMPUTE: {
		uint64_t n = GUEST_SYNC(ASK_COMPUTE_N);

		/* The result comes back as the value of the next SYNC. */
		GUEST_SYNC(bench_compute(n));
		break;
	}
	case MODE_SSE: {
		uint64_t n = GUEST_SYNC(ASK_COMPUTE_N);

		GUEST_SYNC(bench_sse(n));
		break;
	}
	case MODE_CONVERT:
		convert_loop();
		break;
	case MODE_SCALE:
		scale_worker();
		break;
	}
	GUEST_DONE(0);
}

void guest_ap_main(uint64_t cpu)
{
	(void)cpu;
	scale_worker(); /* only the scaling mode starts other vCPUs */
	GUEST_DONE(0);
}

#else /* host */

#include <errno.h>
#include <limits.h>
#include <linux/falloc.h>
#include <pthread.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "bench.h"
#include "guest_util.h"
#include "vcpu.h"
#include "x86/x86.h"

/*
 * CPU time of this thread: the compute figures are CPU-bound, and on a
 * shared machine wall time would measure the neighbours too.
 */
static double thread_cpu_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* Instructions the vCPU has retired (the CPU model counts them). */
static uint64_t icount(struct guest_vcpu *v)
{
	return v->vcpu->cpu->icount;
}

static void die(struct guest_vcpu *v, int ret, const struct guest_ucall *uc)
{
	char msg[768];

	fprintf(stderr, "bench_guest: %s\n",
		guest_describe(v, ret, uc, msg, sizeof(msg)));
	exit(1);
}

/* Run to the next SYNC and check what the guest says or asks. */
static uint64_t expect_sync(struct guest_vcpu *v, uint64_t what)
{
	struct guest_ucall uc;
	int ret = guest_vcpu_run(v, &uc);

	if (ret != UCALL_SYNC || (what != UINT64_MAX && uc.args[0] != what))
		die(v, ret, &uc);
	return uc.args[0];
}

static void answer(struct guest_vcpu *v, uint64_t what, uint64_t value)
{
	expect_sync(v, what);
	if (guest_vcpu_reply(v, value))
		exit(1);
}

/*
 * The VMM's side of KVM_HC_MAP_GPA_RANGE, as a VMM does it: new
 * attributes, then discard the copy that is no longer the guest's (punch
 * the guest_memfd when going shared, drop the shared pages when going
 * private).  Returns the hypercall's result.
 */
/* What the VMM does on a conversion (see map_gpa_range). */
static enum {
	VMM_CONVERT,	/* attributes, then discard the old copy */
	VMM_ATTRS_ONLY, /* attributes only: both copies stay allocated */
	VMM_NOTHING,	/* answer at once: the bare exit round trip */
} vmm_policy;

static uint64_t map_gpa_range(struct guest_vm *gvm, struct kvm_run *run)
{
	uint64_t gpa = run->hypercall.args[0];
	uint64_t size = run->hypercall.args[1] << 12;
	bool priv = run->hypercall.args[2] & KVM_MAP_GPA_RANGE_ENCRYPTED;
	struct kvm_memory_attributes a = {
		.address = gpa,
		.size = size,
		.attributes = priv ? KVM_MEMORY_ATTRIBUTE_PRIVATE : 0,
	};

	if (vmm_policy == VMM_NOTHING)
		return 0;
	if (gpa + size > gvm->mem_size ||
	    gmem_vm_set_memory_attributes(gvm->vm, &a))
		return (uint64_t)-EINVAL;
	if (vmm_policy == VMM_ATTRS_ONLY)
		return 0;
	if (priv)
		madvise((uint8_t *)gvm->mem + gpa, size, MADV_DONTNEED);
	else if (gmem_file_fallocate(gvm->gmem_fd,
				     FALLOC_FL_KEEP_SIZE | FALLOC_FL_PUNCH_HOLE,
				     (int64_t)gpa, (int64_t)size))
		return (uint64_t)-EINVAL;
	return 0;
}

/* Run, serving conversions, until the next ucall. */
static int run_serving(struct guest_vcpu *v, struct guest_ucall *uc)
{
	for (;;) {
		int ret = guest_vcpu_run(v, uc);

		if (ret != GUEST_EXIT ||
		    v->run->exit_reason != KVM_EXIT_HYPERCALL)
			return ret;
		v->run->hypercall.ret = map_gpa_range(v->gvm, v->run);
	}
}

static struct guest_vm *make_vm(uint64_t mem, unsigned int nr_vcpus,
				unsigned int flags, uint64_t mode)
{
	struct gmem_load_opts opts = {.rdi = mode};
	struct kvm_enable_cap cap = {
		.cap = KVM_CAP_EXIT_HYPERCALL,
		.args = {1ULL << KVM_HC_MAP_GPA_RANGE},
	};
	unsigned long type = flags & GUEST_VM_PRIVATE ? KVM_X86_SW_PROTECTED_VM
						      : KVM_X86_DEFAULT_VM;
	struct guest_vm *gvm;

	if (guest_vm_create(type, mem, flags, &gvm) ||
	    gmem_vm_enable_cap(gvm->vm, &cap))
		exit(1);
	for (unsigned int i = 0; i < nr_vcpus; i++) {
		struct guest_vcpu *v;

		if (guest_vcpu_add(gvm, &v))
			exit(1);
		/* Conversions are ours to serve (and time), not the harness's.
		 */
		v->convert = 0;
	}
	if (guest_vm_load(gvm, "bench_guest", &opts))
		exit(1);
	return gvm;
}

/* ---- compute: MIPS against qemu-x86_64 --------------------------------- */

/* The static program next to this one: ../bench/bench_compute_static. */
static double qemu_compute(uint64_t n, uint64_t expect, bool sse)
{
	char exe[PATH_MAX], cmd[PATH_MAX + 64];
	unsigned long long ns = 0, r = 0;
	ssize_t len = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	FILE *p;

	if (len <= 0)
		return 0;
	exe[len] = '\0';
	*strrchr(exe, '/') = '\0';
	snprintf(cmd, sizeof(cmd),
		 "qemu-x86_64 %s/bench_compute_static %llu%s 2>/dev/null", exe,
		 (unsigned long long)n, sse ? " sse" : "");
	p = popen(cmd, "r");
	if (!p)
		return 0;
	if (fscanf(p, "%llu %llu", &ns, &r) != 2)
		ns = 0;
	pclose(p);
	if (ns && r != expect) {
		progress("qemu computed %llu, gmem %llu", r,
			 (unsigned long long)expect);
		return 0;
	}
	return ns * 1e-9;
}

static void bench_compute_mips(bool quick, bool sse)
{
	uint64_t n = (quick ? 30000 : 300000) / (sse ? 8 : 1);
	struct guest_vm *gvm =
		make_vm(16 * MiB, 1, 0, sse ? MODE_SSE : MODE_COMPUTE);
	struct guest_vcpu *v = gvm->vcpus[0];
	uint64_t i0, insns, result;
	double t, tq;

	progress("%s: gmem", sse ? "SSE loop" : "compute");
	answer(v, ASK_COMPUTE_N, n);
	i0 = icount(v);
	t = thread_cpu_now();
	result = expect_sync(v, UINT64_MAX);
	t = thread_cpu_now() - t;
	insns = icount(v) - i0;
	guest_vm_destroy(gvm);

	progress("%s: qemu-x86_64", sse ? "SSE loop" : "compute");
	tq = qemu_compute(n, result, sse);
	double mips = insns / t / 1e6;
	row(sse ? "guest MIPS: SSE loop (MULPD/ADDPD)"
		: "guest MIPS: compute loop",
	    mips, "MIPS", tq ? insns / tq / 1e6 : 0,
	    tq ? "qemu-x86_64 (same code)" : "qemu-x86_64 missing",
	    ">= 100 MIPS", mips >= 100 ? MET_YES : MET_NO);
}

/* ---- conversion round trip --------------------------------------------- */

/* One madvise(MADV_DONTNEED) of an empty 4 KiB page: a syscall's cost. */
static double time_madvise(void)
{
	enum { N = 20000 };
	uint8_t *p = mmap(NULL, 2 * MiB, PROT_READ | PROT_WRITE,
			  MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	double t;

	if (p == MAP_FAILED)
		return 0;
	t = now();
	for (int i = 0; i < N; i++)
		madvise(p + MiB, 4 * KiB, MADV_DONTNEED);
	t = (now() - t) / N;
	munmap(p, 2 * MiB);
	return t;
}

/* Average time of one hypercall (one conversion) in the guest's loop. */
static double time_conversions(struct guest_vcpu *v, uint64_t npages,
			       uint64_t iters)
{
	struct guest_ucall uc;
	double t;
	int ret;

	answer(v, ASK_NPAGES, npages);
	answer(v, ASK_ITERS, iters);
	answer(v, ASK_GPA, 1 * GiB);
	t = now();
	ret = run_serving(v, &uc);
	t = now() - t;
	if (ret != UCALL_SYNC || uc.args[0] != SAY_END)
		die(v, ret, &uc);
	/* Two conversions per iteration: to shared and back. */
	return t / (2 * iters);
}

static void bench_conversion(bool quick)
{
	static const struct {
		uint64_t npages, iters;
		const char *name;
	} sizes[] = {
		{1, 20000, "4 KiB"},
		{512, 5000, "2 MiB"},
		{262144, 500, "1 GiB"},
	};
	struct guest_vm *gvm =
		make_vm(2 * GiB, 1, GUEST_VM_PRIVATE, MODE_CONVERT);
	struct guest_vcpu *v = gvm->vcpus[0];
	double sys = time_madvise(), t;
	uint64_t div = quick ? 10 : 1;
	char name[64];

	progress("conversion: bare exit round trip");
	vmm_policy = VMM_NOTHING;
	t = time_conversions(v, 1, 20000 / div);
	row("hypercall round trip (VMM does nothing)", t * 1e6, "us", sys * 1e6,
	    "madvise 4 KiB syscall", "-", MET_NA);
	vmm_policy = VMM_ATTRS_ONLY;
	t = time_conversions(v, 1, 20000 / div);
	row("conversion round trip 4 KiB (attrs only)", t * 1e6, "us",
	    sys * 1e6, "madvise 4 KiB syscall", "-", MET_NA);
	vmm_policy = VMM_CONVERT;
	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		progress("conversion round trip %s", sizes[i].name);
		t = time_conversions(v, sizes[i].npages, sizes[i].iters / div);
		snprintf(name, sizeof(name), "conversion round trip %s",
			 sizes[i].name);
		row(name, t * 1e6, "us", sys * 1e6, "madvise 4 KiB syscall",
		    i ? "-" : "<= 3 us",
		    i		? MET_NA
		    : t <= 3e-6 ? MET_YES
				: MET_NO);
	}
	answer(v, ASK_NPAGES, 0);
	if (guest_vcpu_run_to_done(v, NULL))
		exit(1);
	guest_vm_destroy(gvm);
}

/* ---- scaling ------------------------------------------------------------ */

#define SCALE_PAGES 16 /* 64 KiB per vCPU */
#define SCALE_CHECK 16 /* iterations between "go on?" questions */

static double scale_deadline;
static pthread_barrier_t scale_barrier;

struct scale_thread {
	struct guest_vcpu *v;
	uint64_t conversions;
};

/* A vCPU thread: serve conversions and "go on?" until the deadline. */
static void *scale_thread(void *arg)
{
	struct scale_thread *st = arg;
	struct guest_vcpu *v = st->v;
	struct guest_ucall uc;
	int ret;

	answer(v, ASK_NPAGES, SCALE_PAGES);
	answer(v, ASK_ITERS, SCALE_CHECK);
	expect_sync(v, ASK_GPA);
	if (guest_vcpu_reply(v, 64 * MiB + v->id * 2 * MiB))
		exit(1);
	pthread_barrier_wait(&scale_barrier);
	for (;;) {
		ret = guest_vcpu_run(v, &uc);
		if (ret == GUEST_EXIT &&
		    v->run->exit_reason == KVM_EXIT_HYPERCALL) {
			v->run->hypercall.ret = map_gpa_range(v->gvm, v->run);
			st->conversions++;
			continue;
		}
		if (ret != UCALL_SYNC)
			die(v, ret, &uc);
		if (uc.args[0] == SAY_END)
			break;
		if (uc.args[0] != ASK_MORE)
			die(v, ret, &uc);
		if (guest_vcpu_reply(v, now() < scale_deadline))
			exit(1);
	}
	pthread_barrier_wait(&scale_barrier);
	if (guest_vcpu_run_to_done(v, NULL))
		exit(1);
	return NULL;
}

static double process_cpu_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return ts.tv_sec + ts.tv_nsec * 1e-9;
}

/*
 * One run of @n vCPU threads for @secs: conversions per second of wall
 * time, and per second of CPU time in *@per_cpu (what the work costs,
 * whatever share of the machine the neighbours leave us).
 */
static double scale_once(unsigned int n, double secs, double *per_cpu)
{
	struct guest_vm *gvm =
		make_vm(96 * MiB, n, GUEST_VM_PRIVATE, MODE_SCALE);
	struct scale_thread st[GUEST_MAX_VCPUS] = {0};
	pthread_t tid[GUEST_MAX_VCPUS];
	uint64_t total = 0;
	double t, cpu;

	pthread_barrier_init(&scale_barrier, NULL, n + 1);
	for (unsigned int k = 0; k < n; k++) {
		st[k].v = gvm->vcpus[k];
		pthread_create(&tid[k], NULL, scale_thread, &st[k]);
	}
	/* The barrier publishes the deadline to the threads. */
	scale_deadline = now() + secs;
	pthread_barrier_wait(&scale_barrier);
	t = now();
	cpu = process_cpu_now();
	pthread_barrier_wait(&scale_barrier);
	t = now() - t;
	cpu = process_cpu_now() - cpu;
	for (unsigned int k = 0; k < n; k++) {
		pthread_join(tid[k], NULL);
		total += st[k].conversions;
	}
	pthread_barrier_destroy(&scale_barrier);
	guest_vm_destroy(gvm);
	*per_cpu = total / cpu;
	return total / t;
}

static void bench_scaling(bool quick, const char *dat)
{
	enum { REPS = 3 };
	static const unsigned int threads[] = {1, 2, 4, 8};
	FILE *f = fopen(dat, "w");
	double base = 0, c[4][REPS], pc[4][REPS];
	char name[80];

	/*
	 * Conversions here change attributes only: discarding as well
	 * would make every iteration's 32 writes host page faults, which
	 * cost ~35 us each on this VM and would hide gmem entirely.  Each
	 * run lasts a fixed time; the thread counts take turns, REPS
	 * rounds, and each reports its median, so that other load on the
	 * machine spreads over all of them.
	 */
	vmm_policy = VMM_ATTRS_ONLY;
	for (int r = 0; r < REPS; r++)
		for (size_t i = 0; i < 4; i++) {
			progress("scaling: round %d/%d, %u vCPU thread%s",
				 r + 1, REPS, threads[i],
				 threads[i] > 1 ? "s" : "");
			c[i][r] = scale_once(threads[i], quick ? 0.2 : 0.6,
					     &pc[i][r]);
		}
	if (f)
		fprintf(f, "# threads  faults/s  conversions/s  "
			   "conversions/CPU-s\n");
	for (size_t i = 0; i < 4; i++) {
		unsigned int n = threads[i];
		double convs = median(c[i], REPS);
		/* Each conversion is followed by SCALE_PAGES writes. */
		double faults = convs * SCALE_PAGES;

		if (!i)
			base = faults;
		if (f)
			fprintf(f, "%u %.0f %.0f %.0f\n", n, faults, convs,
				median(pc[i], REPS));
		snprintf(name, sizeof(name),
			 "scaling %u vCPU%s: stage-2 faults/s", n,
			 n > 1 ? "s" : "");
		row(name, faults / 1e3, "k/s", base / 1e3, "1 vCPU",
		    n == 1 ? "-" : "grows (2 cores)",
		    n == 1	    ? MET_NA
		    : faults > base ? MET_YES
				    : MET_NO);
		snprintf(name, sizeof(name), "scaling %u vCPU%s: conversions/s",
			 n, n > 1 ? "s" : "");
		row(name, convs / 1e3, "k/s", 0, "-", "-", MET_NA);
		/* Flat means no overhead added by more threads. */
		snprintf(name, sizeof(name),
			 "scaling %u vCPU%s: conversions/CPU-s", n,
			 n > 1 ? "s" : "");
		row(name, median(pc[i], REPS) / 1e3, "k/s", 0, "-", "-",
		    MET_NA);
	}
	if (f)
		fclose(f);
}

int main(int argc, char **argv)
{
	bool quick = bench_quick();
	const char *only = getenv("GMEM_BENCH_ONLY");

	bench_open("guest", argc, argv);
	if (!only || strstr(only, "compute")) {
		bench_compute_mips(quick, false);
		bench_compute_mips(quick, true);
	}
	if (!only || strstr(only, "conversion"))
		bench_conversion(quick);
	if (!only || strstr(only, "scaling"))
		bench_scaling(quick,
			      argc > 2 ? argv[2] : "bench/results.scaling.dat");
	bench_close();
	return 0;
}

#endif /* GUEST */
