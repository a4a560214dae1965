/*
 * shmem: memory objects that several mappings, or several processes, share:
 * MAP_SHARED|MAP_ANONYMOUS memory, memfds mapped shared, and deleted files
 * both mapped and open.
 *
 * Dump: a shmem object's pages are saved once, with the first mapping of
 * it that is dumped; later ones (in the same or another process) are
 * skipped. A memfd or deleted file that is also open is tied to that open
 * description (vma.file_id), so that fd and mapping stay one object; one
 * open nowhere (its fd closed) gets a description of the tree that no fd
 * holds, made from the mapping (unless it is a memfd mapped shared without
 * seals: plain shared memory then).
 *
 * Restore: each object mapped by more than one process, and every memfd, is
 * made once by the root before it forks (a memfd of the same name and size,
 * or anonymous shared memory of the same size) and inherited; each process
 * maps it from there, and the process that saved its pages fills it.
 * Objects tied to a description map that description, which files.c makes
 * (a description some mapping maps is made by the root) and hands down.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "files.h"
#include "infra/log.h"
#include "infra/proc.h"
#include "shmem.h"

/* ---- dump ---- */

/* A range of a shmem object whose pages a process of the tree has saved. */
struct shmem_range {
	uint64_t id, start, end;
};

/* Anonymous shared memory an earlier process saved already: the object is
 * one memfd for all of them on restore, filled by that process. */
bool shmem_saved(const struct dump_tree *tree, const VmaEntry *v)
{
	uint64_t start = v->pgoff, end = v->pgoff + (v->end - v->start);

	if (v->kind != VMA_KIND__ANON_SHARED || !v->has_shmem_id)
		return false;
	for (int i = 0; i < tree->nr_shmem_saved; i++) {
		const struct shmem_range *r = &tree->shmem_saved[i];
		if (r->id == v->shmem_id && r->start <= start && end <= r->end)
			return true;
	}
	return false;
}

int shmem_mark_saved(struct dump_tree *tree, const VmaEntry *v)
{
	struct shmem_range *grown;

	if (v->kind != VMA_KIND__ANON_SHARED || !v->has_shmem_id)
		return 0;
	grown = realloc(tree->shmem_saved, (tree->nr_shmem_saved + 1) * sizeof(*grown));
	if (!grown)
		return err_set("out of memory");
	tree->shmem_saved = grown;
	grown[tree->nr_shmem_saved++] = (struct shmem_range){
	    .id = v->shmem_id, .start = v->pgoff, .end = v->pgoff + (v->end - v->start)};
	return 0;
}

void shmem_dump_free(struct dump_tree *tree)
{
	free(tree->shmem_saved);
	tree->shmem_saved = NULL;
	tree->nr_shmem_saved = 0;
}

/* A description of the tree open on the memfd or deleted file ino, or NULL. */
static const struct dump_file *open_on(const struct dump_tree *tree, FileKind kind, uint64_t ino)
{
	struct stat st;

	for (int i = 0; i < tree->nr_files; i++)
		if (tree->files[i].entry.kind == kind && !fstat(tree->files[i].local_fd, &st) &&
		    st.st_ino == ino)
			return &tree->files[i];
	return NULL;
}

/* A memfd or deleted file only mapped (its fd closed) becomes a
 * description of the tree that no fd holds, made from the mapping. */
static int add_from_mapping(struct dump_ctx *ctx, const VmaEntry *v, uint32_t *id)
{
	bool writable =
	    v->kind != VMA_KIND__FILE_PRIVATE && ((v->prot & PROT_WRITE) || v->may_write);
	int fd = proc_open_map_file(ctx->pid, v->start, v->end, writable ? O_RDWR : O_RDONLY), r;

	if (fd < 0)
		return err_wrap("the file mapped by pid %d at 0x%llx", ctx->pid,
				(unsigned long long)v->start);
	r = files_add_unheld(ctx, fd, id);
	close(fd);
	return r;
}

/* Whether a memfd mapped shared needs its description: it has seals (not
 * just the F_SEAL_SEAL of one made without MFD_ALLOW_SEALING), which only a
 * memfd made like the open ones (ghost.c) brings back. */
static int needs_description(const struct dump_ctx *ctx, const VmaEntry *v, bool *needs)
{
	int fd, seals;

	*needs = false;
	if (!v->memfd_name || v->memfd_sealable)
		return 0;
	fd = proc_open_map_file(ctx->pid, v->start, v->end, O_RDONLY);
	if (fd < 0)
		return err_wrap("the memfd mapped by pid %d", ctx->pid);
	seals = fcntl(fd, F_GET_SEALS);
	close(fd);
	*needs = seals > 0 && seals != F_SEAL_SEAL;
	return 0;
}

/* The open description of the memfd or deleted file v maps, or NULL. */
static const struct dump_file *open_description(const struct dump_tree *tree, const VmaEntry *v)
{
	const struct dump_file *f;

	if (v->memfd_name) /* mapped shared */
		return open_on(tree, FILE_KIND__MEMFD, v->shmem_id);
	f = open_on(tree, FILE_KIND__GHOST, v->deleted_ino);
	return f ? f : open_on(tree, FILE_KIND__MEMFD, v->deleted_ino);
}

/* A memfd or deleted file both mapped and open must come back as one
 * object: the mapping is tied to a description of it, which the root makes
 * and every process inherits. A memfd mapped shared, open nowhere and
 * unsealed is plain shared memory; every other mapped one that is open
 * nowhere gets a description of its own. */
