// SPDX-License-Identifier: MIT
/*
 * Randomized comparison against the reference model (tests/model.h,
 * DESIGN §7): a seeded xorshift sequence of operations on two VMs, every
 * result and the state after every step checked against the model.
 *
 * Usage: test_model [seed [steps]]; or $GMEM_SEED and $GMEM_MODEL_STEPS.
 */
#include "model.h"

static uint64_t rng;

static uint64_t rnd(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

/* The report is enough; the loop below stops at the first mismatch. */
static void model_mismatch_hook(void)
{
}

static uint64_t env_or(const char *name, const char *arg, uint64_t def)
{
	const char *s = arg ? arg : getenv(name);

	return s && *s ? strtoull(s, NULL, 0) : def;
}

int main(int argc, char **argv)
{
	uint64_t seed, steps;
	struct timespec t0, t1;
	double secs;

	seed = env_or("GMEM_SEED", argc > 1 ? argv[1] : NULL,
		      (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 20));
	steps = env_or("GMEM_MODEL_STEPS", argc > 2 ? argv[2] : NULL, 1000000);
	if (!seed)
		seed = 1;
	tap_plan(3, 300);
	tap_diag("seed %" PRIu64 " (rerun: %s %" PRIu64 "), %" PRIu64 " steps",
		 seed, argv[0], seed, steps);
	rng = seed;
	model_init();

	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (step = 0; step < (long)steps && !failed; step++)
		one_step();
	clock_gettime(CLOCK_MONOTONIC, &t1);
	secs = (double)(t1.tv_sec - t0.tv_sec) +
	       (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
	tap_diag("%ld steps in %.2f s", step, secs);
	print_stats();
	if (failed)
		tap_case_failed = 1;
	tap_result("random operations agree with the model");

	/* a final look at every slot id and both maps */
	for (int v = 0; v < NVM && !failed; v++) {
		for (uint32_t id = 0; id < NSLOT; id++)
			check_slot(&vms[v], id);
		compare_all(&vms[v], SEQ_STAYS);
	}
	if (failed)
		tap_case_failed = 1;
	tap_result("final state agrees with the model");

	model_fini();
	if (failed)
		tap_case_failed = 1;
	CHECK_EQ(gmem_open(), 3);
	tap_result("everything closes; no handle left behind");
	return tap_done();
}
