/* tree_sysv.c: a System V shared memory segment (1 MiB, mode 0640) attached
 * by the root and by a child, each writing half of it before the
 * checkpoint, and a second, read-only attachment in the root. After `go`:
 * the same shmid, size and mode (shmctl IPC_STAT), both halves intact in
 * every attachment, the read-only one still read-only, and a write in one
 * process seen in the other both ways. The root removes the segment. */
#include "wl.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/ipc.h>
#include <sys/mman.h>
#include <sys/shm.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define SIZE (1 << 20)
#define HALF (SIZE / 2)

static unsigned char *mem;

static unsigned char byte_of(int who, size_t i)
{
	return (unsigned char)(i * 11 + who * 89 + 3);
}

static long half_bad(const unsigned char *m, int who)
{
	for (size_t i = 64; i < HALF; i++)
		if (m[who * HALF + i] != byte_of(who, i))
			return i;
	return -1;
}

/* Is the page at p mapped without write permission? From /proc/self/maps. */
static int read_only(const void *p)
{
	char line[512];
	FILE *f = fopen("/proc/self/maps", "r");
	int ro = -1;

	while (f && fgets(line, sizeof(line), f)) {
		unsigned long a, b;
		char perms[8];
		if (sscanf(line, "%lx-%lx %7s", &a, &b, perms) == 3 && (unsigned long)p >= a &&
		    (unsigned long)p < b)
			ro = perms[1] != 'w';
	}
	if (f)
		fclose(f);
	return ro;
}

int main(void)
{
	volatile uint32_t *words;
	const unsigned char *ro;
	struct shmid_ds ds;
	int id, st;
	pid_t kid;

	wl_init();
	id = shmget(IPC_PRIVATE, SIZE, IPC_CREAT | 0640);
	if (id < 0)
		wl_die("shmget: %s", strerror(errno));
	mem = shmat(id, NULL, 0);
	ro = shmat(id, NULL, SHM_RDONLY);
	if (mem == (void *)-1 || ro == (void *)-1) {
		shmctl(id, IPC_RMID, NULL);
		wl_die("shmat: %s", strerror(errno));
	}
	words = (volatile uint32_t *)mem;
	for (size_t i = 64; i < HALF; i++)
		mem[i] = byte_of(0, i);
	kid = fork();
	if (kid == 0) {
		for (size_t i = 64; i < HALF; i++)
			mem[HALF + i] = byte_of(1, i);
		words[0] = 1;
		wl_wait_go();
		if (half_bad(mem, 0) >= 0 || half_bad(mem, 1) >= 0)
			_exit(10);
		words[1] = 0x5151;
		_exit(wl_wait_u32(&words[2], 0x7272) ? 0 : 11);
	}
	if (!wl_wait_u32(&words[0], 1)) {
		shmctl(id, IPC_RMID, NULL);
		wl_die("the child did not write its half");
	}
	wl_ready();
	wl_wait_go();
	wl_check("shmid", shmctl(id, IPC_STAT, &ds) == 0, "IPC_STAT of %d: %s", id,
		 strerror(errno));
	wl_check("size_mode", ds.shm_segsz == SIZE && (ds.shm_perm.mode & 0777) == 0640,
		 "size %zu mode 0%o", ds.shm_segsz, ds.shm_perm.mode & 0777);
	wl_check("root_half", half_bad(mem, 0) < 0, "byte %ld differs", half_bad(mem, 0));
	wl_check("child_half", half_bad(mem, 1) < 0, "byte %ld differs", half_bad(mem, 1));
	wl_check("readonly_view", half_bad(ro, 1) < 0, "byte %ld differs", half_bad(ro, 1));
	wl_check("readonly_perm", read_only(ro) == 1, "maps says %d", read_only(ro));
	if (wl_check("token", wl_wait_u32(&words[1], 0x5151), "token 0x%x", words[1]))
		words[2] = 0x7272;
	wl_check("child", waitpid(kid, &st, 0) == kid && WIFEXITED(st) && !WEXITSTATUS(st),
		 "status 0x%x", st);
	shmctl(id, IPC_RMID, NULL);
	wl_done();
}
