// SPDX-License-Identifier: MIT
/*
 * The uAPI must be binary-identical to Linux's linux/kvm.h (DESIGN §2):
 * structure sizes and field offsets, constant values, ioctl numbers.  The
 * expected numbers are Linux's, written out, not derived from our header.
 */
#include "gmem_test.h"

#define CHECK_OFF(type, field, off) CHECK_EQ(offsetof(type, field), (off))

static void test_attributes(void)
{
	CHECK_EQ(KVM_MEMORY_ATTRIBUTE_NR, 1);
	CHECK_EQ(KVM_MEMORY_ATTRIBUTE_NW, 2);
	CHECK_EQ(KVM_MEMORY_ATTRIBUTE_NX, 4);
	CHECK_EQ(KVM_MEMORY_ATTRIBUTE_PRIVATE, 8);
	CHECK_EQ(sizeof(struct kvm_memory_attributes), 32);
	CHECK_OFF(struct kvm_memory_attributes, address, 0);
	CHECK_OFF(struct kvm_memory_attributes, size, 8);
	CHECK_OFF(struct kvm_memory_attributes, attributes, 16);
	CHECK_OFF(struct kvm_memory_attributes, flags, 24);
	tap_result("kvm_memory_attributes and attribute bits");
}

static void test_guest_memfd(void)
{
	CHECK_EQ(sizeof(struct kvm_create_guest_memfd), 64);
	CHECK_OFF(struct kvm_create_guest_memfd, size, 0);
	CHECK_OFF(struct kvm_create_guest_memfd, flags, 8);
	CHECK_OFF(struct kvm_create_guest_memfd, reserved, 16);
	tap_result("kvm_create_guest_memfd layout");
}

static void test_region(void)
{
	CHECK_EQ(sizeof(struct kvm_userspace_memory_region), 32);
	CHECK_OFF(struct kvm_userspace_memory_region, slot, 0);
	CHECK_OFF(struct kvm_userspace_memory_region, flags, 4);
	CHECK_OFF(struct kvm_userspace_memory_region, guest_phys_addr, 8);
	CHECK_OFF(struct kvm_userspace_memory_region, memory_size, 16);
	CHECK_OFF(struct kvm_userspace_memory_region, userspace_addr, 24);

	CHECK_EQ(sizeof(struct kvm_userspace_memory_region2), 160);
	CHECK_OFF(struct kvm_userspace_memory_region2, slot, 0);
	CHECK_OFF(struct kvm_userspace_memory_region2, flags, 4);
	CHECK_OFF(struct kvm_userspace_memory_region2, guest_phys_addr, 8);
	CHECK_OFF(struct kvm_userspace_memory_region2, memory_size, 16);
	CHECK_OFF(struct kvm_userspace_memory_region2, userspace_addr, 24);
	CHECK_OFF(struct kvm_userspace_memory_region2, guest_memfd_offset, 32);
	CHECK_OFF(struct kvm_userspace_memory_region2, guest_memfd, 40);
	CHECK_OFF(struct kvm_userspace_memory_region2, pad1, 44);
	CHECK_OFF(struct kvm_userspace_memory_region2, pad2, 48);

	CHECK_EQ(KVM_MEM_LOG_DIRTY_PAGES, 1);
	CHECK_EQ(KVM_MEM_READONLY, 2);
	CHECK_EQ(KVM_MEM_GUEST_MEMFD, 4);
	CHECK_EQ(KVM_MEM_EXECONLY, 8);
	tap_result("memory region structs and slot flags");
}

static void test_enable_cap(void)
{
	CHECK_EQ(sizeof(struct kvm_enable_cap), 104);
	CHECK_OFF(struct kvm_enable_cap, cap, 0);
	CHECK_OFF(struct kvm_enable_cap, flags, 4);
	CHECK_OFF(struct kvm_enable_cap, args, 8);
	CHECK_OFF(struct kvm_enable_cap, pad, 40);
	tap_result("kvm_enable_cap layout");
}

