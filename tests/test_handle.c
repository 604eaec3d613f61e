// SPDX-License-Identifier: MIT
/*
 * The handle table: holds and release, numbers that share a handle,
 * external numbering with takeover of stale numbers, and fork.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <sys/wait.h>

#include <gmem/gmem.h>

#include "gmem_test.h"
#include "handle.h"

static int released;

static void count_release(void *obj)
{
	released++;
	CHECK_EQ((long)(uintptr_t)obj, 0x1234);
}

#define OBJ ((void *)(uintptr_t)0x1234)

static void test_holds(void)
{
	struct gmem_handle_ref ref;
	int n;

	released = 0;
	n = gmem_handle_alloc(GMEM_H_FILE, OBJ, count_release);
	REQUIRE(n >= GMEM_HANDLE_BASE);
	CHECK_RET(gmem_handle_get(n, &ref), 0);
	CHECK_EQ(ref.kind, GMEM_H_FILE);
	CHECK(ref.obj == OBJ);
	/* Closed while a lookup holds it: released only at the put. */
	CHECK_RET(gmem_handle_close(n), 0);
	CHECK_EQ(released, 0);
	CHECK_RET(gmem_handle_close(n), EBADF);
	CHECK_RET(gmem_handle_get(n, &(struct gmem_handle_ref){0}), EBADF);
	gmem_handle_put(&ref);
	CHECK_EQ(released, 1);
	tap_result("a close racing a lookup releases at the last put");
}

static void test_dup(void)
{
	struct gmem_handle_ref ref;
	int n, m;

	released = 0;
	n = gmem_handle_alloc(GMEM_H_VM, OBJ, count_release);
	REQUIRE(n >= 0);
	m = n + 100;
	CHECK_RET(gmem_handle_dup(n, m), 0);
	CHECK_RET(gmem_handle_dup(n + 200, m + 1), EBADF);
	CHECK(!gmem_handle_is_mapped(m + 1));
	CHECK_RET(gmem_handle_close(n), 0);
	CHECK_EQ(released, 0);
	CHECK_RET(gmem_handle_get(m, &ref), 0);
	CHECK(ref.obj == OBJ);
	gmem_handle_put(&ref);
	CHECK_RET(gmem_handle_forget(m), 0);
	CHECK_RET(gmem_handle_forget(m), EBADF);
	CHECK_EQ(released, 1);
	tap_result("dup'd numbers share one handle, released with the last");
}

static int next_number, returned[8], nr_returned;

static int fixed_reserve(enum gmem_handle_kind kind)
{
	return next_number;
}

static void fixed_release(int number)
{
	returned[nr_returned++ % 8] = number;
}

static const struct gmem_handle_numbering fixed = {
	.reserve = fixed_reserve,
	.release = fixed_release,
};

static void test_numbering(void)
{
	int a, b;

	released = nr_returned = 0;
	gmem_handle_set_numbering(&fixed);
	next_number = 700;
	a = gmem_handle_alloc(GMEM_H_VCPU, OBJ, count_release);
	CHECK_EQ(a, 700);
	/* The same number again: its fd was closed behind the table. */
	b = gmem_handle_alloc(GMEM_H_VCPU, OBJ, count_release);
	CHECK_EQ(b, 700);
	CHECK_EQ(released, 1);
	CHECK_EQ(nr_returned, 0);
	CHECK_RET(gmem_handle_close(b), 0);
	CHECK_EQ(released, 2);
	CHECK_EQ(nr_returned, 1);
	CHECK_EQ(returned[0], 700);
	/* Failure: the reserved number goes back. */
	gmem_test_fail_alloc(1);
	next_number = 1 << 20;
	CHECK_RET(gmem_handle_alloc(GMEM_H_VCPU, OBJ, count_release), ENOMEM);
	gmem_test_fail_alloc(0);
	CHECK_EQ(nr_returned, 2);
	CHECK_EQ(returned[1], 1 << 20);
	gmem_handle_set_numbering(NULL);
	tap_result("external numbers: stale ones taken over, given back");
}

