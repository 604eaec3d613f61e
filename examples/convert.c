// SPDX-License-Identifier: MIT
/*
 * A VMM's first steps with gmem, through the KVM-style façade only: create
 * a software-protected VM, back 64 MiB of guest memory with a guest_memfd
 * plus shared userspace memory, convert ranges between shared and private
 * the way a VMM answers KVM_HC_MAP_GPA_RANGE, lock a range read-only, and
 * print the attribute map after each step.
 */
#include <errno.h>
#include <inttypes.h>
#include <linux/falloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include <gmem/gmem.h>
#include <gmem/kvm.h>

#define MEM_SIZE (64ULL << 20)
#define MiB (1ULL << 20)

static void die(const char *what)
{
	fprintf(stderr, "convert: %s: %s\n", what, strerror(errno));
	exit(1);
}

static const char *attr_name(uint64_t a)
{
	static char buf[64];

	if (a == KVM_MEMORY_ATTRIBUTE_PRIVATE)
		return "private";
	snprintf(buf, sizeof(buf), "shared %c%c%c",
		 a & KVM_MEMORY_ATTRIBUTE_NR ? '-' : 'r',
		 a & KVM_MEMORY_ATTRIBUTE_NW ? '-' : 'w',
		 a & KVM_MEMORY_ATTRIBUTE_NX ? '-' : 'x');
	return buf;
}

static void print_map(struct gmem_vm *vm, const char *step)
{
	struct gmem_attr_range r[16];
	uint64_t seq, at = 0;
	int n = gmem_vm_get_memory_attributes(vm, 0, MEM_SIZE, r, 16, &seq);

	printf("%s (seq %" PRIu64 "):\n", step, seq);
	for (int i = 0; i <= n && i <= 16; i++) {
		uint64_t next = i < n ? r[i].address : MEM_SIZE;

		if (next > at)
			printf("  0x%08" PRIx64 "-0x%08" PRIx64 "  %s\n", at,
			       next - 1, attr_name(0));
		if (i < n) {
			printf("  0x%08" PRIx64 "-0x%08" PRIx64 "  %s\n",
			       r[i].address, r[i].address + r[i].size - 1,
			       attr_name(r[i].attributes));
			at = r[i].address + r[i].size;
		}
	}
}

static void set_attrs(int vmfd, uint64_t gpa, uint64_t size, uint64_t attrs)
{
	struct kvm_memory_attributes a = {
		.address = gpa, .size = size, .attributes = attrs};

	if (gmem_ioctl(vmfd, KVM_SET_MEMORY_ATTRIBUTES, &a))
		die("KVM_SET_MEMORY_ATTRIBUTES");
}

int main(void)
{
	int sys, vmfd, memfd;
	struct gmem_vm *vm;
	void *shared;

	sys = gmem_open();
	if (sys < 0)
		die("gmem_open");
	printf("API version %d, attributes supported %#x, VM types %#x\n",
	       gmem_ioctl(sys, KVM_GET_API_VERSION, 0),
	       gmem_ioctl(sys, KVM_CHECK_EXTENSION, KVM_CAP_MEMORY_ATTRIBUTES),
	       gmem_ioctl(sys, KVM_CHECK_EXTENSION, KVM_CAP_VM_TYPES));

	vmfd = gmem_ioctl(sys, KVM_CREATE_VM, KVM_X86_SW_PROTECTED_VM);
	if (vmfd < 0)
		die("KVM_CREATE_VM");
	/* The façade has no query for the map; the typed API does. */
	if (gmem_vm_from_handle(vmfd, &vm))
		die("gmem_vm_from_handle");

	struct kvm_create_guest_memfd cg = {.size = MEM_SIZE};
	memfd = gmem_ioctl(vmfd, KVM_CREATE_GUEST_MEMFD, &cg);
	if (memfd < 0)
		die("KVM_CREATE_GUEST_MEMFD");
	shared = mmap(NULL, MEM_SIZE, PROT_READ | PROT_WRITE,
		      MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (shared == MAP_FAILED)
		die("mmap");

	struct kvm_userspace_memory_region2 region = {
		.slot = 0,
		.flags = KVM_MEM_GUEST_MEMFD,
		.guest_phys_addr = 0,
		.memory_size = MEM_SIZE,
		.userspace_addr = (uintptr_t)shared,
		.guest_memfd = (uint32_t)memfd,
		.guest_memfd_offset = 0,
	};
	if (gmem_ioctl(vmfd, KVM_SET_USER_MEMORY_REGION2, &region))
		die("KVM_SET_USER_MEMORY_REGION2");
	printf("VM handle %d, guest_memfd handle %d bound at GPA 0, %llu MiB\n",
	       vmfd, memfd, MEM_SIZE / MiB);

	/* A guest that starts private, as a confidential guest does. */
	set_attrs(vmfd, 0, MEM_SIZE, KVM_MEMORY_ATTRIBUTE_PRIVATE);
	if (gmem_fallocate(memfd, FALLOC_FL_KEEP_SIZE, 0, 16 * MiB))
		die("fallocate");
	print_map(vm, "all private, first 16 MiB allocated");

	/*
	 * The guest shares a 2 MiB bounce buffer (MAP_GPA_RANGE, decrypted):
	 * the VMM clears PRIVATE and punches the private pages out.
	 */
	set_attrs(vmfd, 8 * MiB, 2 * MiB, 0);
	if (gmem_fallocate(memfd, FALLOC_FL_KEEP_SIZE | FALLOC_FL_PUNCH_HOLE,
			   8 * MiB, 2 * MiB))
		die("punch hole");
	print_map(vm, "2 MiB at 8 MiB converted to shared");

	/* The guest locks the first 4 KiB of that buffer read-only. */
	set_attrs(vmfd, 8 * MiB, 4096, KVM_MEMORY_ATTRIBUTE_NW);
	print_map(vm, "one page locked no-write");

	/* Invalid requests change nothing and say why. */
	struct kvm_memory_attributes bad = {
		.address = 0,
		.size = 4096,
		.attributes =
			KVM_MEMORY_ATTRIBUTE_PRIVATE | KVM_MEMORY_ATTRIBUTE_NW};
	if (gmem_ioctl(vmfd, KVM_SET_MEMORY_ATTRIBUTES, &bad) == 0)
		die("PRIVATE|NW accepted");
	printf("PRIVATE|NW refused: %s\n", strerror(errno));
	char buf[16];
	if (gmem_read(memfd, buf, sizeof(buf)) >= 0)
		die("guest_memfd readable");
	printf("read(guest_memfd) refused: %s\n", strerror(errno));

	/* Back to private; 1 TiB of attributes costs the same as 4 KiB. */
	set_attrs(vmfd, 8 * MiB, 2 * MiB, KVM_MEMORY_ATTRIBUTE_PRIVATE);
	set_attrs(vmfd, 1ULL << 40, 1ULL << 40, KVM_MEMORY_ATTRIBUTE_NX);
	printf("converted back; 1 TiB at 1 TiB set no-exec in one call\n");

	gmem_vm_put(vm);
	gmem_close(memfd);
	gmem_close(vmfd);
	gmem_close(sys);
	munmap(shared, MEM_SIZE);
	return 0;
}
