/* tree_cow.c: 64 MiB filled by the root, then shared copy-on-write with 5
 * children, each of which rewrites 16 pages of its own. After `go` every
 * process checks that it sees the root's pattern everywhere except on its
 * own rewritten pages, which hold its own, and that the pages are still
 * shared (smaps Shared_*: every page of the root, all but its own 16 in a
 * child; the children stay until the root has measured, since its pages
 * are shared only while they map them too), so a restore that gives each
 * process its own copy fails. (That
 * the shared pages are saved once is what the harness checks on the image
 * size, test tree-cow-size.) */
#include "wl.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#define MIB	 (1 << 20)
#define SIZE	 (64 * MIB)
#define PAGE	 4096
#define KIDS	 5
#define REWRITES 16

static uint64_t *mem;

static uint64_t pattern(size_t page, int owner)
{
	return (page * 0x9e3779b97f4a7c15ULL) ^ ((uint64_t)owner << 56) ^ 0x5a5a;
}

static bool rewritten_by(size_t page, int who)
{
	return who > 0 && page % 257 == (size_t)who && page / 257 < REWRITES;
}

static void fill(int who)
{
	for (size_t p = 0; p < SIZE / PAGE; p++)
		if (who == 0 || rewritten_by(p, who))
			for (size_t w = 0; w < PAGE / 8; w += 64)
				mem[p * PAGE / 8 + w] = pattern(p, who) + w;
}

/* The first page that does not hold what process `who` should see, or -1. */
static long first_bad(int who)
{
	for (size_t p = 0; p < SIZE / PAGE; p++) {
		int owner = rewritten_by(p, who) ? who : 0;
		for (size_t w = 0; w < PAGE / 8; w += 64)
			if (mem[p * PAGE / 8 + w] != pattern(p, owner) + w)
				return p;
	}
	return -1;
}

/* KiB of the region mapped by more than one process (smaps Shared_*). */
static long shared_kib(void)
{
	char line[256], head[32];
	long kib = 0, v;
	bool in = false;
	FILE *f = fopen("/proc/self/smaps", "r");

	if (!f)
		return -1;
	snprintf(head, sizeof(head), "%lx-", (unsigned long)mem);
	while (fgets(line, sizeof(line), f)) {
		if (strchr(line, '-') && strchr(line, '-') < strchr(line, ' '))
			in = !strncmp(line, head, strlen(head));
		else if (in && (sscanf(line, "Shared_Clean: %ld", &v) == 1 ||
				sscanf(line, "Shared_Dirty: %ld", &v) == 1))
			kib += v;
	}
	fclose(f);
	return kib;
}

/* Exit status of a child: 0 ok, 1 wrong contents, 2 not shared. */
static int child_verdict(int who)
{
	if (first_bad(who) >= 0)
		return 1;
	return shared_kib() >= (long)(SIZE / PAGE - REWRITES) * (PAGE / 1024) ? 0 : 2;
}

int main(void)
{
	pid_t kids[KIDS];
	int ready_pipe[2], measured_pipe[2];
	char c;

	wl_init();
	mem = mmap(NULL, SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (mem == MAP_FAILED || pipe(ready_pipe) || pipe(measured_pipe))
		wl_die("setup: %s", strerror(errno));
	fill(0);
	for (int k = 0; k < KIDS; k++) {
		kids[k] = fork();
		if (kids[k] == 0) {
			fill(k + 1);
			close(ready_pipe[0]);
			if (write(ready_pipe[1], "k", 1) != 1)
				_exit(3);
			close(ready_pipe[1]);
			close(measured_pipe[1]);
			wl_wait_go();
			int verdict = child_verdict(k + 1);
			/* stays until the root has measured: its pages are shared
			 * only while the children map them too */
			while (read(measured_pipe[0], &c, 1) > 0)
				;
			_exit(verdict);
		}
	}
	close(ready_pipe[1]);
	for (int k = 0; k < KIDS; k++)
		if (read(ready_pipe[0], &c, 1) != 1)
			wl_die("a child died before it was ready");
	close(ready_pipe[0]);
	close(measured_pipe[0]);
	wl_ready();
	wl_wait_go();
	long bad = first_bad(0), kib = shared_kib();
	close(measured_pipe[1]); /* the children may end now */
	wl_check("root_memory", bad < 0, "page %ld differs", bad);
	wl_check("root_shared", kib >= SIZE / 1024, "%ld KiB of %d shared", kib, SIZE / 1024);
	for (int k = 0; k < KIDS; k++) {
		char name[32];
		snprintf(name, sizeof(name), "child%d_memory_shared", k + 1);
		/* exit 1: wrong contents, 2: not shared */
		wl_check_child(name, kids[k]);
	}
	wl_done();
}
