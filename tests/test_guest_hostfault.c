// SPDX-License-Identifier: MIT
/*
 * A VMM's mistakes with its own memory end KVM_RUN with -EFAULT, never
 * with a SIGSEGV in the VMM, and the VMM can repair them and resume.
 * Slot 1 is four pages of a memfd at GPA 32 MiB, mapped by the test at
 * hva, one mistake per page; the test reads and writes the same memfd
 * through a second mapping (alias) of its own:
 *   page 0  never mapped: the guest's read is -EFAULT; mapped, it reads on
 *   page 1  read-only: the guest's write is -EFAULT, the page unchanged;
 *           made writable, the write lands
 *   page 2  PROT_NONE: as page 0
 *   page 3  readable and writable, and cached by the vCPU; then
 *           mprotect()ed by the test, and munmap()ed and mprotect()ed by
 *           another thread while the guest writes it in a loop: each is
 *           -EFAULT for page 3, and the guest resumes with its data
 * (guest_util asks for GMEM_CAP_FAULT_ACCESS_FLAGS: the flags say R or W.)
 * Then the same faults through gmem_vcpu_access(); and the program's own
 * SIGSEGV action still gets the faults that are not gmem's, and the
 * default action still kills.
 */
#include <stdint.h>

#define SLOT_GPA (32ULL << 20)
#define SLOT_PAGES 4
#define QW(page) ((page)*512) /* index of a page's first quadword */

enum { STEP_CACHED = 1, STEP_LOOP };

#ifdef GUEST

#include "guest.h"

void guest_main(uint64_t arg0, uint64_t arg1)
{
	volatile uint64_t *p = (volatile uint64_t *)SLOT_GPA;
	uint64_t i;

	(void)arg0;
	(void)arg1;
	GUEST_ASSERT_EQ(p[QW(0)], 0x1111); /* never mapped, then mapped */
	p[QW(1)] = 0x2222;		   /* read-only, then writable */
	GUEST_ASSERT_EQ(p[QW(1)], 0x2222);
	GUEST_ASSERT_EQ(p[QW(2)], 0x3333); /* PROT_NONE, then readable */

	p[QW(3)] = 1;
	GUEST_SYNC(STEP_CACHED); /* the host takes page 3 away */
	p[QW(3)] = 2;
	GUEST_ASSERT_EQ(p[QW(3)], 2);

	/* Twice: another thread unmaps, then write-protects, page 3. */
	for (int round = 0; round < 2; round++) {
		p[QW(3) + 2] = 0;
		GUEST_SYNC(STEP_LOOP);
		for (i = 1; !p[QW(3) + 2]; i++)
			p[QW(3) + 1] = i;
		/* The store that faulted was made again once repaired. */
		GUEST_ASSERT_EQ(p[QW(3) + 1], i - 1);
	}
}

#else /* host */

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "guest_util.h"
#include "tap.h"

#define PG 4096UL
#define MEM (32ULL << 20)
#define HVA_LOW 0x10000000UL

static int memfd;
static uint8_t *hva;		 /* slot 1's userspace_addr */
static volatile uint64_t *alias; /* the same memfd, the test's own view */

static void map_page(unsigned int page, int prot)
{
	void *p = mmap(hva + page * PG, PG, prot, MAP_SHARED | MAP_FIXED, memfd,
		       (off_t)(page * PG));

	REQUIRE(p == hva + page * PG);
}

static void setup_slot(struct guest_vm *gvm)
{
	struct kvm_userspace_memory_region r = {
		.slot = 1,
		.guest_phys_addr = SLOT_GPA,
		.memory_size = SLOT_PAGES * PG,
	};

	memfd = memfd_create("hostfault", 0);
	REQUIRE(memfd >= 0 && ftruncate(memfd, SLOT_PAGES * PG) == 0);
	alias = mmap(NULL, SLOT_PAGES * PG, PROT_READ | PROT_WRITE, MAP_SHARED,
		     memfd, 0);
	REQUIRE(alias != MAP_FAILED);
	/*
	 * Reserve the range, then leave page 0 a hole.  Low, where the
	 * kernel places no mapping of its own choice (it allocates from the
	 * top down): nothing else can fill the hole, as a sanitizer's or
	 * malloc's mapping might next to the others.
	 */
	hva = mmap((void *)HVA_LOW, SLOT_PAGES * PG, PROT_NONE,
		   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE |
			   MAP_FIXED_NOREPLACE,
		   -1, 0);
	REQUIRE(hva == (void *)HVA_LOW);
	REQUIRE(munmap(hva, PG) == 0);
	map_page(1, PROT_READ);
	map_page(2, PROT_NONE);
	map_page(3, PROT_READ | PROT_WRITE);
	alias[QW(0)] = 0x1111;
	alias[QW(2)] = 0x3333;
	r.userspace_addr = (uint64_t)(uintptr_t)hva;
	REQUIRE(gmem_vm_set_memory_region(gvm->vm, &r) == 0);
}