static void test_run(void)
{
	CHECK_EQ(sizeof(struct kvm_run), 2352);
	CHECK_OFF(struct kvm_run, request_interrupt_window, 0);
	CHECK_OFF(struct kvm_run, immediate_exit, 1);
	CHECK_OFF(struct kvm_run, exit_reason, 8);
	CHECK_OFF(struct kvm_run, ready_for_interrupt_injection, 12);
	CHECK_OFF(struct kvm_run, if_flag, 13);
	CHECK_OFF(struct kvm_run, flags, 14);
	CHECK_OFF(struct kvm_run, cr8, 16);
	CHECK_OFF(struct kvm_run, apic_base, 24);
	CHECK_OFF(struct kvm_run, ex.exception, 32);
	CHECK_OFF(struct kvm_run, ex.error_code, 36);
	CHECK_OFF(struct kvm_run, io.direction, 32);
	CHECK_OFF(struct kvm_run, io.size, 33);
	CHECK_OFF(struct kvm_run, io.port, 34);
	CHECK_OFF(struct kvm_run, io.count, 36);
	CHECK_OFF(struct kvm_run, io.data_offset, 40);
	CHECK_OFF(struct kvm_run, mmio.phys_addr, 32);
	CHECK_OFF(struct kvm_run, mmio.data, 40);
	CHECK_OFF(struct kvm_run, mmio.len, 48);
	CHECK_OFF(struct kvm_run, mmio.is_write, 52);
	CHECK_OFF(struct kvm_run, hypercall.nr, 32);
	CHECK_OFF(struct kvm_run, hypercall.args, 40);
	CHECK_OFF(struct kvm_run, hypercall.ret, 88);
	CHECK_OFF(struct kvm_run, hypercall.longmode, 96);
	CHECK_OFF(struct kvm_run, internal.suberror, 32);
	CHECK_OFF(struct kvm_run, internal.ndata, 36);
	CHECK_OFF(struct kvm_run, internal.data, 40);
	CHECK_OFF(struct kvm_run, memory_fault.flags, 32);
	CHECK_OFF(struct kvm_run, memory_fault.gpa, 40);
	CHECK_OFF(struct kvm_run, memory_fault.size, 48);
	CHECK_OFF(struct kvm_run, kvm_valid_regs, 288);
	CHECK_OFF(struct kvm_run, kvm_dirty_regs, 296);
	CHECK_OFF(struct kvm_run, s, 304);
	CHECK_OFF(struct kvm_run, s.regs.regs, 304);
	CHECK_OFF(struct kvm_run, s.regs.sregs, 448);
	CHECK_OFF(struct kvm_run, s.regs.events, 760);
	CHECK_EQ(sizeof(((struct kvm_run *)0)->s), 2048);
	tap_result("kvm_run layout");
}

static void test_exits(void)
{
	CHECK_EQ(KVM_EXIT_UNKNOWN, 0);
	CHECK_EQ(KVM_EXIT_EXCEPTION, 1);
	CHECK_EQ(KVM_EXIT_IO, 2);
	CHECK_EQ(KVM_EXIT_HYPERCALL, 3);
	CHECK_EQ(KVM_EXIT_DEBUG, 4);
	CHECK_EQ(KVM_EXIT_HLT, 5);
	CHECK_EQ(KVM_EXIT_MMIO, 6);
	CHECK_EQ(KVM_EXIT_SHUTDOWN, 8);
	CHECK_EQ(KVM_EXIT_FAIL_ENTRY, 9);
	CHECK_EQ(KVM_EXIT_INTR, 10);
	CHECK_EQ(KVM_EXIT_INTERNAL_ERROR, 17);
	CHECK_EQ(KVM_EXIT_MEMORY_FAULT, 39);
	CHECK_EQ(KVM_EXIT_IO_IN, 0);
	CHECK_EQ(KVM_EXIT_IO_OUT, 1);
	CHECK_EQ(KVM_INTERNAL_ERROR_EMULATION, 1);
	CHECK_EQ(KVM_MEMORY_EXIT_FLAG_PRIVATE, 8);
	/* gmem's access flags: the bit of the attribute that denied it. */
	CHECK_EQ(KVM_MEMORY_EXIT_FLAG_READ, KVM_MEMORY_ATTRIBUTE_NR);
	CHECK_EQ(KVM_MEMORY_EXIT_FLAG_WRITE, KVM_MEMORY_ATTRIBUTE_NW);
	CHECK_EQ(KVM_MEMORY_EXIT_FLAG_EXEC, KVM_MEMORY_ATTRIBUTE_NX);
	CHECK_EQ(KVM_MEMORY_EXIT_FLAG_READ, 1);
	CHECK_EQ(KVM_MEMORY_EXIT_FLAG_WRITE, 2);
	CHECK_EQ(KVM_MEMORY_EXIT_FLAG_EXEC, 4);
	tap_result("exit reasons and memory-fault flags");
}

