/* mem_incr: memory that changes between the checkpoints of a chain
 * (tests/test_incr.py drives it; not in list.txt).
 *
 * Stepping protocol: after wl_ready() the workload waits for `stepN` (N =
 * its step + 1) or `go`. On stepN every process changes its memory and
 * makes `doneN-ROLE` (ROLE: main, kid1, kid2); the test takes a checkpoint
 * after each step. On `go` every process checks every page it has against
 * what its step says, and the root waits for its kids' statuses.
 *
 * What each step changes (about 1% of the pages of each process):
 *   - A (24 MiB main, 8 MiB kids): the pages i with stamp(i, s) get the
 *     pattern of (i, s); the check recomputes the last step of each page;
 *   - main's two threads stamp their own 4 MiB regions the same way;
 *   - THP: a 4 MiB MADV_HUGEPAGE region, one 4 KiB page written per step;
 *   - VMAs (main): step 1 maps C (1 MiB) and drops A[100..116) with
 *     MADV_DONTNEED; step 2 grows C to 3 MiB by mremap and unmaps A[200..208);
 *     step 3 moves C elsewhere (MREMAP_FIXED) and writes its first page,
 *     shrinks D from 2 MiB to 1 MiB;
 *   - S (256 KiB MAP_SHARED anonymous) is written by kid1 through its own
 *     mapping, page s with (s, 2000); main checks it;
 *   - page 300 of A is filled by read(2) from a pipe (the kernel writes it);
 *   - F: 1 MiB of a file mapped MAP_PRIVATE (its written pages are the
 *     process's own), stamped as A;
 *   - step 2: main forks kid2 (no tracking yet: saved in full).
 */

#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "wl.h"

#define PG	    4096UL
#define MAIN_A	    (24UL << 20)
#define KID_A	    (8UL << 20)
#define THR_R	    (4UL << 20)
#define THP_LEN	    (4UL << 20)
#define S_LEN	    (256UL << 10)
#define PIPE_PAGE   300
#define DROP_FIRST  100
#define DROP_END    116
#define UNMAP_FIRST 200
#define UNMAP_END   208
#define C_LEN1	    (1UL << 20)
#define C_LEN2	    (3UL << 20)
#define D_LEN	    (2UL << 20)
#define MAX_STEPS   16

struct region {
	unsigned char *p;
	size_t len;
	int salt; /* which stamp pattern: tells regions apart */
	int born; /* the step it was made at: only later stamps count */
};

static int step;
static const char *role = "main";
static struct region A, T[2], H, S, C, D, F;
static atomic_int thr_step;
static atomic_int thr_done;

static bool stamped(size_t i, int s, int salt)
{
	if (s == 0)
		return true;
	unsigned h = (unsigned)(i * 2654435761u) ^ (unsigned)(s * 40503u + salt * 977u);
	h ^= h >> 13;
	h *= 0x5bd1e995u;
	h ^= h >> 15;
	return h % 100 == 0;
}

static int seed_of(size_t i, int s, int salt)
{
	return (int)(i * 131 + s * 7 + salt * 100003);
}

static int last_stamp(const struct region *r, size_t i, int upto)
{
	for (int s = upto; s > r->born; s--)
		if (stamped(i, s, r->salt))
			return s;
	return 0;
}

static bool is_main(void)
{
	return !strcmp(role, "main");
}

static bool dropped(const struct region *r, size_t i)
{
	return r == &A && is_main() && step >= 1 && i >= DROP_FIRST && i < DROP_END;
}

static bool unmapped(const struct region *r, size_t i)
{
	return r == &A && is_main() && step >= 2 && i >= UNMAP_FIRST && i < UNMAP_END;
}

static bool pipe_page(const struct region *r, size_t i)
{
	return r == &A && is_main() && i == PIPE_PAGE;
}

static void stamp(struct region *r, int s)
{
	for (size_t i = 0; i < r->len / PG; i++)
		if ((s == 0 || (s > r->born && stamped(i, s, r->salt))) && !pipe_page(r, i) &&
		    !dropped(r, i) && !unmapped(r, i))
			wl_fill(r->p + i * PG, PG, seed_of(i, s, r->salt));
}

static unsigned char *map_anon(size_t len, int flags)
{
	void *p = mmap(NULL, len, PROT_READ | PROT_WRITE, flags | MAP_ANONYMOUS, -1, 0);

	if (p == MAP_FAILED)
		wl_die("mmap %zu: %s", len, strerror(errno));
	return p;
}

