/* mem_stamp.c: memory that can be checked at every instant, written while it
 * is checkpointed (dump -R takes a copy-on-write snapshot, snapshot.c).
 *
 * A root process of five writer threads and a child process of one: each
 * writer owns a region of pages and stamps them in order, page i of pass g
 * getting (g << 32 | i), about half a million pages a second. Before it
 * writes a page it checks that the page holds the stamp of the pass before:
 * so memory that is not one moment of the job — a page saved before or after
 * the others, in the original left running or in the restored copy — is seen
 * by the writer when it comes to that page (a wrong stamp), within a pass.
 * The thread's own position (i, g) is in its registers and stack: it matches
 * the memory only if both are the same instant.
 *
 * After `go` each writer does three more full passes, and the workload
 * reports the longest stretch its clock watcher (wl_gap_watch, a tick every
 * 2 ms) saw without a tick: the time the job was frozen. If the file
 * `gap-bound-ms` exists in the work dir, the gap must be below the number it
 * holds (the harness writes it for the run left running; a restored run's
 * gap is the whole time it was not running). argv[1]: MiB of the root
 * (default 256) of two private regions; three more of 2 MiB each are
 * MAP_SHARED, MADV_DONTFORK and MADV_WIPEONFORK; the child has a quarter. */
#include "wl.h"

#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define PAGE	      4096
#define BATCH	      1000
#define PAGES_PER_SEC 500000.0
#define PASSES_AFTER  3

struct writer {
	pthread_t t;
	volatile uint64_t *base; /* first word of each page is its stamp */
	size_t pages;
	volatile uint64_t passes; /* completed */
	volatile uint64_t bad_at, bad_got, bad_want;
	volatile int bad;
};

static uint64_t stamp(uint64_t pass, size_t i)
{
	return pass << 32 | i;
}

static volatile uint64_t *page_word(struct writer *w, size_t i)
{
	return w->base + i * (PAGE / sizeof(uint64_t));
}

/* Pass 1 is written at start; then passes 2, 3, ... each over the one before. */
static void *write_loop(void *arg)
{
	struct writer *w = arg;
	double start = wl_now();
	uint64_t done = 0;

	for (uint64_t pass = 2;; pass++) {
		for (size_t i = 0; i < w->pages; i++) {
			uint64_t got = *page_word(w, i);
			if (got != stamp(pass - 1, i) && !w->bad) {
				w->bad_at = i;
				w->bad_got = got;
				w->bad_want = stamp(pass - 1, i);
				w->bad = 1;
			}
			*page_word(w, i) = stamp(pass, i);
			if (++done % BATCH == 0) {
				double ahead = start + done / PAGES_PER_SEC - wl_now();
				if (ahead > 0) {
					struct timespec ts = {0, (long)(ahead * 1e9)};
					nanosleep(&ts, NULL);
				}
			}
		}
		w->passes = pass - 1;
	}
	return NULL;
}

/* flags: MAP_PRIVATE or MAP_SHARED; advice: an madvise() or -1. */
static void start_writer(struct writer *w, size_t pages, int flags, int advice)
{
	w->pages = pages;
	w->base = mmap(NULL, pages * PAGE, PROT_READ | PROT_WRITE, flags | MAP_ANONYMOUS, -1, 0);
	if (w->base == MAP_FAILED)
		wl_die("mmap of %zu pages: %s", pages, strerror(errno));
	if (advice >= 0 && madvise((void *)w->base, pages * PAGE, advice))
		wl_die("madvise %d: %s", advice, strerror(errno));
	for (size_t i = 0; i < pages; i++)
		*page_word(w, i) = stamp(1, i);
	if (pthread_create(&w->t, NULL, write_loop, w))
		wl_die("pthread_create: cannot start a writer");
}

/* Three more full passes of every writer, each checking the one before. */
static void check_writers(const char *who, struct writer *ws, int n)
{
	uint64_t want[n];
	double deadline = wl_now() + 60;
	char name[64];

	for (int k = 0; k < n; k++)
		want[k] = ws[k].passes + PASSES_AFTER + 1;
	for (int k = 0; k < n; k++)
		while (ws[k].passes < want[k] && !ws[k].bad && wl_now() < deadline) {
			struct timespec ts = {0, 5000000};
			nanosleep(&ts, NULL);
		}
	for (int k = 0; k < n; k++) {
		snprintf(name, sizeof(name), "%s_writer%d_consistent", who, k);
		wl_check(name, !ws[k].bad,
			 "page %llu held stamp 0x%llx, expected 0x%llx (memory not one moment)",
			 (unsigned long long)ws[k].bad_at, (unsigned long long)ws[k].bad_got,
			 (unsigned long long)ws[k].bad_want);
		snprintf(name, sizeof(name), "%s_writer%d_ran", who, k);
		wl_check(name, ws[k].passes >= want[k], "%llu passes, expected %llu",
			 (unsigned long long)ws[k].passes, (unsigned long long)want[k]);
	}
}

static void check_gap(void)
{
	char path[4096];
	double start, end, bound = 0;
	FILE *f = fopen(wl_path("gap-bound-ms", path, sizeof(path)), "r");

	wl_gap(&start, &end);
	printf("wl: frozen gap %.1f ms (the longest the clock watcher went without a tick)\n",
	       (end - start) * 1e3);
	if (!f)
		return;
	if (fscanf(f, "%lf", &bound) != 1)
		bound = 0;
	fclose(f);
	wl_check("frozen_gap", (end - start) * 1e3 < bound, "%.1f ms, the bound is %.0f ms",
		 (end - start) * 1e3, bound);
}

int main(int argc, char **argv)
{
	size_t mib = argc > 1 ? strtoul(argv[1], NULL, 10) : 256;
	size_t pages = (mib << 20) / PAGE;
	struct writer root[5] = {0}, child[1] = {0};
	pid_t kid;

	wl_init();
	kid = fork();
	if (kid < 0)
		wl_die("fork: %s", strerror(errno));
	if (!kid) {
		start_writer(&child[0], pages / 4, MAP_PRIVATE, -1);
		wl_wait_go();
		check_writers("child", child, 1);
		_exit(wl_failures() ? 1 : 0);
	}
	start_writer(&root[0], pages / 2, MAP_PRIVATE, -1);
	start_writer(&root[1], pages / 2, MAP_PRIVATE, -1);
	/* memory a fork does not carry: copied while frozen (snapshot.c) */
	start_writer(&root[2], 512, MAP_SHARED, -1);
	start_writer(&root[3], 512, MAP_PRIVATE, MADV_DONTFORK);
	start_writer(&root[4], 512, MAP_PRIVATE, MADV_WIPEONFORK);
	wl_gap_watch();
	while (!root[0].passes || !root[1].passes || !root[4].passes) {
		struct timespec ts = {0, 5000000};
		nanosleep(&ts, NULL);
	}
	wl_ready();
	wl_wait_go();
	check_writers("root", root, 5);
	check_gap();
	wl_check_child("child", kid);
	wl_done();
}
