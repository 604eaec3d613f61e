/* SPDX-License-Identifier: MIT */
/*
 * kvmclock: KVM's paravirtual clock (KVM_GET/SET_CLOCK, the
 * MSR_KVM_SYSTEM_TIME and MSR_KVM_WALL_CLOCK structures in guest memory),
 * and its other paravirtual time, steal time (MSR_KVM_STEAL_TIME).
 */
#ifndef GMEM_KVMCLOCK_H
#define GMEM_KVMCLOCK_H

#include <stdbool.h>
#include <stdint.h>

struct gmem_vm;
struct gmem_vcpu;

/*
 * The guest ABI (arch/x86/include/asm/pvclock-abi.h): the clock in ns is
 * system_time + ((tsc - tsc_timestamp) scaled by tsc_shift (a left shift,
 * right if negative) then * tsc_to_system_mul / 2^32), valid while
 * version is even and unchanged across the read.
 */
struct gmem_pvclock {
	uint32_t version;
	uint32_t pad0;
	uint64_t tsc_timestamp;
	uint64_t system_time;
	uint32_t tsc_to_system_mul;
	int8_t tsc_shift;
	uint8_t flags;
	uint8_t pad[2];
};

struct gmem_pvclock_wall {
	uint32_t version;
	uint32_t sec;
	uint32_t nsec;
};

#define GMEM_PVCLOCK_TSC_STABLE 1
#define GMEM_PVCLOCK_GUEST_STOPPED 2

/* KVM_REQ_CLOCK_UPDATE for every vCPU of @vm (a new vCPU, a set clock). */
void gmem_kvmclock_request_all(struct gmem_vm *vm);
/*
 * Before @vcpu runs guest code: the X86_PV_* work its WRMSRs left, and a
 * pending clock update.  @host: a KVM_SET_MSRS, whose system-time write
 * is only requested (KVM writes the structure at the next entry).
 */
void gmem_kvmclock_vcpu_work(struct gmem_vcpu *vcpu, bool host);
/*
 * record_steal_time(): with MSR_KVM_STEAL_TIME enabled, the run delay of
 * the calling thread since the last record is added to the guest's
 * struct kvm_steal_time.  At each KVM_RUN and after the guest enables it.
 */
void gmem_steal_time_record(struct gmem_vcpu *vcpu);
/* Whether the host gives threads' run delays (KVM's sched_info_on()). */
bool gmem_steal_time_supported(void);
/* kvm_get_time_scale(): mul/shift that turn @base_hz ticks into ns. */
void gmem_kvmclock_scale(uint64_t base_hz, int8_t *shift, uint32_t *mul);

#endif /* GMEM_KVMCLOCK_H */