static void check_region(const char *name, const struct region *r)
{
	static unsigned char zero[PG];
	size_t bad = 0, first = 0;

	for (size_t i = 0; i < r->len / PG; i++) {
		unsigned char *pg = r->p + i * PG;
		bool ok;
		if (unmapped(r, i)) {
			unsigned char v;
			ok = mincore(pg, PG, &v) && errno == ENOMEM;
		} else if (dropped(r, i)) {
			ok = !memcmp(pg, zero, PG);
		} else if (pipe_page(r, i)) {
			ok = wl_first_bad(pg, PG, 3000 + step) == PG;
		} else {
			ok =
			    wl_first_bad(pg, PG, seed_of(i, last_stamp(r, i, step), r->salt)) == PG;
		}
		if (!ok && !bad++)
			first = i;
	}
	wl_check(name, !bad, "%s %s: %zu of %zu pages wrong, the first page %zu", role, name, bad,
		 r->len / PG, first);
}

static void fill_pipe_page(void)
{
	int fds[2];

	if (pipe(fds) || !wl_write_pattern(fds[1], PG, 3000 + step) ||
	    read(fds[0], A.p + PIPE_PAGE * PG, PG) != (ssize_t)PG)
		wl_die("pipe page: %s", strerror(errno));
	close(fds[0]);
	close(fds[1]);
}

/* A file of pattern pages, mapped private: only the pages stamped later
 * are the process's own. */