static int link_vma(struct dump_ctx *ctx, VmaEntry *v)
{
	const struct dump_file *f;
	bool needs;

	if (v->has_file_id) /* tied already: a lock is held through it (locks.c) */
		return 0;
	if (!v->memfd_name && !v->has_deleted_ino)
		return 0;
	f = open_description(ctx->tree, v);
	if (f) {
		v->has_file_id = true;
		v->file_id = f->entry.id;
		return 0;
	}
	if (v->memfd_name) {
		if (needs_description(ctx, v, &needs))
			return -1;
		if (!needs)
			return 0;
	}
	v->has_file_id = true;
	return add_from_mapping(ctx, v, &v->file_id);
}

int shmem_link_mapped(struct dump_tree *tree)
{
	for (int p = 0; p < tree->nr_procs; p++) {
		struct dump_ctx *ctx = tree->procs[p];
		for (size_t i = 0; !ctx->zombie && i < ctx->mm->n_vmas; i++)
			if (link_vma(ctx, ctx->mm->vmas[i]))
				return -1;
	}
	return 0;
}

/* ---- restore ---- */

/* A shmem object (MAP_SHARED|MAP_ANONYMOUS) some process maps. */
struct tree_shmem {
	uint64_t id, size;
	pid_t first_pid;
	bool shared; /* mapped by more than one process, or a memfd: one memfd for all */
	const char *memfd_name;
	bool sealable;
};

struct shmem_restore {
	size_t nr;
	struct tree_shmem *v;
};

/* The object with that id, added if new (NULL: out of memory). */
static struct tree_shmem *object(struct shmem_restore *sr, uint64_t id, pid_t pid)
{
	struct tree_shmem *grown;

	for (size_t k = 0; k < sr->nr; k++)
		if (sr->v[k].id == id)
			return &sr->v[k];
	grown = realloc(sr->v, (sr->nr + 1) * sizeof(*grown));
	if (!grown)
		return NULL;
	sr->v = grown;
	sr->v[sr->nr] = (struct tree_shmem){.id = id, .first_pid = pid};
	return &sr->v[sr->nr++];
}

/* Anonymous shared memory mapped by more than one process: one memfd per
 * shmem object, made by the root and inherited, that each maps. */
int shmem_plan(struct restore_tree *tree)
{
	tree->shmem = calloc(1, sizeof(*tree->shmem));
	if (!tree->shmem)
		return err_set("out of memory");
	for (size_t p = 0; p < tree->nr_procs; p++) {
		const struct restore_ctx *ctx = tree->procs[p];
		for (size_t i = 0; !ctx->zombie && i < ctx->mm->n_vmas; i++) {
			const VmaEntry *v = ctx->mm->vmas[i];
			struct tree_shmem *sh;
			if (v->kind != VMA_KIND__ANON_SHARED || !v->has_shmem_id || v->has_file_id)
				continue;
			sh = object(tree->shmem, v->shmem_id, ctx->pid);
			if (!sh)
				return err_set("out of memory");
			if (sh->first_pid != ctx->pid || v->memfd_name)
				sh->shared = true;
			if (v->memfd_name) {
				sh->memfd_name = v->memfd_name;
				sh->sealable = v->memfd_sealable;
			}
			if (v->pgoff + (v->end - v->start) > sh->size)
				sh->size = v->pgoff + (v->end - v->start);
		}
	}
	return 0;
}

/* The slot of the memfd behind a VMA shared with other processes, or -1. */
int shmem_fd(const struct restore_ctx *ctx, const VmaEntry *v)
{
	const struct restore_tree *tree = ctx->tree;

	if (v->has_file_id)
		return ctx_inherited_fd(ctx->tree, v->file_id);
	if (v->kind != VMA_KIND__ANON_SHARED || !v->has_shmem_id)
		return -1;
	for (size_t k = 0; k < tree->shmem->nr; k++)
		if (tree->shmem->v[k].id == v->shmem_id && tree->shmem->v[k].shared)
			return tree->inherit_base + tree->nr_inherit + k;
	return -1;
}

size_t shmem_nr_slots(const struct restore_tree *tree)
{
	return tree->shmem ? tree->shmem->nr : 0;
}

void shmem_restore_free(struct restore_tree *tree)
{
	if (tree->shmem)
		free(tree->shmem->v);
	free(tree->shmem);
	tree->shmem = NULL;
}

/* MAP_SHARED|MAP_ANONYMOUS memory is an unlinked shmem file of its own
 * ("/dev/zero (deleted)" in maps): made the same way, then opened through
 * map_files, so that it reads the same after restore. */
static int make_anon_object(uint64_t size)
{
	void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	int fd;

	if (p == MAP_FAILED)
		return -1;
	fd = proc_open_map_file(getpid(), (uintptr_t)p, (uintptr_t)p + size, O_RDWR);
	munmap(p, size);
	return fd;
}

static int make_one(const struct restore_tree *tree, size_t k)
{
	const struct tree_shmem *sh = &tree->shmem->v[k];
	const char *name = sh->memfd_name;
	int fd = name ? memfd_create(name, MFD_CLOEXEC | (sh->sealable ? MFD_ALLOW_SEALING : 0))
		      : make_anon_object(sh->size);

	if (fd < 0 || (name && ftruncate(fd, sh->size)))
		return err_errno("cannot make the shared memory object %llu",
				 (unsigned long long)sh->id);
	if (dup2(fd, tree->inherit_base + tree->nr_inherit + k) < 0)
		return err_errno("cannot place shared memory");
	close(fd);
	return 0;
}

/* In the root, before it forks: every memfd that processes share. */
int shmem_make_all(const struct restore_tree *tree)
{
	for (size_t k = 0; k < tree->shmem->nr; k++)
		if (tree->shmem->v[k].shared && make_one(tree, k))
			return -1;
	return 0;
}
