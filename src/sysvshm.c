/*
 * sysvshm: System V shared memory segments attached by the checkpoint's
 * processes: key, id, permissions, owner and contents.
 *
 * Dump: every segment some process maps ("/SYSV<key> (deleted)" in its
 * maps, the inode being the shmid) is described from /proc/sysvipc/shm and
 * its contents read through /proc/PID/map_files, which opens the segment
 * without attaching it (attaching would change its attach count and times).
 * A segment attached other than whole at offset 0 is refused. sysvshm.img
 * holds them all, once, a segment already marked for removal (IPC_RMID
 * while attached; its key is IPC_PRIVATE by then) flagged so.
 *
 * Restore: before any process exists, each segment is made again with its
 * id (kernel.shm_next_id) and key, or, when the dump killed its users and
 * left it behind, the same segment (same id, key and size, attached by
 * nobody) is taken over; the contents are written back and the owner and
 * permissions set. Each process then attaches it at its address by an
 * injected shmat(). A segment that was marked for removal is marked again
 * once every process has attached it, before any of them runs. Segments
 * this restore made are removed again if the restore fails.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ipc.h>
#include <sys/mman.h>
#include <sys/shm.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "images.h"
#include "sysvshm.pb-c.h"
#include "sysvshm.h"
#include "infra/log.h"

#define SYSVSHM_MAX  (64ULL << 20)
#define SHM_DEST_BIT 01000
#define NEXT_ID	     "/proc/sys/kernel/shm_next_id"

/* ---- dump ---- */

struct shm_info_line {
	int key, id;
	unsigned perms, uid, gid;
	unsigned long long size;
};

static int read_shm_info(int id, struct shm_info_line *out)
{
	FILE *f = fopen("/proc/sysvipc/shm", "re");
	char line[512];

	if (!f)
		return err_errno("cannot read /proc/sysvipc/shm");
	while (fgets(line, sizeof(line), f)) {
		struct shm_info_line l;
		if (sscanf(line, "%d %d %o %llu %*d %*d %*d %u %u", &l.key, &l.id, &l.perms,
			   &l.size, &l.uid, &l.gid) == 6 &&
		    l.id == id) {
			fclose(f);
			*out = l;
			return 0;
		}
	}
	fclose(f);
	return err_set("System V shared memory %d is not in /proc/sysvipc/shm", id);
}

static int read_contents(pid_t pid, const VmaEntry *v, SysvshmEntry *e)
{
	int fd = proc_open_map_file(pid, v->start, v->end, O_RDONLY);

	if (fd < 0)
		return err_wrap("System V shared memory %d", e->id);
	e->data.data = malloc(e->size ? e->size : 1);
	if (!e->data.data) {
		close(fd);
		return err_set("out of memory");
	}
	e->data.len = e->size;
	for (size_t done = 0; done < e->size;) {
		ssize_t n = pread(fd, e->data.data + done, e->size - done, done);
		if (n <= 0) {
			close(fd);
			return err_errno("cannot read System V shared memory %d", e->id);
		}
		done += n;
	}
	close(fd);
	return 0;
}

static int describe(pid_t pid, const VmaEntry *v, SysvshmEntry *e)
{
	struct shm_info_line l = {0};

	sysvshm_entry__init(e); /* freed as one whatever happens below */
	if (read_shm_info(v->shmem_id, &l))
		return -1;
	if (l.size > SYSVSHM_MAX)
		return err_set("pid %d maps System V shared memory %d of %llu bytes: cryo saves at "
			       "most %llu",
			       pid, l.id, l.size, SYSVSHM_MAX);
	if (v->pgoff || v->end - v->start < l.size)
		return err_set("pid %d maps part of System V shared memory %d at 0x%llx: not "
			       "supported yet",
			       pid, l.id, (unsigned long long)v->start);
	e->key = l.key;
	e->id = l.id;
	e->mode = l.perms & 0777;
	e->uid = l.uid;
	e->gid = l.gid;
	e->size = l.size;
	e->has_removed = true;
	e->removed = (l.perms & SHM_DEST_BIT) != 0;
	return read_contents(pid, v, e);
}

static bool seen(SysvshmEntry **list, size_t n, int64_t id)
{
	for (size_t i = 0; i < n; i++)
		if (list[i]->id == id)
			return true;
	return false;
}