static void map_file_private(void)
{
	char buf[512];
	int fd = open(wl_path("fpriv.dat", buf, sizeof(buf)), O_RDWR | O_CREAT | O_TRUNC, 0600);
	static unsigned char pg[PG];

	F = (struct region){NULL, 1UL << 20, 8, 0};
	for (size_t i = 0; fd >= 0 && i < F.len / PG; i++) {
		wl_fill(pg, PG, seed_of(i, 0, F.salt));
		if (write(fd, pg, PG) != (ssize_t)PG)
			wl_die("write fpriv.dat: %s", strerror(errno));
	}
	F.p = fd < 0 ? MAP_FAILED : mmap(NULL, F.len, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
	if (F.p == MAP_FAILED)
		wl_die("fpriv.dat: %s", strerror(errno));
	close(fd);
}

/* Whether the THP region got huge pages (the kernel may give none). */
static bool has_thp(void)
{
	FILE *f = fopen("/proc/self/smaps_rollup", "r");
	char line[256];
	unsigned long kb = 0;

	while (f && fgets(line, sizeof(line), f))
		if (sscanf(line, "AnonHugePages: %lu kB", &kb) == 1)
			break;
	if (f)
		fclose(f);
	return kb > 0;
}

static void *thread_main(void *arg)
{
	struct region *r = arg;
	int seen = 0;

	stamp(r, 0);
	atomic_fetch_add(&thr_done, 1);
	for (;;) {
		while (atomic_load(&thr_step) == seen)
			usleep(1000);
		seen = atomic_load(&thr_step);
		if (seen < 0)
			return NULL;
		stamp(r, seen);
		atomic_fetch_add(&thr_done, 1);
	}
}

static void vma_changes(int s)
{
	if (s == 1) {
		C = (struct region){map_anon(C_LEN1, MAP_PRIVATE), C_LEN1, 7, 1};
		stamp(&C, 0);
		madvise(A.p + DROP_FIRST * PG, (DROP_END - DROP_FIRST) * PG, MADV_DONTNEED);
	} else if (s == 2) {
		void *p = mremap(C.p, C.len, C_LEN2, MREMAP_MAYMOVE);
		if (p == MAP_FAILED)
			wl_die("mremap grow: %s", strerror(errno));
		C.p = p;
		C.len = C_LEN2;
		for (size_t i = C_LEN1 / PG; i < C_LEN2 / PG; i++)
			wl_fill(C.p + i * PG, PG, seed_of(i, 0, C.salt));
		munmap(A.p + UNMAP_FIRST * PG, (UNMAP_END - UNMAP_FIRST) * PG);
	} else if (s == 3) {
		unsigned char *to = map_anon(C.len + (1UL << 20), MAP_PRIVATE);
		void *p =
		    mremap(C.p, C.len, C.len, MREMAP_MAYMOVE | MREMAP_FIXED, to + (1UL << 20));
		if (p == MAP_FAILED)
			wl_die("mremap move: %s", strerror(errno));
		munmap(to, 1UL << 20);
		C.p = p;
		/* the same bytes, written again */
		wl_fill(C.p, PG, seed_of(0, last_stamp(&C, 0, 2), C.salt));
		if (mremap(D.p, D_LEN, D_LEN / 2, 0) == MAP_FAILED)
			wl_die("mremap shrink: %s", strerror(errno));
		D.len = D_LEN / 2;
	}
}

static void do_step(int s, pid_t *kid2)
{
	step = s;
	stamp(&A, s);
	if (is_main()) {
		atomic_store(&thr_done, 0);
		atomic_store(&thr_step, s);
		stamp(&H, s);
		stamp(&D, s);
		stamp(&F, s);
		fill_pipe_page();
		vma_changes(s);
		if (C.p)
			stamp(&C, s);
		if (s == 2 && (*kid2 = fork()) == 0) {
			role = "kid2";
			A = (struct region){map_anon(KID_A, MAP_PRIVATE), KID_A, 3, 2};
			stamp(&A, 0);
		}
		while (is_main() && atomic_load(&thr_done) < 2)
			usleep(1000);
	}
	if (!strcmp(role, "kid1"))
		wl_fill(S.p + s * PG, PG, 2000 + s);
}

static void check_all(pid_t kid1, pid_t kid2)
{
	check_region("A", &A);
	if (!is_main())
		return;
	check_region("thread0", &T[0]);
	check_region("thread1", &T[1]);
	check_region("thp", &H);
	check_region("shrunk", &D);
	check_region("file_private", &F);
	if (step >= 1)
		check_region("grown_moved", &C);
	size_t bad = 0;
	for (int s = 0; s <= step && s < MAX_STEPS; s++)
		bad += s ? wl_first_bad(S.p + s * PG, PG, 2000 + s) != PG : 0;
	wl_check("shared_written_by_kid", !bad, "%zu pages of S wrong", bad);
	wl_check_child("kid1", kid1);
	if (kid2 > 0)
		wl_check_child("kid2", kid2);
}

static void done_file(int s)
{
	char name[64], buf[512];

	snprintf(name, sizeof(name), "done%d-%s", s, role);
	FILE *f = fopen(wl_path(name, buf, sizeof(buf)), "w");
	if (!f)
		wl_die("cannot create %s", name);
	fclose(f);
}

static bool exists(const char *name)
{
	char buf[512];

	return !access(wl_path(name, buf, sizeof(buf)), F_OK);
}

int main(void)
{
	pthread_t th[2];
	pid_t kid1, kid2 = 0;

	wl_init();
	A = (struct region){map_anon(MAIN_A, MAP_PRIVATE), MAIN_A, 1, 0};
	stamp(&A, 0);
	fill_pipe_page();
	S = (struct region){map_anon(S_LEN, MAP_SHARED), S_LEN, 0, 0};
	H.len = THP_LEN;
	H.salt = 5;
	unsigned char *h = map_anon(2 * THP_LEN, MAP_PRIVATE);
	H.p = (unsigned char *)(((uintptr_t)h + THP_LEN - 1) & ~(THP_LEN - 1));
	madvise(H.p, THP_LEN, MADV_HUGEPAGE);
	stamp(&H, 0);
	if (!has_thp())
		wl_not_covered("thp", "the kernel gave no transparent huge page");
	map_file_private();
	D = (struct region){map_anon(D_LEN, MAP_PRIVATE), D_LEN, 6, 0};
	stamp(&D, 0);
	kid1 = fork();
	if (kid1 == 0) {
		role = "kid1";
		A = (struct region){map_anon(KID_A, MAP_PRIVATE), KID_A, 2, 0};
		stamp(&A, 0);
	} else {
		for (int i = 0; i < 2; i++) {
			T[i] = (struct region){map_anon(THR_R, MAP_PRIVATE), THR_R, 10 + i, 0};
			pthread_create(&th[i], NULL, thread_main, &T[i]);
		}
		while (atomic_load(&thr_done) < 2)
			usleep(1000);
		wl_ready();
	}
	for (;;) {
		char name[32];
		snprintf(name, sizeof(name), "step%d", step + 1);
		if (exists("go"))
			break;
		if (step + 1 < MAX_STEPS && exists(name)) {
			do_step(step + 1, &kid2);
			done_file(step);
			continue;
		}
		usleep(5000);
	}
	check_all(kid1, kid2);
	if (is_main()) {
		atomic_store(&thr_step, -1);
		for (int i = 0; i < 2; i++)
			pthread_join(th[i], NULL);
	}
	wl_done();
}