static void test_hypercall(void)
{
	CHECK_EQ(KVM_HC_MAP_GPA_RANGE, 12);
	CHECK_EQ(KVM_MAP_GPA_RANGE_ENCRYPTED, 1 << 4);
	CHECK_EQ(KVM_MAP_GPA_RANGE_DECRYPTED, 0);
	CHECK_EQ(KVM_MAP_GPA_RANGE_PAGE_SZ_4K, 0);
	CHECK_EQ(KVM_MAP_GPA_RANGE_PAGE_SZ_2M, 1);
	CHECK_EQ(KVM_MAP_GPA_RANGE_PAGE_SZ_1G, 2);
	CHECK_EQ(KVM_ENOSYS, 1000);
	tap_result("hypercall constants");
}

static void test_caps(void)
{
	CHECK_EQ(KVM_API_VERSION, 12);
	CHECK_EQ(KVM_X86_DEFAULT_VM, 0);
	CHECK_EQ(KVM_X86_SW_PROTECTED_VM, 1);
	CHECK_EQ(KVM_CAP_USER_MEMORY, 3);
	CHECK_EQ(KVM_CAP_NR_VCPUS, 9);
	CHECK_EQ(KVM_CAP_NR_MEMSLOTS, 10);
	CHECK_EQ(KVM_CAP_MAX_VCPUS, 66);
	CHECK_EQ(KVM_CAP_READONLY_MEM, 81);
	CHECK_EQ(KVM_CAP_IMMEDIATE_EXIT, 136);
	CHECK_EQ(KVM_CAP_MMU_SHADOW_CACHE_CONTROL, 2);
	CHECK_EQ(KVM_CAP_SET_TSS_ADDR, 4);
	CHECK_EQ(KVM_CAP_EXT_CPUID, 7);
	CHECK_EQ(KVM_CAP_MP_STATE, 14);
	CHECK_EQ(KVM_CAP_SET_IDENTITY_MAP_ADDR, 37);
	CHECK_EQ(KVM_CAP_SET_BOOT_CPU_ID, 34);
	CHECK_EQ(KVM_CAP_MSR_PLATFORM_INFO, 159);
	CHECK_EQ(KVM_CAP_EXIT_ON_EMULATION_FAILURE, 204);
	CHECK_EQ(KVM_CAP_SMALLER_MAXPHYADDR, 185);
	CHECK_EQ(KVM_CAP_TSC_CONTROL, 60);
	CHECK_EQ(KVM_CAP_GET_TSC_KHZ, 61);
	CHECK_EQ(KVM_CAP_ENABLE_CAP_VM, 98);
	CHECK_EQ(KVM_CAP_CHECK_EXTENSION_VM, 105);
	CHECK_EQ(KVM_CAP_MAX_VCPU_ID, 128);
	CHECK_EQ(KVM_CAP_VM_TSC_CONTROL, 214);
	CHECK_EQ(KVM_CAP_XSAVE, 55);
	CHECK_EQ(KVM_CAP_XCRS, 56);
	CHECK_EQ(KVM_CAP_XSAVE2, 208);
	CHECK_EQ(KVM_MAX_XCRS, 16);
	CHECK_EQ(KVM_CAP_VCPU_EVENTS, 41);
	CHECK_EQ(KVM_CAP_DEBUGREGS, 50);
	CHECK_EQ(KVM_CAP_GET_MSR_FEATURES, 153);
	CHECK_EQ(KVM_CAP_NESTED_STATE, 157);
	CHECK_EQ(KVM_CAP_EXCEPTION_PAYLOAD, 164);
	CHECK_EQ(KVM_CAP_SYNC_REGS, 74);
	CHECK_EQ(KVM_SYNC_X86_REGS, 1);
	CHECK_EQ(KVM_SYNC_X86_SREGS, 2);
	CHECK_EQ(KVM_SYNC_X86_EVENTS, 4);
	CHECK_EQ(KVM_SYNC_X86_VALID_FIELDS, 7);
	CHECK_EQ(KVM_VCPUEVENT_VALID_NMI_PENDING, 1);
	CHECK_EQ(KVM_VCPUEVENT_VALID_SIPI_VECTOR, 2);
	CHECK_EQ(KVM_VCPUEVENT_VALID_SHADOW, 4);
	CHECK_EQ(KVM_VCPUEVENT_VALID_SMM, 8);
	CHECK_EQ(KVM_VCPUEVENT_VALID_PAYLOAD, 0x10);
	CHECK_EQ(KVM_VCPUEVENT_VALID_TRIPLE_FAULT, 0x20);
	CHECK_EQ(KVM_X86_SHADOW_INT_MOV_SS, 1);
	CHECK_EQ(KVM_X86_SHADOW_INT_STI, 2);
	CHECK_EQ(KVM_MP_STATE_RUNNABLE, 0);
	CHECK_EQ(KVM_MP_STATE_SUSPENDED, 10);
	CHECK_EQ(KVM_CAP_EXIT_HYPERCALL, 201);
	CHECK_EQ(KVM_CAP_USER_MEMORY2, 231);
	CHECK_EQ(KVM_CAP_MEMORY_FAULT_INFO, 232);
	CHECK_EQ(KVM_CAP_MEMORY_ATTRIBUTES, 233);
	CHECK_EQ(KVM_CAP_GUEST_MEMFD, 234);
	CHECK_EQ(KVM_CAP_VM_TYPES, 235);
	CHECK_EQ(GMEM_CAP_EXEC_ONLY, 0x10001);
	CHECK_EQ(GMEM_CAP_XO_ALIAS, 0x10002);
	tap_result("capability numbers and VM types");
}

