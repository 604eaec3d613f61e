// SPDX-License-Identifier: MIT
/*
 * kvmclock, as KVM's x86.c keeps it.
 *
 * gmem's "host" clocksource is its TSC by construction: the host TSC is
 * CLOCK_MONOTONIC in ns (1 GHz, x86_host_ns()), and every vCPU's TSC is a
 * linear function of it.  So KVM's master clock (a TSC-based host clock
 * with matched vCPU TSCs) is what gmem always has once a vCPU exists, and
 * the kvmclock reads host ns + kvm->arch.kvmclock_offset whether it is
 * computed here (KVM_GET_CLOCK, exact at 1 GHz) or by the guest from its
 * pvclock structure and RDTSC.
 *
 * What KVM's master-clock condition comes down to here: at least one
 * vCPU (KVM counts none as unmatched), and the boot vCPU not on the old
 * MSR_KVM_SYSTEM_TIME.  gmem's vCPU TSCs are always matched (per VM from
 * its first vCPU); KVM's one-second matching window and a TSC observed
 * going backwards do not happen here.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <gmem/gmem.h>

#include "kvmclock.h"
#include "vcpu.h"
#include "vm.h"
#include "x86/x86.h"

#define NSEC_PER_SEC 1000000000ull

void gmem_kvmclock_scale(uint64_t base_hz, int8_t *shift, uint32_t *mul)
{
	uint64_t ns_hz = NSEC_PER_SEC, tick = base_hz;
	uint32_t t;
	int s = 0;

	/* First the tick rate down to 32 bits and at most twice 1 GHz, */
	while (tick > 2 * ns_hz || tick >> 32) {
		tick >>= 1;
		s--;
	}
	/* then up (or 1 GHz down) until it is above ns_hz, as KVM does. */
	t = (uint32_t)tick;
	while (t <= ns_hz || ns_hz >> 32) {
		if ((ns_hz >> 32) || (t & 0x80000000u))
			ns_hz >>= 1;
		else
			t <<= 1;
		s++;
	}
	*shift = (int8_t)s;
	*mul = (uint32_t)((ns_hz << 32) / t);
}

static uint64_t realtime_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * NSEC_PER_SEC + (uint64_t)ts.tv_nsec;
}

/* KVM's use_master_clock, under vcpus_lock. */
static bool master_clock(const struct gmem_vm *vm)
{
	return vm->nr_vcpus && !vm->boot_vcpu_old_kvmclock;
}

void gmem_kvmclock_request_all(struct gmem_vm *vm)
{
	pthread_mutex_lock(&vm->vcpus_lock);
	for (size_t i = 0; i < vm->nr_vcpus; i++)
		__atomic_store_n(&vm->vcpus[i]->clock_req, 1, __ATOMIC_RELEASE);
	pthread_mutex_unlock(&vm->vcpus_lock);
}

/*
 * KVM_GET_CLOCK (get_kvmclock()): with the master clock, the clock and
 * the host TSC and wall time it was read at (REALTIME | HOST_TSC |
 * TSC_STABLE); without it the clock alone, flags 0.
 */
int gmem_vm_get_clock(struct gmem_vm *vm, struct kvm_clock_data *data)
{
	uint64_t now;

	memset(data, 0, sizeof(*data));
	pthread_mutex_lock(&vm->vcpus_lock);
	now = x86_host_ns();
	data->clock = now + vm->kvmclock_offset;
	if (master_clock(vm)) {
		data->realtime = realtime_ns();
		data->host_tsc = now; /* the host TSC is the ns count */
		data->flags = KVM_CLOCK_REALTIME | KVM_CLOCK_HOST_TSC |
			      KVM_CLOCK_TSC_STABLE;
	}
	pthread_mutex_unlock(&vm->vcpus_lock);
	return 0;
}

/*
 * KVM_SET_CLOCK (kvm_vm_ioctl_set_clock()): flags beyond what GET gives
 * are -EINVAL; only REALTIME means something: the time that passed since
 * data->realtime is added, so the clock never steps back.  Every vCPU
 * rewrites its structure before it runs again.
 */
int gmem_vm_set_clock(struct gmem_vm *vm, const struct kvm_clock_data *data)
{
	uint64_t clock = data->clock, now, real;

	if (data->flags & ~(uint32_t)(KVM_CLOCK_TSC_STABLE |
				      KVM_CLOCK_REALTIME | KVM_CLOCK_HOST_TSC))
		return -EINVAL;
	pthread_mutex_lock(&vm->vcpus_lock);
	now = x86_host_ns();
	if (data->flags & KVM_CLOCK_REALTIME) {
		real = realtime_ns();
		if (real > data->realtime)
			clock += real - data->realtime;
	}
	vm->kvmclock_offset = clock - now;
	pthread_mutex_unlock(&vm->vcpus_lock);
	gmem_kvmclock_request_all(vm);
	return 0;
}

