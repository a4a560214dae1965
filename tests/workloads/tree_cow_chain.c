/* tree_cow_chain.c: the harder cases of copy-on-write sharing in a tree,
 * each checked exactly after `go`. The root R maps three private anonymous
 * regions (separate VMAs): A (16 MiB) and B (8 MiB), which it fills, and D
 * (8 MiB), of which it fills only the first half; then it forks:
 *   C     rewrites 8 pages of A, then forks G, which rewrites 8 other pages
 *         of A (a chain: G shares C's rewritten pages with C, and the rest
 *         of A with C and R);
 *   Kdrop drops 2 MiB of B (MADV_DONTNEED): zeros there, the rest shared;
 *   Knew  writes the second half of D, pages R never had;
 *   Kall  rewrites all of A: nothing of A shared with anyone.
 * Every page of every region in every process has an expected "writer" (the
 * process whose write made its frame) or none (no page). After `go`, and
 * before anyone reads the regions, R reads /proc/PID/pagemap (as root: with
 * PFNs) and /proc/PID/smaps of all six processes and checks, per process
 * and region: the present bit (set iff there is a writer), the exclusive bit
 * (set iff no other process has that writer's page there), that two
 * processes have the same frame iff they have the same writer, and the smaps
 * Rss, Shared_* and Private_* totals. Then it creates `snapped`, and every
 * process checks every word of every page of its regions (and, with
 * mincore, that R's upper half of D and Kdrop's dropped range have no
 * pages). Kids report by exit status; C waits for G and folds in G's. */
#include "wl.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define PAGE	  4096UL
#define WORDS	  (PAGE / 8)
#define NONE	  (-1)
#define DROP_FROM 700 /* Kdrop's dropped pages of B: [DROP_FROM, DROP_TO) */
#define DROP_TO	  (DROP_FROM + 512)
#define D_HALF	  1024 /* R fills D's pages below this, Knew those above */

enum { P_R, P_C, P_G, P_KDROP, P_KNEW, P_KALL, NPROC };
enum { R_A, R_B, R_D, NREG };

static const char *const pname[NPROC] = {"R", "C", "G", "Kdrop", "Knew", "Kall"};

struct region {
	const char *name;
	size_t pages;
	uint64_t *mem;
};

static struct region regs[NREG] = {{"A", 4096, NULL}, {"B", 2048, NULL}, {"D", 2048, NULL}};

/* pages of A rewritten by C (before it forks G) and by G: next to each
 * other and at both ends, to catch off-by-one runs */
static const size_t c_pages[8] = {0, 1, 500, 1000, 1001, 2047, 2048, 4095};
static const size_t g_pages[8] = {2, 999, 1500, 2049, 3000, 3001, 3002, 4094};

static pid_t pids[NPROC];

/* ---- expectations ---- */

static bool in_set(const size_t *set, size_t p)
{
	for (int i = 0; i < 8; i++)
		if (set[i] == p)
			return true;
	return false;
}

/* The process whose write made the frame that process `who` has at page p
 * of region r, or NONE if it has no page there. */
static int writer(int who, int r, size_t p)
{
	switch (r) {
	case R_A:
		if (who == P_KALL)
			return P_KALL;
		if ((who == P_C || who == P_G) && in_set(c_pages, p))
			return P_C;
		if (who == P_G && in_set(g_pages, p))
			return P_G;
		return P_R;
	case R_B:
		return who == P_KDROP && p >= DROP_FROM && p < DROP_TO ? NONE : P_R;
	default:
		if (p < D_HALF)
			return P_R;
		return who == P_KNEW ? P_KNEW : NONE;
	}
}

/* How many processes have the frame of writer w at page p of region r. */
static int sharers(int r, size_t p, int w)
{
	int n = 0;

	for (int q = 0; q < NPROC; q++)
		n += writer(q, r, p) == w;
	return n;
}

/* Word i of page p of region r as written by process w. */
static uint64_t val(int r, size_t p, int w, size_t i)
{
	uint64_t x =
	    ((uint64_t)(r + 1) << 56) ^ ((uint64_t)(w + 1) << 48) ^ ((uint64_t)p << 16) ^ i;

	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
	return (x ^ (x >> 31)) | 1;
}

