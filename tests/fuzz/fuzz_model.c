// SPDX-License-Identifier: MIT
/*
 * libFuzzer target: façade and typed-API sequences against the reference
 * model (tests/model.h).  Every choice the model's operations make — which
 * VM, which call, its arguments, whether through gmem_ioctl() or the typed
 * function — is read from the input, eight bytes at a time, so the fuzzer
 * steers the same sequences test_model draws at random.  A disagreement
 * with the model aborts (a crash for libFuzzer, with the last steps
 * printed); everything is closed at the end of each input, so a leak shows
 * up in LeakSanitizer's report at exit.
 */
#include "model.h"

static const uint8_t *in_data;
static size_t in_left;

/* The next eight input bytes; zeros once the input is spent. */
static uint64_t rnd(void)
{
	uint64_t v = 0;
	size_t n = in_left < sizeof(v) ? in_left : sizeof(v);

	memcpy(&v, in_data, n);
	in_data += n;
	in_left -= n;
	return v;
}

static void model_mismatch_hook(void)
{
	fflush(stdout);
	abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	in_data = data;
	in_left = size;
	model_init();
	while (in_left && !failed) {
		one_step();
		step++;
	}
	/* the last slot of each id and both maps, once more */
	for (int v = 0; v < NVM && !failed; v++) {
		for (uint32_t id = 0; id < NSLOT; id++)
			check_slot(&vms[v], id);
		compare_all(&vms[v], SEQ_STAYS);
	}
	model_fini();
	/* every handle is closed again: the next one is the first */
	if (gmem_open() != 3)
		mismatch("a handle was left open");
	gmem_close(3);
	return 0;
}