/* The run ends with -EFAULT and a memory-fault exit for @page. */
static void expect_efault(struct guest_vcpu *v, unsigned int page,
			  uint64_t flags, const char *what)
{
	struct guest_ucall uc;
	char msg[512];
	int r = guest_vcpu_run(v, &uc);

	if (r != -EFAULT)
		printf("# %s\n", guest_describe(v, r, &uc, msg, sizeof(msg)));
	CHECK_EQ(r, -EFAULT);
	CHECK_EQ(v->run->exit_reason, KVM_EXIT_MEMORY_FAULT);
	CHECK_EQ(v->run->memory_fault.gpa, SLOT_GPA + page * PG);
	CHECK_EQ(v->run->memory_fault.size, PG);
	/* R|W: either; the loop reads the page as well as writing it. */
	if (flags == (KVM_MEMORY_EXIT_FLAG_READ | KVM_MEMORY_EXIT_FLAG_WRITE))
		CHECK(v->run->memory_fault.flags == KVM_MEMORY_EXIT_FLAG_READ ||
		      v->run->memory_fault.flags == KVM_MEMORY_EXIT_FLAG_WRITE);
	else
		CHECK_EQ(v->run->memory_fault.flags, flags);
	snprintf(msg, sizeof(msg), "%s: -EFAULT, memory fault at its page",
		 what);
	tap_result(msg);
}

static void expect_sync(struct guest_vcpu *v, uint64_t step)
{
	struct guest_ucall uc;
	char msg[512];
	int r = guest_vcpu_run(v, &uc);

	if (r != UCALL_SYNC)
		printf("# %s\n", guest_describe(v, r, &uc, msg, sizeof(msg)));
	REQUIRE(r == UCALL_SYNC && uc.args[0] == step);
}

struct taker {
	pthread_t thread;
	bool unmap; /* else mprotect(PROT_READ) */
};

static void *take_page3(void *arg)
{
	struct taker *t = arg;

	if (t->unmap)
		REQUIRE(munmap(hva + 3 * PG, PG) == 0);
	else
		REQUIRE(mprotect(hva + 3 * PG, PG, PROT_READ) == 0);
	return NULL;
}

static void test_guest(void)
{
	struct gmem_load_opts opts = {.mem_size = SLOT_GPA + SLOT_PAGES * PG};
	struct gmem_vcpu_stats st;
	struct guest_vcpu *v;
	struct guest_vm *gvm;
	uint64_t status;

	REQUIRE(guest_vm_create(KVM_X86_DEFAULT_VM, MEM, 0, &gvm) == 0);
	REQUIRE(guest_vcpu_add(gvm, &v) == 0);
	setup_slot(gvm);
	REQUIRE(guest_vm_load(gvm, "hostfault", &opts) == 0);

	expect_efault(v, 0, KVM_MEMORY_EXIT_FLAG_READ,
		      "read of a page never mapped");
	map_page(0, PROT_READ | PROT_WRITE);
	expect_efault(v, 1, KVM_MEMORY_EXIT_FLAG_WRITE,
		      "write of a read-only page");
	CHECK_EQ(alias[QW(1)], 0);
	REQUIRE(mprotect(hva + PG, PG, PROT_READ | PROT_WRITE) == 0);
	expect_efault(v, 2, KVM_MEMORY_EXIT_FLAG_READ,
		      "read of a PROT_NONE page");
	REQUIRE(mprotect(hva + 2 * PG, PG, PROT_READ) == 0);
	CHECK_EQ(alias[QW(1)], 0x2222);
	tap_result("each repaired page reads and writes on");

	/* A translation the vCPU holds: the access itself faults. */
	expect_sync(v, STEP_CACHED);
	CHECK_EQ(alias[QW(3)], 1);
	REQUIRE(mprotect(hva + 3 * PG, PG, PROT_NONE) == 0);
	REQUIRE(guest_vcpu_reply(v, 0) == 0);
	expect_efault(v, 3, KVM_MEMORY_EXIT_FLAG_WRITE,
		      "a cached page made PROT_NONE");
	CHECK_EQ(alias[QW(3)], 1);
	REQUIRE(mprotect(hva + 3 * PG, PG, PROT_READ | PROT_WRITE) == 0);

	for (int round = 0; round < 2; round++) {
		struct taker t = {.unmap = round == 0};

		expect_sync(v, STEP_LOOP);
		REQUIRE(guest_vcpu_reply(v, 0) == 0);
		/* Whenever it lands, the loop is running or about to. */
		REQUIRE(pthread_create(&t.thread, NULL, take_page3, &t) == 0);
		expect_efault(v, 3,
			      round == 0 ? KVM_MEMORY_EXIT_FLAG_READ |
						   KVM_MEMORY_EXIT_FLAG_WRITE
					 : KVM_MEMORY_EXIT_FLAG_WRITE,
			      round == 0
				      ? "another thread's munmap during a run"
				      : "another thread's mprotect during a "
					"run");
		pthread_join(t.thread, NULL);
		if (round == 0)
			map_page(3, PROT_READ | PROT_WRITE);
		else
			REQUIRE(mprotect(hva + 3 * PG, PG,
					 PROT_READ | PROT_WRITE) == 0);
		alias[QW(3) + 2] = 1; /* end the loop */
	}
	status = 1;
	CHECK_EQ(guest_vcpu_run_to_done(v, &status), 0);
	CHECK_EQ(status, 0);
	CHECK_EQ(alias[QW(3)], 2);
	tap_result("the guest resumes each time with its data intact");
	CHECK_EQ(gmem_vcpu_get_stats(v->vcpu, &st), 0);
	CHECK(st.host_faults >= 3);
	tap_diag("host faults: %llu", (unsigned long long)st.host_faults);
	tap_result("host faults are counted");

	/* The typed access path: the same -EFAULT, nothing copied. */
	{
		uint64_t buf = 0x77;

		REQUIRE(mprotect(hva + 2 * PG, PG, PROT_NONE) == 0);
		CHECK_EQ(gmem_vcpu_access(v->vcpu, SLOT_GPA + 2 * PG, &buf, 8,
					  GMEM_ACCESS_READ),
			 -EFAULT);
		CHECK_EQ(buf, 0x77);
		CHECK_EQ(v->run->memory_fault.gpa, SLOT_GPA + 2 * PG);
		REQUIRE(mprotect(hva + 2 * PG, PG, PROT_READ) == 0);
		CHECK_EQ(gmem_vcpu_access(v->vcpu, SLOT_GPA + 2 * PG, &buf, 8,
					  GMEM_ACCESS_WRITE),
			 -EFAULT);
		CHECK_EQ(alias[QW(2)], 0x3333);
		CHECK_EQ(gmem_vcpu_access(v->vcpu, SLOT_GPA + 2 * PG, &buf, 8,
					  GMEM_ACCESS_READ),
			 0);
		CHECK_EQ(buf, 0x3333);
		tap_result("gmem_vcpu_access: -EFAULT for PROT_NONE and for a "
			   "read-only write; reads once repaired");
	}
	guest_vm_destroy(gvm);
	munmap(hva, SLOT_PAGES * PG);
	munmap((void *)alias, SLOT_PAGES * PG);
	close(memfd);
}