static int write_list(struct dump_tree *tree, SysvshmEntry **list, size_t n)
{
	struct img_out out;
	int ret = image_out_open(&tree->dir, &out, IMAGE_SYSVSHM, 0);

	for (size_t i = 0; !ret && i < n; i++)
		ret = img_out_msg(&out, &list[i]->base);
	if (!ret)
		ret = img_out_close(&out);
	if (ret)
		img_out_discard(&out);
	return ret;
}

/* Once every process's memory map is known: each segment, once. */
int sysvshm_dump(struct dump_tree *tree)
{
	SysvshmEntry **list = NULL;
	size_t n = 0;
	int ret = 0;

	for (int p = 0; p < tree->nr_procs && !ret; p++) {
		const struct dump_ctx *ctx = tree->procs[p];
		for (size_t i = 0; !ctx->zombie && i < ctx->mm->n_vmas && !ret; i++) {
			const VmaEntry *v = ctx->mm->vmas[i];
			SysvshmEntry **grown;
			if (v->kind != VMA_KIND__SYSV_SHM || seen(list, n, v->shmem_id))
				continue;
			grown = realloc(list, (n + 1) * sizeof(*list));
			if (!grown || !(grown[n] = calloc(1, sizeof(**grown)))) {
				ret = err_set("out of memory");
				list = grown ? grown : list;
				break;
			}
			list = grown;
			ret = describe(ctx->pid, v, list[n++]);
		}
	}
	if (!ret && n)
		ret = write_list(tree, list, n);
	for (size_t i = 0; i < n; i++)
		sysvshm_entry__free_unpacked(list[i], NULL);
	free(list);
	return ret ? -1 : 0;
}

/* ---- restore ---- */

/* sysvshm.img, and which of its segments this restore made. */
struct sysvshm_restore {
	size_t nr;
	SysvshmEntry **v;
	bool *made;
};

static int load(struct restore_tree *tree)
{
	tree->sysvshm = calloc(1, sizeof(*tree->sysvshm));
	if (!tree->sysvshm)
		return err_set("out of memory");
	if (!image_present(&tree->dir, IMAGE_SYSVSHM, 0))
		return 0;
	return image_load_list(&tree->dir, IMAGE_SYSVSHM, 0, NULL, (void ***)&tree->sysvshm->v,
			       &tree->sysvshm->nr);
}

static const SysvshmEntry *segment(const struct restore_tree *tree, uint64_t id)
{
	for (size_t i = 0; i < tree->sysvshm->nr; i++)
		if ((uint64_t)tree->sysvshm->v[i]->id == id)
			return tree->sysvshm->v[i];
	return NULL;
}

/* Every segment a process maps is in sysvshm.img, and makes sense. */
int sysvshm_validate(struct restore_tree *tree)
{
	if (load(tree))
		return -1;
	for (size_t i = 0; i < tree->sysvshm->nr; i++) {
		const SysvshmEntry *e = tree->sysvshm->v[i];
		if (e->id < 0 || e->size != e->data.len || e->size > SYSVSHM_MAX)
			return err_set("sysvshm.img: segment %d is malformed", e->id);
	}
	for (size_t p = 0; p < tree->nr_procs; p++) {
		const struct restore_ctx *ctx = tree->procs[p];
		for (size_t i = 0; !ctx->zombie && i < ctx->mm->n_vmas; i++) {
			const VmaEntry *v = ctx->mm->vmas[i];
			if (v->kind == VMA_KIND__SYSV_SHM && !segment(tree, v->shmem_id))
				return err_set("mm-%d.img maps System V shared memory %llu, which "
					       "sysvshm.img lacks",
					       ctx->pid, (unsigned long long)v->shmem_id);
		}
	}
	tree->sysvshm->made = calloc(tree->sysvshm->nr + 1, sizeof(*tree->sysvshm->made));
	return tree->sysvshm->made ? 0 : err_set("out of memory");
}

/* The segment the dump left behind (its users were killed), if it is still
 * the same one and nobody has it attached. */
