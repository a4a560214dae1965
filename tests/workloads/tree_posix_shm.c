/* tree_posix_shm.c: POSIX shared memory (shm_open, a file under /dev/shm)
 * mapped MAP_SHARED by the root and a child, with data written by both
 * before the checkpoint. After `go` the child checks both patterns and
 * answers a token through the mapping; the root checks the same, that the
 * object itself (read with pread through a new descriptor) holds the data,
 * and unlinks it. */
#include "wl.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define SIZE (2 << 20)
#define HALF (SIZE / 2)

static unsigned char *mem;

static unsigned char byte_of(int who, size_t i)
{
	return (unsigned char)(i * 13 + who * 101 + 7);
}

static long half_bad(int who)
{
	for (size_t i = 64; i < HALF; i++)
		if (mem[who * HALF + i] != byte_of(who, i))
			return i;
	return -1;
}

int main(void)
{
	char name[64];
	volatile uint32_t *words;
	pid_t kid;
	int fd, st;

	wl_init();
	snprintf(name, sizeof(name), "/cryo-wl-%d", getpid());
	fd = shm_open(name, O_RDWR | O_CREAT | O_EXCL, 0600);
	if (fd < 0 || ftruncate(fd, SIZE))
		wl_die("shm_open %s: %s", name, strerror(errno));
	mem = mmap(NULL, SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (mem == MAP_FAILED)
		wl_die("mmap: %s", strerror(errno));
	close(fd); /* only the mappings hold it now */
	words = (volatile uint32_t *)mem;
	for (size_t i = 64; i < HALF; i++)
		mem[i] = byte_of(0, i);
	kid = fork();
	if (kid == 0) {
		for (size_t i = 64; i < HALF; i++)
			mem[HALF + i] = byte_of(1, i);
		words[0] = 1;
		wl_wait_go();
		if (half_bad(0) >= 0 || half_bad(1) >= 0)
			_exit(10);
		words[1] = 0xabc;
		_exit(wl_wait_u32(&words[2], 0xdef) ? 0 : 11);
	}
	if (!wl_wait_u32(&words[0], 1))
		wl_die("the child did not write its half");
	wl_ready();
	wl_wait_go();
	wl_check("root_half", half_bad(0) < 0, "byte %ld differs", half_bad(0));
	wl_check("child_half", half_bad(1) < 0, "byte %ld differs", half_bad(1));
	if (wl_check("token", wl_wait_u32(&words[1], 0xabc), "token 0x%x", words[1]))
		words[2] = 0xdef;
	wl_check("child", waitpid(kid, &st, 0) == kid && WIFEXITED(st) && !WEXITSTATUS(st),
		 "status 0x%x", st);
	fd = shm_open(name, O_RDONLY, 0);
	unsigned char b = 0;
	wl_check("object_holds_data",
		 fd >= 0 && pread(fd, &b, 1, HALF + 100) == 1 && b == byte_of(1, 100),
		 "byte %u in the object (fd %d)", b, fd);
	shm_unlink(name);
	wl_done();
}
