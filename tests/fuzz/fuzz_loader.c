// SPDX-License-Identifier: MIT
/*
 * libFuzzer target: the ELF loader (<gmem/loader.h>) on arbitrary bytes.
 *
 * The input is the image; its last byte (when there is one) also picks
 * the options, so the fuzzer reaches the layout checks with every flag,
 * vCPU count and stack size.  gmem_load_check() must accept or refuse
 * without reading outside the image (ASan), and gmem_load_elf() must agree
 * with it and then write only inside guest RAM: the slot's memory is one
 * heap block, so a stray write lands in a redzone.  What an accepted image
 * claims must also be consistent (entry and stacks inside RAM).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <gmem/loader.h>

#define MEM_SIZE (8ull << 20)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void fail(const char *what, long a, long b)
{
	fprintf(stderr, "fuzz_loader: %s (%ld, %ld)\n", what, a, b);
	abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static uint8_t *ram;
	struct kvm_userspace_memory_region2 slot;
	struct gmem_load_opts opts;
	struct gmem_load_info ci, li;
	struct gmem_vm *vm;
	struct gmem_vcpu *vcpu;
	uint8_t *image;
	uint8_t o = size ? data[size - 1] : 0;
	int rc, rl;

	if (!ram && !(ram = aligned_alloc(4096, MEM_SIZE)))
		abort();
	/* A copy exactly as large as the input: ASan sees any overread. */
	image = malloc(size ? size : 1);
	if (!image)
		abort();
	memcpy(image, data, size);

	memset(&opts, 0, sizeof(opts));
	opts.mem_size = o & 0x80 ? MEM_SIZE / 2 : MEM_SIZE;
	opts.nr_cpus = (o >> 4) & 7;
	opts.flags = o & 7 & GMEM_LOAD_FLAGS_ALL;
	opts.stack_size = o & 8 ? 3 * 4096 : 0;

	rc = gmem_load_check(image, size, &opts, &ci);
	if (rc == 0 &&
	    (ci.entry >= opts.mem_size || ci.free_start > ci.free_end ||
	     ci.free_end > opts.mem_size))
		fail("accepted layout outside RAM", (long)ci.entry,
		     (long)ci.free_end);

	if (gmem_vm_create(KVM_X86_DEFAULT_VM, &vm))
		abort();
	memset(&slot, 0, sizeof(slot));
	slot.memory_size = MEM_SIZE;
	slot.userspace_addr = (uintptr_t)ram;
	if (gmem_vm_set_memory_region2(vm, &slot) ||
	    gmem_vcpu_create(vm, 0, &vcpu))
		abort();
	rl = gmem_load_elf(vcpu, image, size, &opts, &li);
	if (rl != rc)
		fail("gmem_load_elf and gmem_load_check disagree", rl, rc);
	if (rl == 0 && (li.entry != ci.entry || li.cr3 != ci.cr3))
		fail("load and check computed different layouts",
		     (long)li.entry, (long)ci.entry);
	gmem_vcpu_destroy(vcpu);
	gmem_vm_put(vm);
	free(image);
	return 0;
}
