// SPDX-License-Identifier: MIT
/*
 * Triple faults end the guest with KVM_EXIT_SHUTDOWN: (0) an empty IDT,
 * so the first exception cannot be delivered at all; (1) a valid IDT but
 * an unmapped stack, so #UD's delivery faults (#PF), that delivery faults
 * too (#DF), and so does #DF's.  The guest SYNCs first so the host knows
 * it got that far; nothing after the fault may run.
 */
#ifdef GUEST

#include "guest.h"

static uint8_t dead_stack[4096] __aligned(4096);

void guest_main(uint64_t variant, uint64_t arg1)
{
	struct {
		uint16_t limit;
		uint64_t base;
	} __attribute__((packed)) empty = {0, 0};

	if (variant == 1)
		guest_unmap_page((uint64_t)dead_stack);
	GUEST_SYNC(variant);
	if (variant == 0) {
		asm volatile("lidt %0\n\t"
			     "ud2"
			     :
			     : "m"(empty)
			     : "memory");
	} else {
		asm volatile("mov %0, %%rsp\n\t"
			     "ud2"
			     :
			     : "r"(dead_stack + sizeof(dead_stack))
			     : "memory");
	}
	GUEST_ASSERT_MSG(0, "still running after a triple fault");
}

#else

#include "tap.h"
#include "guest_util.h"

#define MEM (8ULL << 20)

static void run(uint64_t variant, const char *name)
{
	struct gmem_load_opts opts = {.rdi = variant};
	struct guest_vm *gvm;
	struct guest_vcpu *v;
	struct guest_ucall uc;
	char msg[768];
	int ret;

	REQUIRE(guest_vm_create(KVM_X86_DEFAULT_VM, MEM, 0, &gvm) == 0);
	REQUIRE(guest_vcpu_add(gvm, &v) == 0);
	REQUIRE(guest_vm_load(gvm, "triple_fault", &opts) == 0);

	ret = guest_vcpu_run(v, &uc);
	CHECK(ret == UCALL_SYNC && uc.args[0] == variant);
	ret = guest_vcpu_run(v, &uc);
	if (ret != GUEST_EXIT || v->run->exit_reason != KVM_EXIT_SHUTDOWN) {
		printf("# expected KVM_EXIT_SHUTDOWN, got %s\n",
		       guest_describe(v, ret, &uc, msg, sizeof(msg)));
		tap_case_failed = 1;
	}
	guest_vm_destroy(gvm);
	tap_result(name);
}

int main(void)
{
	tap_plan(2, 30);
	run(0, "empty IDT, then #UD: KVM_EXIT_SHUTDOWN");
	run(1, "unmapped stack, #UD -> #PF -> #DF: KVM_EXIT_SHUTDOWN");
	return tap_done();
}

#endif