/*
 * kvm_guest_time_update() + kvm_setup_guest_pvclock(): the structure at
 * MSR_KVM_SYSTEM_TIME's GPA, made odd, filled, made even.  A GPA that is
 * not guest memory, or a structure across a page, is left alone (KVM's
 * pfn cache refuses both).
 */
static void write_pvclock(struct gmem_vcpu *vcpu)
{
	struct x86_cpu *c = vcpu->cpu;
	struct gmem_vm *vm = vcpu->vm;
	uint64_t gpa = c->kvm_system_time & ~1ull, now, offset;
	struct gmem_pvclock pv, cur;
	bool stable;

	if (!(c->kvm_system_time & 1) ||
	    (gpa & (PAGE_SIZE - 1)) + sizeof(pv) > PAGE_SIZE)
		return;
	pthread_mutex_lock(&vm->vcpus_lock);
	now = x86_host_ns();
	offset = vm->kvmclock_offset;
	stable = master_clock(vm);
	pthread_mutex_unlock(&vm->vcpus_lock);
	if (gmem_vcpu_copy_guest(vcpu, gpa, &cur, sizeof(cur), false))
		return;
	memset(&pv, 0, sizeof(pv));
	pv.version = (cur.version + 1) | 1;
	if (gmem_vcpu_copy_guest(vcpu, gpa, &pv.version, sizeof(pv.version),
				 true))
		return;
	pv.tsc_timestamp = x86_tsc_at(c, now);
	pv.system_time = now + offset;
	gmem_kvmclock_scale((uint64_t)c->tsc_khz * 1000, &pv.tsc_shift,
			    &pv.tsc_to_system_mul);
	/* The guest's GUEST_STOPPED stays until it clears it. */
	pv.flags = (stable ? GMEM_PVCLOCK_TSC_STABLE : 0) |
		   (cur.flags & GMEM_PVCLOCK_GUEST_STOPPED);
	if (__atomic_exchange_n(&vcpu->vmv.clock_stopped_req, 0,
				__ATOMIC_ACQUIRE))
		pv.flags |= GMEM_PVCLOCK_GUEST_STOPPED;
	__atomic_thread_fence(__ATOMIC_RELEASE);
	gmem_vcpu_copy_guest(vcpu, gpa, &pv, sizeof(pv), true);
	__atomic_thread_fence(__ATOMIC_RELEASE);
	pv.version++;
	gmem_vcpu_copy_guest(vcpu, gpa, &pv.version, sizeof(pv.version), true);
}

/*
 * kvm_write_wall_clock(): the wall time at which the kvmclock read 0,
 * between two version bumps (odd junk in the guest's version made even
 * first).  Seconds wrap at 2^32, as in KVM.
 */
static void write_wall_clock(struct gmem_vcpu *vcpu, uint64_t gpa)
{
	struct gmem_vm *vm = vcpu->vm;
	struct gmem_pvclock_wall wc;
	uint64_t epoch;
	uint32_t version;

	if (!gpa ||
	    gmem_vcpu_copy_guest(vcpu, gpa, &version, sizeof(version), false))
		return;
	if (version & 1)
		version++;
	version++;
	if (gmem_vcpu_copy_guest(vcpu, gpa, &version, sizeof(version), true))
		return;
	pthread_mutex_lock(&vm->vcpus_lock);
	epoch = realtime_ns() - (x86_host_ns() + vm->kvmclock_offset);
	pthread_mutex_unlock(&vm->vcpus_lock);
	wc.version = version;
	wc.sec = (uint32_t)(epoch / NSEC_PER_SEC);
	wc.nsec = (uint32_t)(epoch % NSEC_PER_SEC);
	gmem_vcpu_copy_guest(vcpu, gpa, &wc, sizeof(wc), true);
	version++;
	gmem_vcpu_copy_guest(vcpu, gpa, &version, sizeof(version), true);
}

