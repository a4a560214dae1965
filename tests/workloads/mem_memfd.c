/* mem_memfd.c: a memfd mapped shared twice (a read-write and a read-only
 * view, as a JIT does) and then closed: only the mappings hold it; and a
 * second memfd both mapped and kept open. After `go`: both views hold the
 * data written before the checkpoint, a write through one view is seen in
 * the other, /proc/self/maps still names the memfd, the read-only view is
 * read-only; for the second, a write through the fd shows in the mapping
 * and one through the mapping in the fd: still one object. */
#include "wl.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define SIZE (256 << 10)

/* The maps line of the mapping at p, or "". */
static void maps_line(const void *p, char *out, size_t len)
{
	char line[512];
	FILE *f = fopen("/proc/self/maps", "r");

	out[0] = '\0';
	while (f && fgets(line, sizeof(line), f)) {
		unsigned long a, b;
		if (sscanf(line, "%lx-%lx", &a, &b) == 2 && (unsigned long)p >= a &&
		    (unsigned long)p < b)
			snprintf(out, len, "%s", line);
	}
	if (f)
		fclose(f);
}

int main(void)
{
	unsigned char *rw, *ro, *both, b = 0;
	char line[512];
	int fd, fd2;
	long bad = -1;

	wl_init();
	fd = memfd_create("wl-jit", MFD_CLOEXEC);
	if (fd < 0 || ftruncate(fd, SIZE))
		wl_die("memfd_create: %s", strerror(errno));
	rw = mmap(NULL, SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	ro = mmap(NULL, SIZE, PROT_READ, MAP_SHARED, fd, 0);
	if (rw == MAP_FAILED || ro == MAP_FAILED)
		wl_die("mmap: %s", strerror(errno));
	close(fd);
	for (size_t i = 0; i < SIZE; i++)
		rw[i] = (unsigned char)(i * 7 + 1);
	fd2 = memfd_create("wl-both", MFD_CLOEXEC);
	if (fd2 < 0 || ftruncate(fd2, 8192))
		wl_die("memfd_create: %s", strerror(errno));
	both = mmap(NULL, 8192, PROT_READ | PROT_WRITE, MAP_SHARED, fd2, 0);
	if (both == MAP_FAILED)
		wl_die("mmap: %s", strerror(errno));
	memset(both, 0x5a, 8192);
	wl_ready();
	wl_wait_go();
	for (size_t i = 0; i < SIZE && bad < 0; i++)
		if (rw[i] != (unsigned char)(i * 7 + 1) || ro[i] != rw[i])
			bad = i;
	wl_check("contents", bad < 0, "byte %ld differs", bad);
	rw[100] = 0xee;
	wl_check("views_shared", ro[100] == 0xee, "the read-only view shows 0x%x", ro[100]);
	maps_line(ro, line, sizeof(line));
	wl_check("maps_name", strstr(line, "/memfd:wl-jit (deleted)") != NULL, "maps: %s", line);
	wl_check("readonly_view", strstr(line, " r--s ") != NULL, "maps: %s", line);
	wl_check("both_contents", both[0] == 0x5a && both[8191] == 0x5a, "0x%x 0x%x", both[0],
		 both[8191]);
	b = 0x77;
	wl_check("fd_to_mapping", pwrite(fd2, &b, 1, 10) == 1 && both[10] == 0x77,
		 "the mapping shows 0x%x", both[10]);
	both[20] = 0x66;
	wl_check("mapping_to_fd", pread(fd2, &b, 1, 20) == 1 && b == 0x66, "the fd reads 0x%x", b);
	wl_done();
}
