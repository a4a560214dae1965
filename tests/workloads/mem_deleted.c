/* mem_deleted.c: a file mapped twice, shared and private, kept open, and
 * then deleted. The private mapping has one page changed. After `go`: the
 * shared mapping and the fd are still one object (a write through either
 * shows in the other), the private mapping keeps its changed page and shows
 * the file elsewhere, maps still says "(deleted)", the file stays deleted. */
#include "wl.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define SIZE (64 << 10)

static int maps_says_deleted(const void *p)
{
	char line[512];
	FILE *f = fopen("/proc/self/maps", "r");
	int found = 0;

	while (f && fgets(line, sizeof(line), f)) {
		unsigned long a, b;
		if (sscanf(line, "%lx-%lx", &a, &b) == 2 && (unsigned long)p >= a &&
		    (unsigned long)p < b)
			found = strstr(line, "victim.dat (deleted)") != NULL;
	}
	if (f)
		fclose(f);
	return found;
}

int main(void)
{
	unsigned char *shared, *priv, b = 0;
	char path[4096];
	struct stat st;
	long bad = -1;
	int fd;

	wl_init();
	wl_path("victim.dat", path, sizeof(path));
	fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
	if (fd < 0 || ftruncate(fd, SIZE))
		wl_die("open %s: %s", path, strerror(errno));
	shared = mmap(NULL, SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	priv = mmap(NULL, SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
	if (shared == MAP_FAILED || priv == MAP_FAILED)
		wl_die("mmap: %s", strerror(errno));
	for (size_t i = 0; i < SIZE; i++)
		shared[i] = (unsigned char)(i * 3 + 5);
	memset(priv + 4096, 0xab, 4096); /* private copy of one page */
	unlink(path);
	wl_ready();
	wl_wait_go();
	for (size_t i = 0; i < SIZE && bad < 0; i++) {
		unsigned char want = (unsigned char)(i * 3 + 5);
		if (shared[i] != want || priv[i] != (i / 4096 == 1 ? 0xab : want))
			bad = i;
	}
	wl_check("contents", bad < 0, "byte %ld differs", bad);
	b = 0x11;
	wl_check("fd_to_shared", pwrite(fd, &b, 1, 7) == 1 && shared[7] == 0x11, "0x%x", shared[7]);
	shared[9] = 0x22;
	wl_check("shared_to_fd", pread(fd, &b, 1, 9) == 1 && b == 0x22, "0x%x", b);
	wl_check("still_deleted", fstat(fd, &st) == 0 && st.st_nlink == 0, "nlink %lu",
		 (unsigned long)st.st_nlink);
	wl_check("maps_deleted", maps_says_deleted(shared) && maps_says_deleted(priv),
		 "maps does not say deleted");
	wl_done();
}
