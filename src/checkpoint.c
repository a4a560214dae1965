/*
 * checkpoint: a checkpoint read from its images directory into a
 * restore_tree, for restore.c and show.c.
 *
 * The inventory lists the processes, root first and parents before
 * children; each kind of state loads its own images (task.c core-PID.img,
 * mm.c mm-PID.img, fs.c, pages.c pagemap-PID.img, files.c fdinfo-PID.img),
 * and the images of the whole tree are loaded once (files.c files.img and
 * those of each kind of file, sysvshm.c). img_dir_open has checked every
 * image's size and checksum against the inventory. Nothing is created.
 */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "chain.h"
#include "checkpoint.h"
#include "cow.h"
#include "files.h"
#include "fs.h"
#include "infra/log.h"
#include "locks.h"
#include "mm.h"
#include "pages.h"
#include "shmem.h"
#include "cgroup.h"
#include "sysvshm.h"
#include "task.h"
#include "threads.h"
#include "tree.h"

static int load_proc(struct restore_ctx *ctx)
{
	if (task_load(ctx))
		return -1;
	if (ctx->zombie)
		return 0;
	return mm_load(ctx) || fs_load(ctx) || pages_load(ctx) || files_load_proc(ctx) ? -1 : 0;
}

static struct restore_ctx *new_proc(struct restore_tree *tree, pid_t pid)
{
	struct restore_ctx *ctx = calloc(1, sizeof(*ctx));

	if (!ctx)
		return NULL;
	ctx->opts = tree->opts;
	ctx->tree = tree;
	ctx->pid = pid;
	ctx->pages_fd = -1;
	tree->procs[tree->nr_procs++] = ctx;
	return ctx;
}

/* Every process the inventory lists, root first, parents before children. */
static int load_tree(struct restore_tree *tree)
{
	const InventoryEntry *inv = tree->dir.inventory;

	if (!inv->n_pids || inv->root_pid != inv->pids[0])
		return err_set("checkpoint %s: inventory does not start with its root pid",
			       tree->dir.path);
	tree->procs = calloc(inv->n_pids, sizeof(*tree->procs));
	if (!tree->procs)
		return err_set("out of memory");
	for (size_t i = 0; i < inv->n_pids; i++) {
		struct restore_ctx *ctx = new_proc(tree, inv->pids[i]);
		if (!ctx)
			return err_set("out of memory");
		if (load_proc(ctx))
			return -1;
	}
	if (files_load(tree))
		return -1;
	return tree_restore_plan(tree);
}

void checkpoint_init(struct restore_tree *tree, const struct cryo_opts *opts)
{
	memset(tree, 0, sizeof(*tree));
	tree->opts = opts;
	tree->dir.dirfd = -1;
	tree->tty_fd = -1;
	for (int i = 0; i < 2; i++)
		tree->report[i] = tree->hold[i] = tree->late[i] = -1;
	tree->t_start = now_us();
	restore_stats__init(&tree->stats);
}

int checkpoint_load(struct restore_tree *tree)
{
	return img_dir_open(&tree->dir, tree->opts->images_dir) || load_tree(tree) ? -1 : 0;
}

static void free_proc(struct restore_ctx *ctx)
{
	if (ctx->core)
		core_entry__free_unpacked(ctx->core, NULL);
	if (ctx->mm)
		mm_entry__free_unpacked(ctx->mm, NULL);
	if (ctx->fs)
		fs_entry__free_unpacked(ctx->fs, NULL);
	files_proc_free(ctx);
	locks_restore_free(ctx);
	free(ctx->vma_fd);
	cow_free(ctx);
	free(ctx->kids);
	free(ctx->sessions);
	free(ctx->fosters);
	pages_restore_free(ctx);
	threads_restore_free(ctx);
	free(ctx);
}

static void close_pair(int fds[2])
{
	for (int i = 0; i < 2; i++)
		if (fds[i] >= 0)
			close(fds[i]);
	fds[0] = fds[1] = -1;
}

void checkpoint_free(struct restore_tree *tree)
{
	pages_verify_stop(tree); /* its threads read the mapped images */
	tree_restore_free(tree);
	for (size_t i = 0; i < tree->nr_procs; i++)
		free_proc(tree->procs[i]);
	free(tree->procs);
	free(tree->by_pid);
	tree->procs = tree->by_pid = NULL;
	tree->nr_procs = 0;
	files_restore_free(tree);
	sysvshm_restore_free(tree);
	cgroup_restore_free(tree);
	shmem_restore_free(tree);
	chain_restore_free(tree);
	close_pair(tree->report);
	close_pair(tree->hold);
	close_pair(tree->late);
	img_dir_close(&tree->dir);
}

int checkpoint_verify(const struct cryo_opts *opts)
{
	struct restore_tree tree;
	int ret;

	checkpoint_init(&tree, opts);
	ret = checkpoint_load(&tree) || sysvshm_validate(&tree);

	for (size_t i = 0; !ret && i < tree.nr_procs; i++)
		if (!tree.procs[i]->zombie)
			ret = pages_validate(tree.procs[i]);
	if (!ret)
		ret = pages_verify_start(&tree, false) || pages_verify_finish(&tree);
	checkpoint_free(&tree);
	return ret ? -1 : 0;
}
