/* mem.c: workload with data in every kind of mapping (anonymous private incl.
 * untouched and zero pages, a 256 MiB region, shared anonymous, file-backed
 * private and shared, heap/brk, stack, PROT_NONE guard, read-only, libc data)
 * that checks all contents, /proc/self/maps and smaps VmFlags after
 * checkpoint/restore. */
#include "wl.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <unistd.h>

#define PG    4096
#define BIG   (256UL << 20)
#define NHEAP 200

static char maps0[1 << 20], maps1[1 << 20];
static char vmf0[1 << 18], vmf1[1 << 18];
static char scratch[4 << 20];

static uint64_t pat(uint64_t region, uint64_t i)
{
	uint64_t x = (i + 1) * 0x9E3779B97F4A7C15ULL ^ (region << 56) ^ 0x5555aaaa33330000ULL;

	return x ^ (x >> 29);
}

static void fill(void *p, size_t len, uint64_t region, uint64_t start)
{
	uint64_t *w = p;
	size_t i;

	for (i = 0; i < len / 8; i++)
		w[i] = pat(region, start + i);
}

/* index of first mismatching word, or len/8 */
static size_t verify(const void *p, size_t len, uint64_t region, uint64_t start)
{
	const uint64_t *w = p;
	size_t i;

	for (i = 0; i < len / 8; i++)
		if (w[i] != pat(region, start + i))
			break;
	return i;
}

static int is_zero(const void *p, size_t len)
{
	const uint64_t *w = p;
	size_t i;

	for (i = 0; i < len / 8; i++)
		if (w[i])
			return 0;
	return 1;
}

static size_t slurp(const char *path, char *buf, size_t len)
{
	int fd = open(path, O_RDONLY);
	ssize_t n;
	size_t got = 0;

	if (fd < 0)
		return 0;
	while (got < len - 1 && (n = read(fd, buf + got, len - 1 - got)) > 0)
		got += n;
	close(fd);
	buf[got] = 0;
	return got;
}

