/* mem_many_vmas.c: 20000 VMAs (a restore once took 1.7 s over them, and
 * one with 40000 could not be restored at all: a service fd per VMA ran
 * past the fd limit). 10000 two-page areas, each split in two VMAs by
 * mprotect (read-write, then read-only), each holding its own byte; after
 * `go` every byte is there and /proc/self/maps lists as many areas. */
#include "wl.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>

#define AREAS 10000
#define PAGE  4096

static int count_maps(void)
{
	char line[512];
	int n = 0;
	FILE *f = fopen("/proc/self/maps", "r");

	while (f && fgets(line, sizeof(line), f))
		n++;
	if (f)
		fclose(f);
	return n;
}

int main(void)
{
	unsigned char *base;
	int before, after, bad = 0, first_bad = -1;

	wl_init();
	base = mmap(NULL, AREAS * 2 * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1,
		    0);
	if (base == MAP_FAILED)
		wl_die("mmap: %s", strerror(errno));
	for (int i = 0; i < AREAS; i++) {
		base[i * 2 * PAGE] = (unsigned char)(i * 7 + 1);
		base[i * 2 * PAGE + PAGE] = (unsigned char)(i * 13 + 2);
		if (mprotect(base + i * 2 * PAGE + PAGE, PAGE, PROT_READ))
			wl_die("mprotect: %s", strerror(errno));
	}
	before = count_maps();
	wl_ready();
	wl_wait_go();
	for (int i = 0; i < AREAS; i++)
		if (base[i * 2 * PAGE] != (unsigned char)(i * 7 + 1) ||
		    base[i * 2 * PAGE + PAGE] != (unsigned char)(i * 13 + 2)) {
			bad++;
			if (first_bad < 0)
				first_bad = i;
		}
	wl_check("contents", !bad, "%d areas differ, first %d", bad, first_bad);
	after = count_maps();
	wl_check("maps_count", after == before, "%d lines in maps, %d before", after, before);
	wl_done();
}