static void write_page(int r, size_t p, int w)
{
	uint64_t *pg = regs[r].mem + p * WORDS;

	for (size_t i = 0; i < WORDS; i++)
		pg[i] = val(r, p, w, i);
}

/* Checks "mem_WHO_REGION": every word of every page. */
static void check_contents(int who, int r)
{
	size_t bad = 0, first = 0, word = 0;
	char name[64];

	for (size_t p = 0; p < regs[r].pages; p++) {
		const uint64_t *pg = regs[r].mem + p * WORDS;
		int w = writer(who, r, p);
		for (size_t i = 0; i < WORDS; i++)
			if (pg[i] != (w == NONE ? 0 : val(r, p, w, i))) {
				if (!bad++)
					first = p, word = i;
				break;
			}
	}
	snprintf(name, sizeof(name), "mem_%s_%s", pname[who], regs[r].name);
	wl_check(name, bad == 0,
		 "%zu of %zu pages wrong; first: page %zu word %zu is %#llx, expected %#llx "
		 "(writer %s)",
		 bad, regs[r].pages, first, word,
		 bad ? (unsigned long long)regs[r].mem[first * WORDS + word] : 0ULL,
		 bad && writer(who, r, first) != NONE
		     ? (unsigned long long)val(r, first, writer(who, r, first), word)
		     : 0ULL,
		 bad && writer(who, r, first) != NONE ? pname[writer(who, r, first)] : "none");
}

/* Checks NAME: mincore says pages [from, to) of region r are not resident
 * and (if others) the other pages are. To run before anything reads them. */
static void check_mincore(const char *name, int r, size_t from, size_t to, bool others)
{
	static unsigned char vec[4096];
	size_t bad = 0, first = 0;

	if (mincore(regs[r].mem, regs[r].pages * PAGE, vec)) {
		wl_check(name, false, "mincore: %s", strerror(errno));
		return;
	}
	for (size_t p = 0; p < regs[r].pages; p++) {
		bool in = p >= from && p < to;
		if ((in && (vec[p] & 1)) || (!in && others && !(vec[p] & 1)))
			if (!bad++)
				first = p;
	}
	wl_check(name, bad == 0, "%zu pages wrong; first: page %zu resident=%d, expected %d", bad,
		 first, bad ? vec[first] & 1 : 0, bad ? !(first >= from && first < to) : 0);
}

/* ---- sync ---- */

static void sleep_ms(long ms)
{
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};

	nanosleep(&ts, NULL);
}

/* Waits up to 10 s for R's file `snapped`. */
static bool wait_snapped(void)
{
	char p[PATH_MAX + 16];
	struct stat st;

	wl_path("snapped", p, sizeof(p));
	for (int i = 0; i < 2000; i++) {
		if (stat(p, &st) == 0)
			return true;
		sleep_ms(5);
	}
	return false;
}

/* Checks NAME: kid exits 0 within SECONDS (killed and reaped if not). */
static void check_kid(const char *name, pid_t kid, double seconds)
{
	double end = wl_now() + seconds;
	int st = 0;
	pid_t r;

	while ((r = waitpid(kid, &st, WNOHANG)) == 0 && wl_now() < end)
		sleep_ms(5);
	if (r == 0) {
		kill(kid, SIGKILL);
		waitpid(kid, &st, 0);
		wl_check(name, false, "pid %d did not exit within %.0f s", kid, seconds);
		return;
	}
	wl_check(name, r == kid && WIFEXITED(st) && WEXITSTATUS(st) == 0,
		 "pid %d: waitpid %d, status 0x%x (exit 1: a check failed, see its lines)", kid, r,
		 st);
}

