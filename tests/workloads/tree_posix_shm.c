/* tree_posix_shm.c: POSIX shared memory (shm_open, a file under /dev/shm)
 * mapped MAP_SHARED by the root and a child, then closed (only the mappings
 * hold it), with data written by both before the checkpoint. After `go`
 * both check both halves and exchange a token through the mapping
 * (wl_share_*); the root also checks that the object itself, opened again
 * and read with pread, holds the data, and unlinks it. */
#include "wl.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define SIZE (2 << 20)

int main(void)
{
	unsigned char *mem, b = 0;
	char name[64];
	pid_t kid;
	int fd;

	wl_init();
	snprintf(name, sizeof(name), "/cryo-wl-%d", getpid());
	fd = shm_open(name, O_RDWR | O_CREAT | O_EXCL, 0600);
	if (fd < 0 || ftruncate(fd, SIZE))
		wl_die("shm_open %s: %s", name, strerror(errno));
	mem = mmap(NULL, SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (mem == MAP_FAILED)
		wl_die("mmap: %s", strerror(errno));
	close(fd);
	kid = wl_share_start(mem, SIZE);
	wl_ready();
	wl_wait_go();
	wl_share_check(mem, mem, SIZE, kid);
	fd = shm_open(name, O_RDONLY, 0);
	wl_check("object_holds_data",
		 fd >= 0 && pread(fd, &b, 1, SIZE - 1) == 1 && b == mem[SIZE - 1],
		 "last byte 0x%x in the object (fd %d), 0x%x mapped", b, fd, mem[SIZE - 1]);
	shm_unlink(name);
	wl_done();
}
