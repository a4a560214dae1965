/*
 * context: lookups over the context of a restore (context.h), which every
 * kind of state asks: a process by pid, a description by id, where a
 * shared description is inherited, the VMA or page run at an address.
 * Everything here is a search over what was loaded; nothing calls out.
 */
#include <stdlib.h>
#include <string.h>

#include "context.h"
#include "infra/log.h"

static int by_pid(const void *a, const void *b)
{
	pid_t x = (*(struct restore_ctx *const *)a)->pid,
	      y = (*(struct restore_ctx *const *)b)->pid;

	return (x > y) - (x < y);
}

/* The processes sorted by pid, for ctx_proc (asked for every page run
 * another process's image holds): once they are all loaded. */
int ctx_index_by_pid(struct restore_tree *tree)
{
	tree->by_pid = malloc((tree->nr_procs + 1) * sizeof(*tree->by_pid));
	if (!tree->by_pid)
		return err_set("out of memory");
	memcpy(tree->by_pid, tree->procs, tree->nr_procs * sizeof(*tree->by_pid));
	qsort(tree->by_pid, tree->nr_procs, sizeof(*tree->by_pid), by_pid);
	return 0;
}

struct restore_ctx *ctx_proc(const struct restore_tree *tree, pid_t pid)
{
	size_t lo = 0, hi = tree->nr_procs;

	if (!tree->by_pid) { /* while loading */
		for (size_t i = 0; i < tree->nr_procs; i++)
			if (tree->procs[i]->pid == pid)
				return tree->procs[i];
		return NULL;
	}
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (tree->by_pid[mid]->pid < pid)
			lo = mid + 1;
		else if (tree->by_pid[mid]->pid > pid)
			hi = mid;
		else
			return tree->by_pid[mid];
	}
	return NULL;
}

const FileEntry *ctx_file(const struct restore_tree *tree, uint32_t id)
{
	/* the dump numbers them 1, 2, ... in order */
	if (id >= 1 && id <= tree->nr_files && tree->files[id - 1]->id == id)
		return tree->files[id - 1];
	for (size_t i = 0; i < tree->nr_files; i++)
		if (tree->files[i]->id == id)
			return tree->files[i];
	return NULL;
}

int ctx_inherited_fd(const struct restore_tree *tree, uint32_t id)
{
	for (size_t i = 0; i < tree->nr_inherit; i++)
		if (tree->inherit_ids[i] == id)
			return tree->inherit_base + i;
	return -1;
}

long ctx_vma_index(const MmEntry *mm, uint64_t addr)
{
	size_t lo = 0, hi = mm->n_vmas;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (addr < mm->vmas[mid]->start)
			hi = mid;
		else if (addr >= mm->vmas[mid]->end)
			lo = mid + 1;
		else
			return mid;
	}
	return -1;
}

size_t ctx_first_run_from(const struct restore_ctx *ctx, uint64_t addr)
{
	size_t lo = 0, hi = ctx->nr_runs;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (ctx->runs[mid]->vaddr < addr)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}