/* After `go` in a kid: wait for R's snapshot, check, exit with the verdict. */
static void kid_main(int who, pid_t gkid) __attribute__((noreturn));
static void kid_main(int who, pid_t gkid)
{
	char name[64];

	wl_wait_go();
	snprintf(name, sizeof(name), "%s_snapped", pname[who]);
	if (wl_check(name, wait_snapped(), "no `snapped` from R within 10 s")) {
		if (who == P_KDROP)
			check_mincore("mincore_Kdrop_B_dropped", R_B, DROP_FROM, DROP_TO, true);
		for (int r = 0; r < NREG; r++)
			check_contents(who, r);
	}
	if (gkid > 0)
		check_kid("exit_G", gkid, 9);
	_exit(wl_failures() ? 1 : 0);
}

/* ---- R's snapshot of every process ---- */

#define PM_PRESENT   (1ULL << 63)
#define PM_SWAP	     (1ULL << 62)
#define PM_EXCLUSIVE (1ULL << 56)
#define PM_PFN	     ((1ULL << 55) - 1)

struct smaps_sum {
	long rss, shared, priv; /* KiB */
	bool found;
};

static uint64_t pm[NPROC][NREG][4096];
static struct smaps_sum sm[NPROC][NREG];

static bool read_pagemap(pid_t pid, int r, uint64_t *out)
{
	char path[64];
	size_t len = regs[r].pages * 8;
	int fd;
	ssize_t n;

	snprintf(path, sizeof(path), "/proc/%d/pagemap", pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return false;
	n = pread(fd, out, len, (off_t)((uintptr_t)regs[r].mem / PAGE * 8));
	close(fd);
	return n == (ssize_t)len;
}

/* The Rss, Shared_* and Private_* totals of the VMA of pid starting at each
 * region (found: false if there is no VMA starting there). */
static bool read_smaps(pid_t pid, struct smaps_sum *out)
{
	char path[64], line[512];
	unsigned long s, e;
	long v;
	int cur = -1;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/smaps", pid);
	f = fopen(path, "re");
	if (!f)
		return false;
	memset(out, 0, NREG * sizeof(*out));
	while (fgets(line, sizeof(line), f)) {
		if (sscanf(line, "%lx-%lx ", &s, &e) == 2) {
			cur = -1;
			for (int r = 0; r < NREG; r++)
				if (s == (uintptr_t)regs[r].mem) {
					cur = r;
					out[r].found = e == s + regs[r].pages * PAGE;
				}
		} else if (cur < 0) {
			continue;
		} else if (sscanf(line, "Rss: %ld", &v) == 1) {
			out[cur].rss += v;
		} else if (sscanf(line, "Shared_Clean: %ld", &v) == 1 ||
			   sscanf(line, "Shared_Dirty: %ld", &v) == 1) {
			out[cur].shared += v;
		} else if (sscanf(line, "Private_Clean: %ld", &v) == 1 ||
			   sscanf(line, "Private_Dirty: %ld", &v) == 1) {
			out[cur].priv += v;
		}
	}
	fclose(f);
	return true;
}

static void snapshot(void)
{
	bool pfns = false;

	for (int q = 0; q < NPROC; q++) {
		for (int r = 0; r < NREG; r++)
			if (!read_pagemap(pids[q], r, pm[q][r]))
				wl_die("cannot read the pagemap of %s (pid %d): %s", pname[q],
				       pids[q], strerror(errno));
		if (!read_smaps(pids[q], sm[q]))
			wl_die("cannot read the smaps of %s (pid %d): %s", pname[q], pids[q],
			       strerror(errno));
	}
	for (size_t p = 0; p < regs[R_A].pages && !pfns; p++)
		pfns = (pm[P_R][R_A][p] & PM_PRESENT) && (pm[P_R][R_A][p] & PM_PFN);
	if (!pfns)
		wl_die("the pagemap shows no PFNs (not root?)");
}

/* Checks of process q's region r from the snapshot. */
static void check_snapshot(int q, int r)
{
	size_t np = regs[r].pages, bad_present = 0, bad_excl = 0, bad_frame = 0;
	size_t fp = 0, fe = 0, ff = 0;
	int fq = 0;
	long present = 0, excl = 0;
	char name[64];

	for (size_t p = 0; p < np; p++) {
		uint64_t e = pm[q][r][p];
		int w = writer(q, r, p);
		bool is = e & PM_PRESENT;
		if (is != (w != NONE) || (e & PM_SWAP)) {
			if (!bad_present++)
				fp = p;
			continue;
		}
		if (!is)
			continue;
		if (!(e & PM_EXCLUSIVE) != (sharers(r, p, w) > 1))
			if (!bad_excl++)
				fe = p;
		/* same frame as another process iff the same writer */
		for (int o = 0; o < NPROC; o++) {
			uint64_t f = pm[o][r][p];
			if (o == q || !(f & PM_PRESENT) || writer(o, r, p) == NONE)
				continue;
			if (((e & PM_PFN) == (f & PM_PFN)) != (writer(o, r, p) == w)) {
				if (!bad_frame++)
					ff = p, fq = o;
				break;
			}
		}
	}
	snprintf(name, sizeof(name), "pm_%s_%s_present", pname[q], regs[r].name);
	wl_check(name, !bad_present,
		 "%zu of %zu pages wrong; first: page %zu entry %#llx, expected %s (writer %s)",
		 bad_present, np, fp, (unsigned long long)pm[q][r][fp],
		 writer(q, r, fp) == NONE ? "no page" : "a page",
		 writer(q, r, fp) == NONE ? "none" : pname[writer(q, r, fp)]);
	snprintf(name, sizeof(name), "pm_%s_%s_exclusive", pname[q], regs[r].name);
	wl_check(name, !bad_excl,
		 "%zu pages wrong; first: page %zu exclusive=%d, expected %d (the page of %s, "
		 "which %d process(es) should map)",
		 bad_excl, fe, !!(pm[q][r][fe] & PM_EXCLUSIVE),
		 sharers(r, fe, writer(q, r, fe)) == 1,
		 writer(q, r, fe) == NONE ? "none" : pname[writer(q, r, fe)],
		 sharers(r, fe, writer(q, r, fe)));
	snprintf(name, sizeof(name), "pm_%s_%s_frames", pname[q], regs[r].name);
	wl_check(name, !bad_frame,
		 "%zu pages wrong; first: page %zu: pfn %#llx (writer %s) and %s's pfn %#llx "
		 "(writer %s) should %s",
		 bad_frame, ff, (unsigned long long)(pm[q][r][ff] & PM_PFN),
		 writer(q, r, ff) == NONE ? "none" : pname[writer(q, r, ff)], pname[fq],
		 (unsigned long long)(pm[fq][r][ff] & PM_PFN),
		 writer(fq, r, ff) == NONE ? "none" : pname[writer(fq, r, ff)],
		 writer(fq, r, ff) == writer(q, r, ff) ? "be equal" : "differ");
	/* smaps: expected from the writers (what the pagemap should have said) */
	for (size_t p = 0; p < np; p++) {
		int w = writer(q, r, p);
		present += w != NONE;
		excl += w != NONE && sharers(r, p, w) == 1;
	}
	snprintf(name, sizeof(name), "smaps_%s_%s", pname[q], regs[r].name);
	wl_check(name,
		 sm[q][r].found && sm[q][r].rss == present * 4 &&
		     sm[q][r].shared == (present - excl) * 4 && sm[q][r].priv == excl * 4,
		 "vma %s; Rss %ld Shared %ld Private %ld KiB, expected %ld %ld %ld",
		 sm[q][r].found ? "found" : "NOT found with its range", sm[q][r].rss,
		 sm[q][r].shared, sm[q][r].priv, present * 4, (present - excl) * 4, excl * 4);
}

/* ---- setup ---- */

struct hello {
	int who;
	pid_t pid;
};

static void say_ready(int wfd, int who)
{
	struct hello h = {who, getpid()};

	if (write(wfd, &h, sizeof(h)) != sizeof(h))
		_exit(3);
	close(wfd);
}

static void map_regions(void)
{
	size_t total = PAGE;
	char *base, *at;

	for (int r = 0; r < NREG; r++)
		total += regs[r].pages * PAGE + PAGE;
	/* PROT_NONE pages between the regions: they stay separate VMAs */
	base = mmap(NULL, total, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (base == MAP_FAILED)
		wl_die("mmap %zu: %s", total, strerror(errno));
	at = base + PAGE;
	for (int r = 0; r < NREG; r++) {
		void *m = mmap(at, regs[r].pages * PAGE, PROT_READ | PROT_WRITE,
			       MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
		if (m != at)
			wl_die("mmap region %s: %s", regs[r].name, strerror(errno));
		/* 4 KiB pages whatever the THP setting: the counts are exact */
		madvise(m, regs[r].pages * PAGE, MADV_NOHUGEPAGE);
		regs[r].mem = m;
		at += regs[r].pages * PAGE + PAGE;
	}
}

static pid_t fork_or_die(void)
{
	pid_t p = fork();

	if (p < 0)
		wl_die("fork: %s", strerror(errno));
	return p;
}

int main(void)
{
	char path[PATH_MAX + 16];
	int rp[2];

	wl_init();
	map_regions();
	for (size_t p = 0; p < regs[R_A].pages; p++)
		write_page(R_A, p, P_R);
	for (size_t p = 0; p < regs[R_B].pages; p++)
		write_page(R_B, p, P_R);
	for (size_t p = 0; p < D_HALF; p++)
		write_page(R_D, p, P_R);
	if (pipe(rp))
		wl_die("pipe: %s", strerror(errno));
	pids[P_R] = getpid();

	if (fork_or_die() == 0) { /* C, then G */
		pid_t g;
		close(rp[0]);
		for (int i = 0; i < 8; i++)
			write_page(R_A, c_pages[i], P_C);
		g = fork_or_die();
		if (g == 0) {
			for (int i = 0; i < 8; i++)
				write_page(R_A, g_pages[i], P_G);
			say_ready(rp[1], P_G);
			kid_main(P_G, 0);
		}
		say_ready(rp[1], P_C);
		kid_main(P_C, g);
	}
	if (fork_or_die() == 0) {
		close(rp[0]);
		if (madvise(regs[R_B].mem + DROP_FROM * WORDS, (DROP_TO - DROP_FROM) * PAGE,
			    MADV_DONTNEED))
			_exit(4);
		say_ready(rp[1], P_KDROP);
		kid_main(P_KDROP, 0);
	}
	if (fork_or_die() == 0) {
		close(rp[0]);
		for (size_t p = D_HALF; p < regs[R_D].pages; p++)
			write_page(R_D, p, P_KNEW);
		say_ready(rp[1], P_KNEW);
		kid_main(P_KNEW, 0);
	}
	if (fork_or_die() == 0) {
		close(rp[0]);
		for (size_t p = 0; p < regs[R_A].pages; p++)
			write_page(R_A, p, P_KALL);
		say_ready(rp[1], P_KALL);
		kid_main(P_KALL, 0);
	}
	close(rp[1]);
	for (int n = 1; n < NPROC; n++) {
		struct pollfd pf = {.fd = rp[0], .events = POLLIN};
		struct hello h;
		if (poll(&pf, 1, 10000) != 1 || read(rp[0], &h, sizeof(h)) != sizeof(h) ||
		    h.who <= P_R || h.who >= NPROC || pids[h.who])
			wl_die("%d of %d processes ready: one died or hung", n - 1, NPROC - 1);
		pids[h.who] = h.pid;
	}
	close(rp[0]);
	wl_ready();
	wl_wait_go();

	/* before anything reads the regions (a read maps the zero page) */
	check_mincore("mincore_R_D_upper", R_D, D_HALF, regs[R_D].pages, true);
	snapshot();
	wl_mkfile(wl_path("snapped", path, sizeof(path)), "", 0, 0644);
	for (int q = 0; q < NPROC; q++)
		for (int r = 0; r < NREG; r++)
			check_snapshot(q, r);
	for (int r = 0; r < NREG; r++)
		check_contents(P_R, r);
	check_kid("exit_C", pids[P_C], 9.5);
	check_kid("exit_Kdrop", pids[P_KDROP], 2);
	check_kid("exit_Knew", pids[P_KNEW], 2);
	check_kid("exit_Kall", pids[P_KALL], 2);
	wl_done();
}