static void test_ioctls(void)
{
	CHECK_EQ(KVM_GET_API_VERSION, 0xae00);
	CHECK_EQ(KVM_CREATE_VM, 0xae01);
	CHECK_EQ(KVM_CHECK_EXTENSION, 0xae03);
	CHECK_EQ(KVM_GET_VCPU_MMAP_SIZE, 0xae04);
	CHECK_EQ(KVM_GET_SUPPORTED_CPUID, 0xc008ae05);
	CHECK_EQ(KVM_CREATE_VCPU, 0xae41);
	CHECK_EQ(KVM_SET_USER_MEMORY_REGION, 0x4020ae46);
	CHECK_EQ(KVM_SET_USER_MEMORY_REGION2, 0x40a0ae49);
	CHECK_EQ(KVM_ENABLE_CAP, 0x4068aea3);
	CHECK_EQ(KVM_SET_MEMORY_ATTRIBUTES, 0x4020aed2);
	CHECK_EQ(KVM_CREATE_GUEST_MEMFD, 0xc040aed4);
	CHECK_EQ(KVM_RUN, 0xae80);
	CHECK_EQ(KVM_GET_REGS, 0x8090ae81);
	CHECK_EQ(KVM_SET_REGS, 0x4090ae82);
	CHECK_EQ(KVM_GET_SREGS, 0x8138ae83);
	CHECK_EQ(KVM_SET_SREGS, 0x4138ae84);
	CHECK_EQ(KVM_GET_MSRS, 0xc008ae88);
	CHECK_EQ(KVM_SET_MSRS, 0x4008ae89);
	CHECK_EQ(KVM_SET_CPUID2, 0x4008ae90);
	CHECK_EQ(KVM_GET_CPUID2, 0xc008ae91);
	CHECK_EQ(KVM_GET_MP_STATE, 0x8004ae98);
	CHECK_EQ(KVM_SET_MP_STATE, 0x4004ae99);
	CHECK_EQ(KVM_SET_TSC_KHZ, 0xaea2);
	CHECK_EQ(KVM_GET_TSC_KHZ, 0xaea3);
	CHECK_EQ(KVM_SET_TSS_ADDR, 0xae47);
	CHECK_EQ(KVM_SET_IDENTITY_MAP_ADDR, 0x4008ae48);
	CHECK_EQ(KVM_SET_BOOT_CPU_ID, 0xae78);
	CHECK_EQ(KVM_SET_NR_MMU_PAGES, 0xae44);
	CHECK_EQ(KVM_GET_NR_MMU_PAGES, 0xae45);
	CHECK_EQ(KVM_GET_FPU, 0x81a0ae8c);
	CHECK_EQ(KVM_SET_FPU, 0x41a0ae8d);
	CHECK_EQ(KVM_GET_XSAVE, 0x9000aea4);
	CHECK_EQ(KVM_SET_XSAVE, 0x5000aea5);
	CHECK_EQ(KVM_GET_XSAVE2, 0x9000aecf);
	CHECK_EQ(KVM_GET_XCRS, 0x8188aea6);
	CHECK_EQ(KVM_SET_XCRS, 0x4188aea7);
	CHECK_EQ(KVM_X86_SET_MSR_FILTER, 0x4188aec6);
	CHECK_EQ(KVM_CAP_X86_USER_SPACE_MSR, 188);
	CHECK_EQ(KVM_CAP_X86_MSR_FILTER, 189);
	CHECK_EQ(KVM_EXIT_X86_RDMSR, 29);
	CHECK_EQ(KVM_EXIT_X86_WRMSR, 30);
	CHECK_EQ(KVM_GET_MSR_INDEX_LIST, 0xc004ae02);
	CHECK_EQ(KVM_GET_MSR_FEATURE_INDEX_LIST, 0xc004ae0a);
	CHECK_EQ(KVM_GET_VCPU_EVENTS, 0x8040ae9f);
	CHECK_EQ(KVM_SET_VCPU_EVENTS, 0x4040aea0);
	CHECK_EQ(KVM_GET_DEBUGREGS, 0x8080aea1);
	CHECK_EQ(KVM_SET_DEBUGREGS, 0x4080aea2);
	tap_result("ioctl numbers equal Linux's");
}