static int take_over(const SysvshmEntry *e)
{
	struct shmid_ds ds;

	if (shmctl(e->id, IPC_STAT, &ds))
		return errno == EINVAL || errno == EIDRM ? 0 : -1;
	if (ds.shm_perm.__key != e->key || ds.shm_segsz != e->size || ds.shm_nattch)
		return err_set("System V shared memory id %d is in use by another segment "
			       "(key 0x%x, %zu bytes, %lu attached): cannot restore it",
			       e->id, ds.shm_perm.__key, ds.shm_segsz,
			       (unsigned long)ds.shm_nattch);
	return 1;
}

static int make(const SysvshmEntry *e)
{
	FILE *f = fopen(NEXT_ID, "we");
	int id;

	if (!f || fprintf(f, "%d", e->id) < 0 || fclose(f))
		return err_errno("cannot set %s to restore System V shared memory %d", NEXT_ID,
				 e->id);
	id = shmget(e->key, e->size, IPC_CREAT | IPC_EXCL | e->mode);
	if (id < 0)
		return err_errno("cannot make System V shared memory %d (key 0x%x)", e->id, e->key);
	if (id != e->id) {
		shmctl(id, IPC_RMID, NULL);
		return err_set("System V shared memory %d came back as %d", e->id, id);
	}
	return 0;
}

static int fill(const SysvshmEntry *e)
{
	struct shmid_ds ds;
	void *p = shmat(e->id, NULL, 0);

	if (p == (void *)-1)
		return err_errno("cannot attach System V shared memory %d", e->id);
	memcpy(p, e->data.data, e->size);
	shmdt(p);
	if (shmctl(e->id, IPC_STAT, &ds))
		return err_errno("cannot read System V shared memory %d", e->id);
	ds.shm_perm.uid = e->uid;
	ds.shm_perm.gid = e->gid;
	ds.shm_perm.mode = e->mode;
	if (shmctl(e->id, IPC_SET, &ds))
		return err_errno("cannot set the owner of System V shared memory %d", e->id);
	return 0;
}

/* In cryo, before the processes exist. */
int sysvshm_restore(struct restore_tree *tree)
{
	for (size_t i = 0; i < tree->sysvshm->nr; i++) {
		const SysvshmEntry *e = tree->sysvshm->v[i];
		int r = take_over(e);
		if (r < 0)
			return r;
		if (!r) {
			if (make(e))
				return -1;
			tree->sysvshm->made[i] = true;
		}
		if (fill(e))
			return -1;
	}
	return 0;
}

/* Once every process has attached its segments (and before any runs):
 * those that were marked for removal are marked again. */
int sysvshm_mark_removed(const struct restore_tree *tree)
{
	for (size_t i = 0; i < tree->sysvshm->nr; i++)
		if (tree->sysvshm->v[i]->removed && shmctl(tree->sysvshm->v[i]->id, IPC_RMID, NULL))
			return err_errno("cannot mark System V shared memory %d for removal",
					 tree->sysvshm->v[i]->id);
	return 0;
}

void sysvshm_restore_undo(struct restore_tree *tree)
{
	for (size_t i = 0; tree->sysvshm && tree->sysvshm->made && i < tree->sysvshm->nr; i++)
		if (tree->sysvshm->made[i])
			shmctl(tree->sysvshm->v[i]->id, IPC_RMID, NULL);
}

void sysvshm_restore_free(struct restore_tree *tree)
{
	if (!tree->sysvshm)
		return;
	for (size_t i = 0; i < tree->sysvshm->nr; i++)
		sysvshm_entry__free_unpacked(tree->sysvshm->v[i], NULL);
	free(tree->sysvshm->v);
	free(tree->sysvshm->made);
	free(tree->sysvshm);
	tree->sysvshm = NULL;
}

/* In the new process, by injection: the segment at its old address. */
int sysvshm_attach(struct restore_ctx *ctx, const VmaEntry *v)
{
	int flags = SHM_REMAP | (v->prot & PROT_WRITE ? 0 : SHM_RDONLY);
	char what[96];
	long addr;

	snprintf(what, sizeof(what), "attaching System V shared memory %llu at 0x%llx",
		 (unsigned long long)v->shmem_id, (unsigned long long)v->start);
	if (inject_call(&ctx->inj, what, SYS_shmat, v->shmem_id, v->start, flags, 0, 0, 0, &addr))
		return -1;
	if ((uint64_t)addr != v->start)
		return err_set("%s: attached at 0x%lx instead", what, addr);
	return 0;
}