void gmem_kvmclock_vcpu_work(struct gmem_vcpu *vcpu, bool host)
{
	struct x86_cpu *c = vcpu->cpu;
	struct gmem_vm *vm = vcpu->vm;
	unsigned pv = x86_take_pv(c);

	/* kvm_write_system_time(): the boot vCPU's choice of MSR. */
	if ((pv & (X86_PV_OLD | X86_PV_NEW)) && vcpu->vmv.id == 0) {
		bool old = pv & X86_PV_OLD;

		pthread_mutex_lock(&vm->vcpus_lock);
		if (vm->boot_vcpu_old_kvmclock != old) {
			vm->boot_vcpu_old_kvmclock = old;
			/* the master clock changed: everyone updates */
			for (size_t i = 0; i < vm->nr_vcpus; i++)
				__atomic_store_n(&vm->vcpus[i]->clock_req, 1,
						 __ATOMIC_RELEASE);
		}
		pthread_mutex_unlock(&vm->vcpus_lock);
	}
	if (pv & X86_PV_WALL)
		write_wall_clock(vcpu,
				 c->kvm_wall_clock
					 ? __atomic_load_n(c->kvm_wall_clock,
							   __ATOMIC_RELAXED)
					 : c->kvm_wall_clock_own);
	/* KVM_REQ_GLOBAL_CLOCK_UPDATE: every vCPU of the VM. */
	if (pv & X86_PV_CLOCK)
		gmem_kvmclock_request_all(vm);
	if (host)
		return;
	if (__atomic_exchange_n(&vcpu->vmv.clock_req, 0, __ATOMIC_ACQUIRE))
		write_pvclock(vcpu);
	if (pv & X86_PV_STEAL)
		gmem_steal_time_record(vcpu);
}

/*
 * kvm_set_guest_paused(): the VMM says it stopped the guest, which the
 * guest learns from PVCLOCK_GUEST_STOPPED at the next clock update (its
 * soft-lockup watchdog then lets the pause pass).  Only with kvmclock on.
 */
int gmem_vcpu_kvmclock_ctrl(struct gmem_vcpu *vcpu)
{
	if (!(vcpu->cpu->kvm_system_time & 1))
		return -EINVAL;
	__atomic_store_n(&vcpu->vmv.clock_stopped_req, 1, __ATOMIC_RELAXED);
	__atomic_store_n(&vcpu->vmv.clock_req, 1, __ATOMIC_RELEASE);
	return 0;
}

/*
 * The calling thread's run delay, the ns it has waited for a CPU (KVM's
 * current->sched_info.run_delay): /proc/thread-self/schedstat's second
 * field.  The file stays open while the same thread runs the vCPU.
 */
static int run_delay(struct gmem_vcpu *vcpu, uint64_t *ns)
{
	pid_t tid = gettid();
	char buf[96], *p;
	ssize_t n;

	if (vcpu->schedstat_fd < 0 || vcpu->schedstat_tid != tid) {
		if (vcpu->schedstat_fd >= 0)
			close(vcpu->schedstat_fd);
		vcpu->schedstat_fd = open("/proc/thread-self/schedstat",
					  O_RDONLY | O_CLOEXEC);
		vcpu->schedstat_tid = tid;
		if (vcpu->schedstat_fd < 0)
			return -errno;
	}
	n = pread(vcpu->schedstat_fd, buf, sizeof(buf) - 1, 0);
	if (n <= 0)
		return -EIO;
	buf[n] = 0;
	strtoull(buf, &p, 10);
	*ns = strtoull(p, NULL, 10);
	return 0;
}

bool gmem_steal_time_supported(void)
{
	return access("/proc/thread-self/schedstat", R_OK) == 0;
}

/* struct kvm_steal_time (asm/kvm_para.h): the fields KVM writes. */
#define ST_STEAL 0
#define ST_VERSION 8
#define ST_PREEMPTED 16

/*
 * record_steal_time(): preempted cleared (gmem does not see the host
 * preempt the thread, so it never sets it), then the steal between two
 * version bumps, an odd version (first use, junk) made even first.  The
 * structure is 64-byte aligned, so never across a page.
 */
void gmem_steal_time_record(struct gmem_vcpu *vcpu)
{
	uint64_t msr = vcpu->cpu->kvm_steal_time, gpa = msr & ~0x3full;
	uint64_t delay = 0, steal;
	uint32_t version;
	uint8_t zero = 0;

	if (!(msr & 1) || run_delay(vcpu, &delay))
		return;
	if (gmem_vcpu_copy_guest(vcpu, gpa + ST_PREEMPTED, &zero, 1, true) ||
	    gmem_vcpu_copy_guest(vcpu, gpa + ST_VERSION, &version,
				 sizeof(version), false))
		return;
	version += (version & 1) + 1;
	gmem_vcpu_copy_guest(vcpu, gpa + ST_VERSION, &version, sizeof(version),
			     true);
	__atomic_thread_fence(__ATOMIC_RELEASE);
	if (!gmem_vcpu_copy_guest(vcpu, gpa + ST_STEAL, &steal, sizeof(steal),
				  false)) {
		steal += delay - vcpu->steal_last;
		gmem_vcpu_copy_guest(vcpu, gpa + ST_STEAL, &steal,
				     sizeof(steal), true);
	}
	vcpu->steal_last = delay;
	__atomic_thread_fence(__ATOMIC_RELEASE);
	version++;
	gmem_vcpu_copy_guest(vcpu, gpa + ST_VERSION, &version, sizeof(version),
			     true);
}
