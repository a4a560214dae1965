/* mem_cow_file.c: a private file mapping shared copy-on-write after fork.
 * A file of 16 pages (pattern 1) is mapped private by the root, which
 * writes pages 0-3 (pattern 2), then forks a child, which writes pages 4-7
 * (pattern 3); the root then writes page 8 (pattern 4). After `go`, in
 * both processes: every page holds what that process should see (its own
 * writes, the root's from before the fork, the file elsewhere); pages
 * 9-15, which nobody wrote, are the file's own page-cache pages (the same
 * frame, read from /proc/self/pagemap, as a shared mapping of the file
 * shows), the child's page 8 too (the root's write stayed the root's);
 * pages 0-3 are still one frame for both processes (shared copy-on-write,
 * not copied), and the pages one process wrote after the fork are not the
 * other's frames. */
#include "wl.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#define PG  4096
#define NPG 16

struct ctl {
	volatile uint32_t kid_ready, kid_done;
	uint64_t kid_pfn[NPG];
};

static unsigned char *priv, *view;
static unsigned char file_data[NPG * PG];

static uint64_t pfn_of(const void *addr)
{
	uint64_t pm = 0;
	int fd = open("/proc/self/pagemap", O_RDONLY);

	(void)*(const volatile unsigned char *)addr; /* fault it in */
	if (fd < 0 || pread(fd, &pm, 8, (uintptr_t)addr / PG * 8) != 8)
		wl_die("pagemap: %s", strerror(errno));
	close(fd);
	return pm & ((1ULL << 55) - 1);
}

/* The pattern page P should hold in process WHO (0 root, 1 child). */
static int want_seed(int p, int who)
{
	if (p < 4)
		return 2;
	if (p < 8 && who == 1)
		return 3;
	if (p == 8 && who == 0)
		return 4;
	return 1;
}

static void check_contents(const char *who_name, int who)
{
	char name[64];

	for (int p = 0; p < NPG; p++) {
		static unsigned char want[PG];
		int seed = want_seed(p, who);
		if (seed == 1)
			memcpy(want, file_data + p * PG, PG);
		else
			wl_fill(want, PG, seed * 100 + p);
		snprintf(name, sizeof(name), "%s_page%d", who_name, p);
		wl_check(name, !memcmp(priv + p * PG, want, PG), "holds the wrong data");
	}
}

/* Untouched pages (in WHO's view) are the frames of the file's page cache. */
static void check_file_backed(const char *who_name, int who)
{
	char name[64];
	int bad = -1;

	for (int p = 0; p < NPG && bad < 0; p++)
		if (want_seed(p, who) == 1 && pfn_of(priv + p * PG) != pfn_of(view + p * PG))
			bad = p;
	snprintf(name, sizeof(name), "%s_untouched_are_file_pages", who_name);
	wl_check(name, bad < 0, "page %d is a copy, not the file's page", bad);
}

int main(void)
{
	char path[4096];
	struct ctl *ctl;
	pid_t kid;
	int fd;

	wl_init();
	wl_fill(file_data, sizeof(file_data), 1);
	wl_mkfile(wl_path("cow_file.data", path, sizeof(path)), file_data, sizeof(file_data), 0600);
	fd = open(path, O_RDONLY);
	priv =
	    fd < 0 ? MAP_FAILED : mmap(NULL, NPG * PG, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
	view = fd < 0 ? MAP_FAILED : mmap(NULL, NPG * PG, PROT_READ, MAP_SHARED, fd, 0);
	ctl = mmap(NULL, PG, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (priv == MAP_FAILED || view == MAP_FAILED || ctl == MAP_FAILED)
		wl_die("setup: %s", strerror(errno));
	close(fd);
	for (int p = 0; p < 4; p++)
		wl_fill(priv + p * PG, PG, 200 + p);
	kid = fork();
	if (kid == 0) {
		for (int p = 4; p < 8; p++)
			wl_fill(priv + p * PG, PG, 300 + p);
		ctl->kid_ready = 1;
		wl_wait_go();
		check_contents("child", 1);
		check_file_backed("child", 1);
		for (int p = 0; p < NPG; p++)
			ctl->kid_pfn[p] = pfn_of(priv + p * PG);
		ctl->kid_done = 1;
		_exit(wl_failures() ? 1 : 0);
	}
	if (!wl_wait_u32(&ctl->kid_ready, 1))
		wl_die("the child did not get ready");
	wl_fill(priv + 8 * PG, PG, 408);
	wl_ready();
	wl_wait_go();
	check_contents("root", 0);
	check_file_backed("root", 0);
	if (!wl_wait_u32(&ctl->kid_done, 1))
		wl_die("the child did not finish its checks");
	{
		int bad = -1, mixed = -1;
		for (int p = 0; p < 4 && bad < 0; p++)
			if (ctl->kid_pfn[p] != pfn_of(priv + p * PG))
				bad = p;
		for (int p = 4; p < 9 && mixed < 0; p++)
			if (ctl->kid_pfn[p] == pfn_of(priv + p * PG))
				mixed = p;
		wl_check("cow_shared_pages", bad < 0, "page %d is not one frame for both", bad);
		wl_check("own_writes_private", mixed < 0, "page %d is one frame for both", mixed);
	}
	wl_check_child("child_cow_file", kid);
	wl_done();
}
