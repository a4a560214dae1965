/* tree_sysv_rmid.c: a System V shared memory segment marked for removal
 * while attached (the usual way to have it vanish with its last user):
 * the root attaches it twice (read-write and read-only), removes it
 * (IPC_RMID), then forks a child that inherits both attachments. After
 * `go`: the same shmid, still marked for removal (SHM_DEST) with key
 * IPC_PRIVATE, attached 4 times, its contents intact and a write in one
 * process seen in the other both ways (wl_share_*); once the child has
 * exited and the root detaches, the segment is gone. */
#include "wl.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/ipc.h>
#include <sys/shm.h>
#include <unistd.h>

#define SIZE	 (256 << 10)
#define SHM_DEST 01000

int main(void)
{
	const unsigned char *ro;
	unsigned char *mem;
	struct shmid_ds ds;
	pid_t kid;
	int id, r;

	wl_init();
	id = shmget(IPC_PRIVATE, SIZE, IPC_CREAT | 0600);
	if (id < 0)
		wl_die("shmget: %s", strerror(errno));
	mem = shmat(id, NULL, 0);
	ro = shmat(id, NULL, SHM_RDONLY);
	if (mem == (void *)-1 || ro == (void *)-1 || shmctl(id, IPC_RMID, NULL)) {
		shmctl(id, IPC_RMID, NULL);
		wl_die("shmat/IPC_RMID: %s", strerror(errno));
	}
	kid = wl_share_start(mem, SIZE);
	wl_ready();
	wl_wait_go();
	r = shmctl(id, IPC_STAT, &ds);
	wl_check("shmid", r == 0, "IPC_STAT of %d: %s", id, strerror(errno));
	wl_check("marked_for_removal", r == 0 && (ds.shm_perm.mode & SHM_DEST),
		 "mode 0%o has no SHM_DEST", ds.shm_perm.mode);
	wl_check("key_private", r == 0 && ds.shm_perm.__key == IPC_PRIVATE, "key 0x%x",
		 ds.shm_perm.__key);
	wl_check("size_mode", r == 0 && ds.shm_segsz == SIZE && (ds.shm_perm.mode & 0777) == 0600,
		 "size %zu mode 0%o", ds.shm_segsz, ds.shm_perm.mode & 0777);
	wl_check("attached_4", r == 0 && ds.shm_nattch == 4, "shm_nattch %lu",
		 (unsigned long)ds.shm_nattch);
	wl_share_check(mem, ro, SIZE, kid); /* reaps the child */
	shmdt(mem);
	shmdt(ro);
	r = shmctl(id, IPC_STAT, &ds);
	wl_check("gone_after_last_detach", r < 0 && (errno == EINVAL || errno == EIDRM),
		 "IPC_STAT after the last detach: %d (%s)", r, strerror(errno));
	wl_done();
}
