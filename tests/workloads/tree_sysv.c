/* tree_sysv.c: a System V shared memory segment (1 MiB, mode 0640) attached
 * by the root and by a child, each writing half of it before the
 * checkpoint, and a second, read-only attachment in the root. After `go`:
 * the same shmid, size and mode (shmctl IPC_STAT), both halves intact in
 * every attachment, the read-only one still read-only, and a write in one
 * process seen in the other both ways (wl_share_*). The root removes the
 * segment. */
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
	const unsigned char *ro;
	unsigned char *mem;
	struct shmid_ds ds;
	pid_t kid;
	int id;

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
	kid = wl_share_start(mem, SIZE);
	wl_ready();
	wl_wait_go();
	wl_check("shmid", shmctl(id, IPC_STAT, &ds) == 0, "IPC_STAT of %d: %s", id,
		 strerror(errno));
	wl_check("size_mode", ds.shm_segsz == SIZE && (ds.shm_perm.mode & 0777) == 0640,
		 "size %zu mode 0%o", ds.shm_segsz, ds.shm_perm.mode & 0777);
	wl_share_check(mem, ro, SIZE, kid);
	wl_check("readonly_perm", read_only(ro) == 1, "maps says %d", read_only(ro));
	shmctl(id, IPC_RMID, NULL);
	wl_done();
}