static void test_fork(void)
{
	int sys = gmem_open(), vm, st;
	pid_t pid;

	REQUIRE(sys >= 0);
	vm = gmem_ioctl(sys, KVM_CREATE_VM, 0);
	REQUIRE(vm >= 0);
	gmem_handle_lock_all();
	pid = fork();
	REQUIRE(pid >= 0);
	if (pid == 0) {
		int ok;

		gmem_handle_unlock_all();
		gmem_handle_fork_child();
		ok = gmem_ioctl(vm, KVM_CHECK_EXTENSION, KVM_CAP_USER_MEMORY) ==
			     -1 &&
		     errno == EIO;
		ok &= gmem_ioctl(sys, KVM_GET_API_VERSION, 0) ==
		      KVM_API_VERSION;
		ok &= gmem_close(vm) == 0;
		_exit(ok ? 0 : 1);
	}
	gmem_handle_unlock_all();
	REQUIRE(waitpid(pid, &st, 0) == pid);
	CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	CHECK_EQ(gmem_ioctl(vm, KVM_CHECK_EXTENSION, KVM_CAP_USER_MEMORY), 1);
	CHECK_EQ(gmem_close(vm), 0);
	CHECK_EQ(gmem_close(sys), 0);
	tap_result(
		"a forked child gets EIO from its parent's VM, not /dev/kvm");
}

/* Objects of the race test: released ones must never be seen held. */
#define NOBJ 64
static atomic_int live[NOBJ];
static atomic_int bad, stop;
static atomic_long seen_total[2];

static void race_release(void *obj)
{
	atomic_fetch_sub(&live[(uintptr_t)obj], 1);
}

static void *reader(void *arg)
{
	atomic_long *seen = arg;

	while (!atomic_load(&stop)) {
		for (int fd = GMEM_HANDLE_BASE; fd < GMEM_HANDLE_BASE + 8;
		     fd++) {
			struct gmem_handle_ref ref;

			if (gmem_handle_get(fd, &ref))
				continue;
			if (atomic_load(&live[(uintptr_t)ref.obj]) <= 0)
				atomic_store(&bad, 1);
			atomic_fetch_add(seen, 1);
			gmem_handle_put(&ref);
		}
	}
	return NULL;
}

static void test_race(void)
{
	pthread_t t[2];
	long round;

	for (int i = 0; i < 2; i++)
		pthread_create(&t[i], NULL, reader, &seen_total[i]);
	/* Until both readers have held handles often enough (bounded). */
	for (round = 0;
	     round < 50000000 && (atomic_load(&seen_total[0]) < 2000 ||
				  atomic_load(&seen_total[1]) < 2000);
	     round++) {
		uintptr_t o = (uintptr_t)(round % NOBJ);
		int n;

		/*
		 * A count, not a flag: ids come round again while a reader may
		 * still hold an older handle of the same id.
		 */
		atomic_fetch_add(&live[o], 1);
		n = gmem_handle_alloc(GMEM_H_FILE, (void *)o, race_release);
		REQUIRE(n >= 0);
		CHECK_EQ(gmem_handle_close(n), 0);
	}
	atomic_store(&stop, 1);
	for (int i = 0; i < 2; i++)
		pthread_join(t[i], NULL);
	CHECK_EQ(atomic_load(&bad), 0);
	CHECK(atomic_load(&seen_total[0]) >= 2000);
	CHECK(atomic_load(&seen_total[1]) >= 2000);
	tap_diag("%ld rounds", round);
	tap_result(
		"lock-free lookups racing close and reuse hold live objects");
}

int main(void)
{
	tap_plan(5, 30);
	test_holds();
	test_dup();
	test_numbering();
	test_fork();
	test_race();
	return tap_done();
}
