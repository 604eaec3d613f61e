// SPDX-License-Identifier: MIT
/*
 * Concurrency stress for the invalidation protocol (DESIGN §3.4).
 *
 * The check.  Each page p of a guest_memfd slot cycles through four states,
 * one call sequence per step, driven by the one converter thread that owns
 * p:
 *
 *   step n % 4 == 0  shared, attributes 0   (from 3: set 0, punch the page)
 *              1     shared, NW
 *              2     shared, NR|NW|NX
 *              3     private                (set PRIVATE, then the owner
 *                                            writes a private marker)
 *
 * After the calls of step n have returned the owner publishes done[p] = n.
 * The shared backing of p holds SHARED_SIG(p) and is never changed; the
 * private page holds 0 or PRIVATE_SIG(p).  An accessor thread (its own
 * vCPU) reads done[p] (d1), reads word 0 and writes word 1 of p, then reads
 * done[p] again (d2).  Calls of steps <= d1 had returned before the access
 * began, so each result must match a state of some step in [d1, d2 + 1]
 * (d2 + 1 being the step possibly in flight):
 *
 *   read:  0,1 -> SHARED_SIG;  2 -> memory fault (READ);  3 -> 0 or PRIV_SIG
 *   write: 0,3 -> done;        1,2 -> memory fault (WRITE)
 *
 * A mapping that survives its invalidation shows up as a result from a
 * state older than d1: e.g. SHARED_SIG read while p is surely private.
 * The first case proves the checker catches that: with the fault path's
 * retry check disabled (a test hook) and a fault held open while the page
 * converts, the stale mapping is detected; with the check on, it is not.
 * The fault is held by events, not by sleeping: it waits in the hook until
 * the conversion's zap lets it go.
 *
 * The race runs until the converters have done GMEM_STRESS_STEPS steps
 * (default 10000) and the accessors ten times as many checked accesses;
 * no clock decides anything (the TAP alarm fails a run that stalls).
 */
#include <linux/falloc.h>
#include <pthread.h>
#include <semaphore.h>
#include <stdatomic.h>
#include <sys/mman.h>

#include <gmem/gmem.h>

#include "tap.h"
#include "util.h"

#define NPAGES 64
#define NCONV 2
#define NACC 3
#define PG 4096ULL

#define SHARED_SIG(p) (0x5348415245440000ULL | (p))
#define PRIV_SIG(p) (0x5052495641540000ULL | (p))

static struct gmem_vm *vm;
static int memfd;
static uint8_t *shared;
static uint64_t done_step[NPAGES];
static int stop;
static long violations, accesses, conversions;
/* How much of each the race must do; each sem_post()s @progress once. */
static long need_accesses, need_conversions;
static sem_t progress;

static int set_attr(uint64_t gpa, uint64_t attrs)
{
	struct kvm_memory_attributes a = {
		.address = gpa, .size = PG, .attributes = attrs};

	return gmem_vm_set_memory_attributes(vm, &a);
}

