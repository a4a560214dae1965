/* mem_past_eof.c: mappings longer than their file. A file of 2.5 pages
 * (pattern 1) is mapped 4 pages long twice: shared, its page 1 rewritten
 * (pattern 2, so into the file), and private, its page 0 and the first
 * half of page 2 rewritten (pattern 3, private to the process). After
 * `go`: page 3 of either mapping still raises SIGBUS (beyond the end of the
 * file), the private mapping's written bytes are its own, the rest of its
 * page 2 past the end of the file reads zeros, its untouched page 1 is
 * still the file's page (it shows the shared mapping's write, and a
 * pwrite() into the file made after `go`); the file holds pattern 2 in page
 * 1; and once the file is extended to 4 pages, page 3 of the shared mapping
 * reads the file's new zeros instead of faulting. */
#include "wl.h"

#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define PG	  4096
#define FILE_LEN  (2 * PG + PG / 2)
#define MAP_LEN	  (4 * PG)
#define PRIV_LEN2 (PG / 2) /* bytes of page 2 written privately: all within the file */

static sigjmp_buf jump;
static volatile sig_atomic_t got_bus;

static void on_bus(int sig)
{
	(void)sig;
	got_bus = 1;
	siglongjmp(jump, 1);
}

/* Whether reading the byte at P raises SIGBUS. */
static bool faults(const volatile unsigned char *p)
{
	got_bus = 0;
	if (!sigsetjmp(jump, 1))
		(void)*p;
	return got_bus;
}

static bool is_zero(const unsigned char *p, size_t n)
{
	while (n && !*p)
		p++, n--;
	return !n;
}

int main(void)
{
	static unsigned char file_data[FILE_LEN], page[PG];
	char path[4096];
	unsigned char *shared, *priv;
	int fd;

	wl_init();
	wl_fill(file_data, FILE_LEN, 1);
	wl_mkfile(wl_path("past_eof.data", path, sizeof(path)), file_data, FILE_LEN, 0600);
	fd = open(path, O_RDWR);
	shared =
	    fd < 0 ? MAP_FAILED : mmap(NULL, MAP_LEN, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	priv =
	    fd < 0 ? MAP_FAILED : mmap(NULL, MAP_LEN, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
	if (shared == MAP_FAILED || priv == MAP_FAILED)
		wl_die("setup: %s", strerror(errno));
	wl_on_signal(SIGBUS, on_bus);
	wl_fill(shared + PG, PG, 2);
	wl_fill(priv, PG, 3);
	wl_fill(priv + 2 * PG, PRIV_LEN2, 4);
	if (!faults(shared + 3 * PG) || !faults(priv + 3 * PG))
		wl_die("page 3 did not fault before the checkpoint");
	wl_ready();
	wl_wait_go();

	wl_check("shared_past_eof_sigbus", faults(shared + 3 * PG), "page 3 read without SIGBUS");
	wl_check("private_past_eof_sigbus", faults(priv + 3 * PG), "page 3 read without SIGBUS");
	wl_check_pattern("private_page0", priv, PG, 3);
	wl_check_pattern("private_page2_written", priv + 2 * PG, PRIV_LEN2, 4);
	wl_check("private_page2_tail_zero",
		 is_zero(priv + 2 * PG + FILE_LEN % PG, PG - FILE_LEN % PG),
		 "bytes past the end of the file are not zero");
	wl_check_pattern("private_page1_is_files", priv + PG, PG, 2);
	wl_check_pattern("shared_page0", shared, PG, 1);
	wl_check_pattern("shared_page1", shared + PG, PG, 2);
	wl_check("file_page1", pread(fd, page, PG, PG) == PG && wl_first_bad(page, PG, 2) == PG,
		 "the file's page 1 is not the shared mapping's write");
	/* the private page 1 and the shared one are the file's page cache */
	wl_fill(page, PG, 5);
	if (pwrite(fd, page, PG, PG) != PG)
		wl_die("pwrite: %s", strerror(errno));
	wl_check_pattern("private_page1_follows_file", priv + PG, PG, 5);
	wl_check_pattern("shared_page1_follows_file", shared + PG, PG, 5);
	if (ftruncate(fd, MAP_LEN))
		wl_die("ftruncate: %s", strerror(errno));
	wl_check("shared_page3_after_extend",
		 !faults(shared + 3 * PG) && is_zero(shared + 3 * PG, PG),
		 "page 3 of the extended file does not read as zeros");
	close(fd);
	wl_done();
}