static volatile void *own_addr;
static volatile int own_calls;
static uint8_t *volatile own_page;

static void own_handler(int sig, siginfo_t *si, void *uc)
{
	(void)uc;
	if (sig == SIGSEGV)
		own_addr = si->si_addr;
	own_calls++;
	mprotect(own_page, PG, PROT_READ | PROT_WRITE);
}

/* The program's action gets the faults that are not gmem's. */
static void test_chain(void)
{
	struct sigaction act, old;
	struct gmem_vm *vm;
	pid_t pid;
	int status;

	/* gmem is installed by then. */
	REQUIRE(gmem_vm_create(KVM_X86_DEFAULT_VM, &vm) == 0);
	own_page =
		mmap(NULL, PG, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	REQUIRE(own_page != MAP_FAILED);
	memset(&act, 0, sizeof(act));
	act.sa_sigaction = own_handler;
	act.sa_flags = SA_SIGINFO;
	sigemptyset(&act.sa_mask);
	CHECK_EQ(gmem_sigaction(SIGSEGV, &act, &old), 0);
	*(volatile uint8_t *)own_page = 5; /* faults once, then lands */
	CHECK_EQ(own_calls, 1);
	CHECK(own_addr == own_page);
	CHECK_EQ(own_page[0], 5);
	{
		struct sigaction now;

		CHECK_EQ(gmem_sigaction(SIGSEGV, NULL, &now), 0);
		CHECK(now.sa_sigaction == own_handler);
	}
	tap_result("the program's SIGSEGV handler gets its own fault and "
		   "repairs it");

	/* A sent SIGSEGV goes there too. */
	raise(SIGSEGV);
	CHECK_EQ(own_calls, 2);
	tap_result("a sent SIGSEGV reaches the program's handler");

	pid = fork();
	REQUIRE(pid >= 0);
	if (pid == 0) {
		struct sigaction dfl;

		memset(&dfl, 0, sizeof(dfl));
		dfl.sa_handler = SIG_DFL;
		gmem_sigaction(SIGSEGV, &dfl, NULL);
		mprotect(own_page, PG, PROT_NONE);
		*(volatile uint8_t *)own_page = 1;
		_exit(0);
	}
	REQUIRE(waitpid(pid, &status, 0) == pid);
	CHECK(WIFSIGNALED(status) && WTERMSIG(status) == SIGSEGV);
	tap_result("with the default action, a stray fault still kills with "
		   "SIGSEGV");
	gmem_sigaction(SIGSEGV, &old, NULL);
	munmap(own_page, PG);
	gmem_vm_put(vm);
}

int main(void)
{
	tap_plan(13, 60);
	test_guest();
	test_chain();
	return tap_done();
}

#endif