/* "range VmFlags" for every VMA in smaps */
static void vmflags(char *out, size_t len)
{
	size_t n = slurp("/proc/self/smaps", scratch, sizeof(scratch)), pos = 0;
	char *line, *save, range[64] = "";

	(void)n;
	out[0] = 0;
	for (line = strtok_r(scratch, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		if (!strncmp(line, "VmFlags:", 8)) {
			if (pos < len)
				pos += snprintf(out + pos, len - pos, "%s%s\n", range, line + 8);
		} else if (strchr(line, '-') && line[0] != ' ' &&
			   strchr(line, '-') < strchr(line, ' ')) {
			sscanf(line, "%63s", range);
		}
	}
}

/* perms of the VMA containing addr, from /proc/self/maps */
static void perms_of(void *addr, char *perms)
{
	char *line, *save;
	unsigned long a = (unsigned long)addr, s, e;
	size_t n = slurp("/proc/self/maps", scratch, sizeof(scratch));

	(void)n;
	strcpy(perms, "none");
	for (line = strtok_r(scratch, "\n", &save); line; line = strtok_r(NULL, "\n", &save))
		if (sscanf(line, "%lx-%lx %4s", &s, &e, perms) == 3 && a >= s && a < e)
			return;
	strcpy(perms, "none");
}

/* the inode of a shared anonymous mapping ("/dev/zero (deleted)") is a fresh
 * shmem inode after restore: blank it out, compare everything else */
static void mask_shmem_inode(char *line)
{
	char range[64], perms[8], off[32], dev[32], ino[32], out[256];

	if (!strstr(line, "/dev/zero (deleted)") ||
	    sscanf(line, "%63s %7s %31s %31s %31s", range, perms, off, dev, ino) != 5)
		return;
	snprintf(out, sizeof(out), "%s %s %s %s (ino) /dev/zero (deleted)", range, perms, off, dev);
	if (strlen(out) <= strlen(line))
		strcpy(line, out);
}

/* compare line by line, report every differing line */
static void compare_lines(const char *name, char *a, char *b)
{
	char *sa, *sb, *la = strtok_r(a, "\n", &sa), *lb = strtok_r(b, "\n", &sb);
	int ln = 1, bad = 0;

	while (la || lb) {
		if (la)
			mask_shmem_inode(la);
		if (lb)
			mask_shmem_inode(lb);
		if (!la || !lb || strcmp(la, lb)) {
			if (bad++ < 10)
				wl_check(name, 0, "line %d differs:\n  before: %s\n  now:    %s",
					 ln, la ? la : "(none)", lb ? lb : "(none)");
		}
		if (la)
			la = strtok_r(NULL, "\n", &sa);
		if (lb)
			lb = strtok_r(NULL, "\n", &sb);
		ln++;
	}
	if (!bad)
		wl_check(name, 1, "%s", "");
}

static void make_file(const char *name, int pages, uint64_t region)
{
	int fd = open(name, O_RDWR | O_CREAT | O_TRUNC, 0644);

	fill(scratch, pages * PG, region, 0);
	if (fd < 0 || write(fd, scratch, pages * PG) != pages * PG)
		wl_die("create %s: %s", name, strerror(errno));
	close(fd);
}

int main(void)
{
	volatile uint64_t stackarr[8192];
	char *anon, *big, *shanon, *fpriv, *fshared, *guard, *ro, *brkp, *heap[NHEAP];
	void *brk0;
	int fdp, fds, i, named;
	size_t k;
	char perms[8];

	wl_init();
	/* anonymous private, 16 pages: 0-5 and 12-15 patterned, 6-9 untouched,
	 * 10-11 written with zeros */
	anon = mmap(NULL, 16 * PG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	for (i = 0; i < 16; i++)
		if (i < 6 || i >= 12)
			fill(anon + i * PG, PG, 1 + i, 0);
	memset(anon + 10 * PG, 0, 2 * PG);
	named = prctl(PR_SET_VMA, PR_SET_VMA_ANON_NAME, (unsigned long)anon, 16 * PG,
		      (unsigned long)"cryo-test") == 0;

	big = mmap(NULL, BIG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (big == MAP_FAILED)
		wl_die("mmap 256M: %s", strerror(errno));
	fill(big, BIG, 30, 0);

	shanon = mmap(NULL, 4 * PG, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	fill(shanon, 4 * PG, 31, 0);
	madvise(shanon, 4 * PG, MADV_DONTFORK);
	madvise(anon + 12 * PG, 4 * PG, MADV_WIPEONFORK);

	make_file("priv.bin", 8, 32);
	fdp = open("priv.bin", O_RDONLY);
	fpriv = mmap(NULL, 8 * PG, PROT_READ | PROT_WRITE, MAP_PRIVATE, fdp, 0);
	close(fdp);
	fill(fpriv + 1 * PG, PG, 33, 0);
	fill(fpriv + 5 * PG + 1024, 512, 34, 0); /* part of a page */
	madvise(fpriv, 8 * PG, MADV_SEQUENTIAL);
	/* pages 0,2,3,4,6 read (faulted in) but unchanged, 7 never touched */
	for (i = 0; i < 7; i++)
		(void)*(volatile char *)(fpriv + i * PG);

	make_file("shared.bin", 4, 35);
	fds = open("shared.bin", O_RDWR);
	fshared = mmap(NULL, 4 * PG, PROT_READ | PROT_WRITE, MAP_SHARED, fds, 0);
	fill(fshared + 2 * PG, PG, 36, 0);

	guard = mmap(NULL, 3 * PG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	fill(guard, 3 * PG, 37, 0);
	mprotect(guard + PG, PG, PROT_NONE);

	ro = mmap(NULL, 2 * PG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	fill(ro, 2 * PG, 38, 0);
	mprotect(ro, 2 * PG, PROT_READ);
	madvise(ro, 2 * PG, MADV_DONTDUMP);

	for (i = 0; i < NHEAP; i++) {
		heap[i] = malloc(100 + i * 13);
		fill(heap[i], (100 + i * 13) & ~7, 40 + i, 0);
	}
	brkp = sbrk(64 * 1024);
	fill(brkp, 64 * 1024, 39, 0);
	brk0 = sbrk(0);

	for (k = 0; k < 8192; k++)
		stackarr[k] = pat(41, k);

	opterr = 0;
	optind = 7;

	slurp("/proc/self/maps", maps0, sizeof(maps0));
	vmflags(vmf0, sizeof(vmf0));

	wl_ready();
	wl_wait_go();

	/* first, before anything could change them */
	slurp("/proc/self/maps", maps1, sizeof(maps1));
	vmflags(vmf1, sizeof(vmf1));
	compare_lines("proc_maps", maps0, maps1);
	compare_lines("smaps_vmflags", vmf0, vmf1);

	for (i = 0; i < 16; i++) {
		char name[32];
		snprintf(name, sizeof(name), "anon_page%d", i);
		if (i < 6 || i >= 12) {
			k = verify(anon + i * PG, PG, 1 + i, 0);
			wl_check(name, k == PG / 8, "word %zu differs", k);
		} else {
			wl_check(name, is_zero(anon + i * PG, PG), "not zero");
		}
	}
	if (named) {
		slurp("/proc/self/maps", maps1, sizeof(maps1));
		wl_check("anon_vma_name", strstr(maps1, "[anon:cryo-test]") != NULL, "name lost");
	}
	k = verify(big, BIG, 30, 0);
	wl_check("big_256m", k == BIG / 8, "word %zu (page %zu) is %#llx, expected %#llx", k,
		 k * 8 / PG, k < BIG / 8 ? (unsigned long long)((uint64_t *)big)[k] : 0ULL,
		 (unsigned long long)pat(30, k));

	k = verify(shanon, 4 * PG, 31, 0);
	wl_check("shared_anon", k == 4 * PG / 8, "word %zu differs", k);

	for (i = 0; i < 8; i++) {
		char name[32], filepg[PG];
		int fd = open("priv.bin", O_RDONLY);
		ssize_t r = pread(fd, filepg, PG, i * PG);
		close(fd);
		snprintf(name, sizeof(name), "file_private_page%d", i);
		if (i == 1) {
			k = verify(fpriv + PG, PG, 33, 0);
			wl_check(name, k == PG / 8, "changed page lost the change at word %zu", k);
		} else if (i == 5) {
			int ok = verify(fpriv + 5 * PG + 1024, 512, 34, 0) == 64 &&
				 memcmp(fpriv + 5 * PG, filepg, 1024) == 0 &&
				 memcmp(fpriv + 5 * PG + 1536, filepg + 1536, PG - 1536) == 0;
			wl_check(name, ok, "partly changed page wrong");
		} else {
			wl_check(name, r == PG && memcmp(fpriv + i * PG, filepg, PG) == 0,
				 "differs from the file");
		}
		if (i == 1 || i == 5) {
			snprintf(name, sizeof(name), "file_private_file%d", i);
			wl_check(name, r == PG && verify(filepg, PG, 32, i * PG / 8) == PG / 8,
				 "private change leaked into the file");
		}
	}

	{
		char filepg[PG];
		ssize_t r = pread(fds, filepg, PG, 2 * PG);
		wl_check("file_shared_in_file", r == PG && verify(filepg, PG, 36, 0) == PG / 8,
			 "file page 2 lacks the write done through the mapping");
		k = verify(fshared, 2 * PG, 35, 0);
		wl_check("file_shared_unchanged", k == 2 * PG / 8, "word %zu differs", k);
		fshared[3 * PG + 5] = 'Q';
		r = pread(fds, filepg, 8, 3 * PG);
		wl_check("file_shared_still_shared_w", r == 8 && filepg[5] == 'Q',
			 "write through mapping not seen in the file");
		r = pwrite(fds, "Z", 1, 3 * PG + 6);
		wl_check("file_shared_still_shared_r", r == 1 && fshared[3 * PG + 6] == 'Z',
			 "pwrite not seen in the mapping");
	}

	perms_of(guard + PG, perms);
	wl_check("guard_prot_none", strcmp(perms, "---p") == 0, "perms %s", perms);
	wl_check("guard_neighbours",
		 verify(guard, PG, 37, 0) == PG / 8 &&
		     verify(guard + 2 * PG, PG, 37, 2 * PG / 8) == PG / 8,
		 "content around the guard differs");
	perms_of(ro, perms);
	wl_check("readonly_perms", strcmp(perms, "r--p") == 0, "perms %s", perms);
	wl_check("readonly_content", verify(ro, 2 * PG, 38, 0) == 2 * PG / 8, "content differs");

	{
		int bad = -1;
		for (i = 0; i < NHEAP && bad < 0; i++)
			if (verify(heap[i], (100 + i * 13) & ~7, 40 + i, 0) !=
			    (size_t)((100 + i * 13) & ~7) / 8)
				bad = i;
		wl_check("heap_malloc", bad < 0, "allocation %d differs", bad);
		for (i = 0; i < NHEAP; i++)
			free(heap[i]);
	}
	wl_check("brk_content", verify(brkp, 64 * 1024, 39, 0) == 64 * 1024 / 8, "differs");
	wl_check("brk_value", sbrk(0) == brk0, "sbrk(0) %p, expected %p", sbrk(0), brk0);

	for (k = 0; k < 8192 && stackarr[k] == pat(41, k); k++)
		;
	wl_check("stack_array", k == 8192, "word %zu differs", k);
	wl_check("libc_globals", opterr == 0 && optind == 7, "opterr %d optind %d", opterr, optind);
	wl_done();
}
