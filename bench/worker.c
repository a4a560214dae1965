/*
 * worker: a benchmark job for `cryo run` (bench/run_overhead.py). Writes one
 * word into each page of N MiB (argv[1]) of anonymous memory, round and
 * round, for S seconds (argv[2]) of CLOCK_MONOTONIC, reading the clock every
 * 256 pages; then writes "PAGES SECONDS LONGEST_GAP_US" to OUT (argv[3])
 * and exits 0. PAGES/SECONDS is its throughput; the longest gap between two
 * clock reads is the longest time it was kept from running (a checkpoint's
 * frozen time, as the job itself sees it).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <time.h>

static uint64_t now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

int main(int argc, char **argv)
{
	if (argc != 4) {
		fprintf(stderr, "usage: worker MIB SECONDS OUT\n");
		return 2;
	}
	size_t pages = (size_t)atol(argv[1]) << 8, done = 0, i = 0;
	uint64_t t0 = now_us(), end = t0 + (uint64_t)atol(argv[2]) * 1000000, last = t0, gap = 0;
	volatile uint64_t *mem = mmap(NULL, pages << 12, PROT_READ | PROT_WRITE,
				      MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	FILE *out;

	if (mem == MAP_FAILED || pages == 0) {
		perror("worker: mmap");
		return 1;
	}
	for (;;) {
		for (int k = 0; k < 256; k++, i = (i + 1) % pages)
			mem[i << 9] = done++;
		uint64_t t = now_us();
		if (t - last > gap)
			gap = t - last;
		last = t;
		if (t >= end)
			break;
	}
	out = fopen(argv[3], "w");
	if (!out || fprintf(out, "%zu %.3f %llu\n", done, (last - t0) / 1e6,
			    (unsigned long long)gap) < 0 || fclose(out))
		return 1;
	return 0;
}
