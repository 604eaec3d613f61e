// SPDX-License-Identifier: MIT
/*
 * The smallest guest test: console output, ucalls in both directions, and
 * a clean DONE; then the same guest in guest_memfd-backed private RAM, so
 * the loader's writes and the harness's ucall reads go through
 * guest_memfd.  Built twice (see the Makefile): -DGUEST is the guest.
 */
#ifdef GUEST

#include "guest.h"

void guest_main(uint64_t arg0, uint64_t arg1)
{
	uint64_t answer;

	guest_printf("hello from the guest, cpu %llu\n",
		     (unsigned long long)guest_boot->cpu);
	/* Without arguments: no SYNCs, and returning reports DONE(0). */
	if (!arg0)
		return;
	GUEST_PRINTF("arguments %#llx %#llx", (unsigned long long)arg0,
		     (unsigned long long)arg1);
	GUEST_ASSERT_EQ(arg0, 0x1234);
	GUEST_ASSERT_EQ(arg1, 0x5678);
	GUEST_ASSERT_EQ(guest_boot->magic, GMEM_BOOT_MAGIC);
	answer = GUEST_SYNC(1);
	GUEST_ASSERT_EQ(answer, 42);
	GUEST_SYNC(2);
	GUEST_DONE(0);
}

#else

#include <string.h>

#include "tap.h"
#include "guest_util.h"

#define MEM (16ULL << 20)

static void run_hello(unsigned long type, unsigned int flags, const char *name)
{
	struct gmem_load_opts opts = {.rdi = 0x1234, .rsi = 0x5678};
	struct guest_vm *gvm;
	struct guest_vcpu *v;
	struct guest_ucall uc;
	char msg[768];
	int ret;

	ret = guest_vm_create(type, MEM, flags, &gvm);
	CHECK_EQ(ret, 0);
	if (ret) {
		tap_result(name);
		return;
	}
	ret = guest_vcpu_add(gvm, &v);
	CHECK_EQ(ret, 0);
	if (!ret)
		ret = guest_vm_load(gvm, "hello", &opts);
	CHECK_EQ(ret, 0);
	if (ret)
		goto out;

	ret = guest_vcpu_run(v, &uc);
	if (ret != UCALL_SYNC || uc.args[0] != 1)
		printf("# %s\n", guest_describe(v, ret, &uc, msg, sizeof(msg)));
	CHECK_EQ(ret, UCALL_SYNC);
	CHECK_EQ(uc.args[0], 1);
	CHECK_EQ(guest_vcpu_reply(v, 42), 0);

	ret = guest_vcpu_run(v, &uc);
	if (ret != UCALL_SYNC || uc.args[0] != 2)
		printf("# %s\n", guest_describe(v, ret, &uc, msg, sizeof(msg)));
	CHECK_EQ(ret, UCALL_SYNC);
	CHECK_EQ(uc.args[0], 2);

	CHECK_EQ(guest_vcpu_run_to_done(v, NULL), 0);
	CHECK(v->console &&
	      strstr(v->console, "hello from the guest, cpu 0\n"));
out:
	guest_vm_destroy(gvm);
	tap_result(name);
}

int main(void)
{
	tap_plan(3, 60);
	run_hello(KVM_X86_DEFAULT_VM, 0, "hello in shared memory");
	run_hello(KVM_X86_SW_PROTECTED_VM, GUEST_VM_PRIVATE,
		  "hello in private guest_memfd memory");
	CHECK_EQ(guest_run_program("hello", KVM_X86_DEFAULT_VM, MEM, 0, NULL),
		 0);
	tap_result("guest_run_program(); returning from guest_main is DONE");
	return tap_done();
}

#endif