static void setup(void)
{
	struct kvm_create_guest_memfd cg = {.size = NPAGES * PG};
	struct kvm_enable_cap acc_flags = {.cap = GMEM_CAP_FAULT_ACCESS_FLAGS};

	REQUIRE(gmem_vm_create(KVM_X86_SW_PROTECTED_VM, &vm) == 0);
	/* The checks below tell NR and NW denials apart by the flags. */
	REQUIRE(gmem_vm_enable_cap(vm, &acc_flags) == 0);
	memfd = gmem_create_guest_memfd(vm, &cg);
	REQUIRE(memfd >= 0);
	shared = mmap(NULL, NPAGES * PG, PROT_READ | PROT_WRITE,
		      MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	REQUIRE(shared != MAP_FAILED);
	for (uint64_t p = 0; p < NPAGES; p++)
		*(uint64_t *)(shared + p * PG) = SHARED_SIG(p);
	struct kvm_userspace_memory_region2 r = {
		.flags = KVM_MEM_GUEST_MEMFD,
		.memory_size = NPAGES * PG,
		.userspace_addr = (uintptr_t)shared,
		.guest_memfd = (uint32_t)memfd,
	};
	REQUIRE(gmem_vm_set_memory_region2(vm, &r) == 0);
	memset(done_step, 0, sizeof(done_step));
}

static void teardown(void)
{
	gmem_handle_close(memfd);
	gmem_vm_put(vm);
	munmap(shared, NPAGES * PG);
}

/* Run step @n's calls on page @p. */
static void convert(struct gmem_vcpu *vcpu, uint64_t p, uint64_t n)
{
	uint64_t gpa = p * PG, sig = PRIV_SIG(p);
	int r = 0;

	switch (n % 4) {
	case 0:
		r = set_attr(gpa, 0);
		r |= gmem_file_fallocate(
			memfd, FALLOC_FL_KEEP_SIZE | FALLOC_FL_PUNCH_HOLE, gpa,
			PG);
		break;
	case 1:
		r = set_attr(gpa, KVM_MEMORY_ATTRIBUTE_NW);
		break;
	case 2:
		r = set_attr(gpa, KVM_MEMORY_ATTRIBUTE_NR |
					  KVM_MEMORY_ATTRIBUTE_NW |
					  KVM_MEMORY_ATTRIBUTE_NX);
		break;
	case 3:
		r = set_attr(gpa, KVM_MEMORY_ATTRIBUTE_PRIVATE);
		r |= gmem_vcpu_access(vcpu, gpa, &sig, 8, GMEM_ACCESS_WRITE);
		break;
	}
	REQUIRE(r == 0);
}

static bool read_ok(uint64_t p, uint64_t state, int rc, uint64_t val,
		    const struct kvm_run *run)
{
	switch (state % 4) {
	case 0:
	case 1:
		return rc == 0 && val == SHARED_SIG(p);
	case 2:
		return rc == -EFAULT &&
		       run->memory_fault.flags == GMEM_ACCESS_READ;
	default:
		return rc == 0 && (val == 0 || val == PRIV_SIG(p));
	}
}

static bool write_ok(uint64_t state, int rc, const struct kvm_run *run)
{
	if (state % 4 == 0 || state % 4 == 3)
		return rc == 0;
	return rc == -EFAULT && run->memory_fault.flags == GMEM_ACCESS_WRITE;
}

/* One checked access of page @p; returns false on a violation. */
static bool checked_access(struct gmem_vcpu *vcpu, uint64_t p)
{
	struct kvm_run *run = gmem_vcpu_kvm_run(vcpu);
	uint64_t d1, d2, val = 0, junk = p;
	int rr, rw;
	bool rgood = false, wgood = false;
	struct kvm_run rrun;

	d1 = __atomic_load_n(&done_step[p], __ATOMIC_ACQUIRE);
	rr = gmem_vcpu_access(vcpu, p * PG, &val, 8, GMEM_ACCESS_READ);
	rrun = *run;
	rw = gmem_vcpu_access(vcpu, p * PG + 8, &junk, 8, GMEM_ACCESS_WRITE);
	d2 = __atomic_load_n(&done_step[p], __ATOMIC_ACQUIRE);
	for (uint64_t n = d1; n <= d2 + 1; n++) {
		rgood |= read_ok(p, n, rr, val, &rrun);
		wgood |= write_ok(n, rw, run);
	}
	if (!rgood || !wgood) {
		if (__atomic_fetch_add(&violations, 1, __ATOMIC_RELAXED) < 5)
			tap_diag("page %llu steps [%llu,%llu]: read rc %d val "
				 "%#llx, write rc %d",
				 (unsigned long long)p, (unsigned long long)d1,
				 (unsigned long long)d2 + 1, rr,
				 (unsigned long long)val, rw);
		return false;
	}
	return true;
}

static void *converter(void *arg)
{
	long id = (long)arg;
	struct gmem_vcpu *vcpu;
	uint32_t rng = 777 + (uint32_t)id;

	REQUIRE(gmem_vcpu_create(vm, 100 + id, &vcpu) == 0);
	while (!__atomic_load_n(&stop, __ATOMIC_RELAXED)) {
		uint64_t p, step;

		rng ^= rng << 13, rng ^= rng >> 17, rng ^= rng << 5;
		p = (rng % (NPAGES / NCONV)) * NCONV + id;
		step = done_step[p] + 1;
		convert(vcpu, p, step);
		__atomic_store_n(&done_step[p], step, __ATOMIC_RELEASE);
		if (__atomic_add_fetch(&conversions, 1, __ATOMIC_RELAXED) ==
		    need_conversions)
			sem_post(&progress);
	}
	gmem_vcpu_destroy(vcpu);
	return NULL;
}

static void *accessor(void *arg)
{
	long id = (long)arg;
	struct gmem_vcpu *vcpu;
	uint32_t rng = 4242 + (uint32_t)id;

	REQUIRE(gmem_vcpu_create(vm, id, &vcpu) == 0);
	while (!__atomic_load_n(&stop, __ATOMIC_RELAXED)) {
		rng ^= rng << 13, rng ^= rng >> 17, rng ^= rng << 5;
		checked_access(vcpu, rng % NPAGES);
		if (__atomic_add_fetch(&accesses, 1, __ATOMIC_RELAXED) ==
		    need_accesses)
			sem_post(&progress);
	}
	gmem_vcpu_destroy(vcpu);
	return NULL;
}

struct held_fault {
	struct gmem_vcpu *vcpu;
	uint64_t val;
	int rc;
};

static void *slow_reader(void *arg)
{
	struct held_fault *h = arg;

	h->rc = gmem_vcpu_access(h->vcpu, 0, &h->val, 8, GMEM_ACCESS_READ);
	return NULL;
}

/* The held fault's handshake: each hook acts once, then lets all pass. */
static sem_t fault_held, fault_go;
static atomic_bool hold_armed, release_armed;

/* gmem_debug.fault_window: tell the test, then wait for its word. */
static void hold_fault(uint64_t gfn)
{
	if (atomic_exchange(&hold_armed, false)) {
		sem_post(&fault_held);
		while (sem_wait(&fault_go))
			REQUIRE(errno == EINTR);
	}
}

/*
 * gmem_debug.invalidate_zapped: the conversion has zapped and will now
 * wait for the held vCPU, so the fault goes on to its install.
 */
static void release_fault(uint64_t start, uint64_t end)
{
	if (atomic_exchange(&release_armed, false))
		sem_post(&fault_go);
}

/*
 * A fault on page 0 resolves "shared, writable", then is held (hook)
 * while the page is made no-write, until that update has zapped stage 2.
 * Returns true if a later access still got through the writable mapping,
 * i.e. a stale mapping survived.
 */
static bool stale_after_held_fault(bool no_retry)
{
	struct held_fault h = {0};
	struct gmem_vcpu *conv;
	pthread_t t;
	bool stale;

	setup();
	REQUIRE(gmem_vcpu_create(vm, 0, &h.vcpu) == 0);
	REQUIRE(gmem_vcpu_create(vm, 1, &conv) == 0);
	REQUIRE(sem_init(&fault_held, 0, 0) == 0);
	REQUIRE(sem_init(&fault_go, 0, 0) == 0);
	atomic_store(&hold_armed, true);
	atomic_store(&release_armed, true);
	gmem_debug.no_retry = no_retry;
	gmem_debug.fault_window = hold_fault;
	gmem_debug.invalidate_zapped = release_fault;
	pthread_create(&t, NULL, slow_reader, &h);
	while (sem_wait(&fault_held))
		REQUIRE(errno == EINTR);
	convert(conv, 0, 1);
	pthread_join(t, NULL);
	gmem_debug.fault_window = NULL;
	gmem_debug.invalidate_zapped = NULL;
	gmem_debug.no_retry = false;
	/* Both hooks fired: the race took place as described. */
	CHECK(!atomic_load(&hold_armed) && !atomic_load(&release_armed));
	CHECK_EQ(h.rc, 0);
	sem_destroy(&fault_held);
	sem_destroy(&fault_go);
	done_step[0] = 1;
	stale = !checked_access(h.vcpu, 0);
	gmem_vcpu_destroy(conv);
	gmem_vcpu_destroy(h.vcpu);
	teardown();
	return stale;
}

int main(void)
{
	pthread_t conv[NCONV], acc[NACC];
	const char *env = getenv("GMEM_STRESS_STEPS");
	long steps = env ? strtol(env, NULL, 0) : 10000;
	struct gmem_vm_stats st;

	if (steps < 1)
		steps = 1;
	need_conversions = steps;
	need_accesses = steps * 10;
	/* A safety net, no pass criterion: TSan runs are ~20 times slower. */
	tap_plan(3, 120 + (unsigned)(steps / 100));

	violations = 0;
	CHECK(stale_after_held_fault(true));
	tap_result(
		"checker catches a stale mapping when the retry check is off");
	violations = 0;
	CHECK(!stale_after_held_fault(false));
	CHECK_EQ(violations, 0);
	tap_result("the same race with the retry check on leaves no stale "
		   "mapping");

	violations = 0;
	setup();
	REQUIRE(sem_init(&progress, 0, 0) == 0);
	for (long i = 0; i < NCONV; i++)
		pthread_create(&conv[i], NULL, converter, (void *)i);
	for (long i = 0; i < NACC; i++)
		pthread_create(&acc[i], NULL, accessor, (void *)i);
	/* Once for the accessors' count, once for the converters'. */
	for (int i = 0; i < 2; i++)
		while (sem_wait(&progress))
			REQUIRE(errno == EINTR);
	__atomic_store_n(&stop, 1, __ATOMIC_RELAXED);
	for (long i = 0; i < NCONV; i++)
		pthread_join(conv[i], NULL);
	for (long i = 0; i < NACC; i++)
		pthread_join(acc[i], NULL);
	gmem_vm_get_stats(vm, &st);
	tap_diag("%ld checked accesses, %ld conversion steps, %llu faults, "
		 "%llu retries, %llu shootdowns",
		 accesses, conversions, (unsigned long long)st.faults,
		 (unsigned long long)st.fault_retries,
		 (unsigned long long)st.tlb_flush_requests);
	CHECK_EQ(violations, 0);
	sem_destroy(&progress);
	teardown();
	tap_result(
		"accessors and converters race: every access is linearizable");
	return tap_done();
}