static void test_vcpu_structs(void)
{
	CHECK_EQ(sizeof(struct kvm_regs), 144);
	CHECK_OFF(struct kvm_regs, rip, 128);
	CHECK_OFF(struct kvm_regs, rflags, 136);
	CHECK_EQ(sizeof(struct kvm_segment), 24);
	CHECK_EQ(sizeof(struct kvm_dtable), 16);
	CHECK_EQ(sizeof(struct kvm_sregs), 312);
	CHECK_OFF(struct kvm_sregs, gdt, 192);
	CHECK_OFF(struct kvm_sregs, cr0, 224);
	CHECK_OFF(struct kvm_sregs, efer, 264);
	CHECK_OFF(struct kvm_sregs, interrupt_bitmap, 280);
	CHECK_EQ(sizeof(struct kvm_msr_entry), 16);
	CHECK_EQ(sizeof(struct kvm_msr_list), 4);
	CHECK_OFF(struct kvm_msr_list, indices, 4);
	CHECK_EQ(sizeof(struct kvm_vcpu_events), 64);
	CHECK_OFF(struct kvm_vcpu_events, interrupt, 8);
	CHECK_OFF(struct kvm_vcpu_events, nmi, 12);
	CHECK_OFF(struct kvm_vcpu_events, sipi_vector, 16);
	CHECK_OFF(struct kvm_vcpu_events, flags, 20);
	CHECK_OFF(struct kvm_vcpu_events, smi, 24);
	CHECK_OFF(struct kvm_vcpu_events, triple_fault, 28);
	CHECK_OFF(struct kvm_vcpu_events, exception_has_payload, 55);
	CHECK_OFF(struct kvm_vcpu_events, exception_payload, 56);
	CHECK_EQ(sizeof(struct kvm_debugregs), 128);
	CHECK_OFF(struct kvm_debugregs, dr6, 32);
	CHECK_OFF(struct kvm_debugregs, dr7, 40);
	CHECK_OFF(struct kvm_debugregs, flags, 48);
	CHECK_EQ(sizeof(struct kvm_msrs), 8);
	CHECK_EQ(sizeof(struct kvm_cpuid_entry2), 40);
	CHECK_EQ(sizeof(struct kvm_cpuid2), 8);
	CHECK_EQ(sizeof(struct kvm_fpu), 416);
	CHECK_OFF(struct kvm_fpu, fcw, 128);
	CHECK_OFF(struct kvm_fpu, ftwx, 132);
	CHECK_OFF(struct kvm_fpu, last_opcode, 134);
	CHECK_OFF(struct kvm_fpu, last_ip, 136);
	CHECK_OFF(struct kvm_fpu, last_dp, 144);
	CHECK_OFF(struct kvm_fpu, xmm, 152);
	CHECK_OFF(struct kvm_fpu, mxcsr, 408);
	CHECK_EQ(sizeof(struct kvm_xsave), 4096);
	CHECK_EQ(sizeof(struct kvm_xcr), 16);
	CHECK_EQ(sizeof(struct kvm_xcrs), 392);
	CHECK_OFF(struct kvm_xcrs, xcrs, 8);
	CHECK_OFF(struct kvm_xcrs, padding, 264);
	CHECK_EQ(sizeof(struct kvm_msr_filter_range), 24);
	CHECK_OFF(struct kvm_msr_filter_range, bitmap, 16);
	CHECK_EQ(sizeof(struct kvm_msr_filter), 392);
	CHECK_OFF(struct kvm_msr_filter, ranges, 8);
	CHECK_OFF(struct kvm_run, msr.reason, 40);
	CHECK_OFF(struct kvm_run, msr.index, 44);
	tap_result("vCPU register structs");
}

int main(void)
{
	tap_plan(10, 10);
	test_attributes();
	test_guest_memfd();
	test_region();
	test_enable_cap();
	test_run();
	test_exits();
	test_hypercall();
	test_caps();
	test_ioctls();
	test_vcpu_structs();
	return tap_done();
}
