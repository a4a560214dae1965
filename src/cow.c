/*
 * cow: private memory that the processes of a tree still shared
 * copy-on-write when they were dumped is shared again after restore.
 *
 * Dump (pages.c): a page two processes share is saved once; the later
 * process's run points into the earlier one's image (pages_id).
 *
 * Restore: only fork makes copy-on-write sharing, so the memory must be in
 * the parent before the kid is created, at an address the kid inherits.
 * Before any process exists, cow_plan() picks the private VMAs worth it
 * (anonymous, or of a file: then staged as a private mapping of the same
 * file at the same offset, so that the pages nobody wrote stay the page
 * cache's and only the written ones, anonymous, are shared): a parent "stages" a VMA when one of
 * its kids has the same VMA (same range) and shares saved pages of it with it; the kid takes the
 * staged copy over when it shares pages with its parent in turn, and may
 * hand it on to its own kids. Staged copies live in a staging region that
 * is free in cryo's layout (which every new process starts from) and in
 * every target's, at the same offset modulo 2 MiB as their VMA, so that
 * huge pages survive the move.
 *
 * In the new process, before it forks its kids, cow_stage() unmaps the
 * staged copies it inherited and does not use, fills the ones it stages
 * itself from the images (whose fds every new process inherits), and
 * brings the inherited ones to its own contents: its pages that differ
 * from the parent's are written (which copies just those), pages it did not
 * have are dropped (MADV_DONTNEED), the rest stays shared. The injected
 * restore then moves each staged copy to its VMA's address with mremap
 * (mm.c) instead of mapping it, and pages.c leaves its pages alone.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "cow.h"
#include "infra/log.h"

#define HUGE_2M	     (2ULL << 20)
#define REGION_STEP  (1ULL << 40)
#define REGION_FIRST (1ULL << 45) /* above the ASan shadow of a sanitized cryo */
#define MARGIN	     (1ULL << 30)

/* What a page holds: the saved page at off in owner's image, or nothing
 * (owner NULL: a page never written, or all zeros). */
struct page_src {
	const struct restore_ctx *owner;
	uint64_t off;
};

static bool same_src(struct page_src a, struct page_src b)
{
	return a.owner == b.owner && (!a.owner || a.off == b.off);
}

/* ---- plan (in cryo, before any process exists) ---- */

static const PagemapEntry *run_at(const struct restore_ctx *ctx, uint64_t addr)
{
	size_t i = ctx_first_run_from(ctx, addr + 1); /* the first run above addr */
	const PagemapEntry *pe = i ? ctx->runs[i - 1] : NULL;

	return pe && addr < pe->vaddr + pe->nr_pages * PAGE_SIZE_4K ? pe : NULL;
}

static struct page_src src_at(const struct restore_ctx *ctx, uint64_t addr)
{
	const PagemapEntry *pe = run_at(ctx, addr);
	struct page_src s = {NULL, 0};

	if (!pe)
		return s;
	s.owner = pe->has_pages_id ? ctx_proc(ctx->tree, pe->pages_id) : ctx;
	s.off = pe->offset + (addr - pe->vaddr);
	return s;
}

/* A private file mapping is staged as a private mapping of the same file
 * at the same offset: the pages nobody wrote stay the file's. One of a
 * deleted file or a memfd (mapped through its description) is not. */
static bool stageable(const VmaEntry *v)
{
	if (v->kind == VMA_KIND__FILE_PRIVATE)
		return v->path && !v->has_deleted_ino && !v->has_file_id;
	return v->kind == VMA_KIND__ANON_PRIVATE && !v->growsdown;
}

static bool same_file(const VmaEntry *a, const VmaEntry *b)
{
	return a->kind == b->kind && (a->kind != VMA_KIND__FILE_PRIVATE ||
				      (!strcmp(a->path, b->path) && a->pgoff == b->pgoff));
}

/* The index of ctx's VMA with v's range, if it can be staged; -1 if none. */
static int same_vma(const struct restore_ctx *ctx, const VmaEntry *v)
{
	long i = ctx->zombie ? -1 : ctx_vma_index(ctx->mm, v->start);

	if (i < 0 || ctx->mm->vmas[i]->start != v->start || ctx->mm->vmas[i]->end != v->end ||
	    !stageable(ctx->mm->vmas[i]) || !same_file(ctx->mm->vmas[i], v))
		return -1;
	return i;
}

/* Does kid have a page of v saved as the same page parent has there? */
static bool shares(const struct restore_ctx *kid, const struct restore_ctx *parent,
		   const VmaEntry *v)
{
	for (size_t i = ctx_first_run_from(kid, v->start);
	     i < kid->nr_runs && kid->runs[i]->vaddr < v->end; i++) {
		const PagemapEntry *pe = kid->runs[i];
		if (!pe->has_pages_id || pe->pages_id == (uint32_t)kid->pid)
			continue;
		if (same_src(src_at(kid, pe->vaddr), src_at(parent, pe->vaddr)))
			return true;
	}
	return false;
}

static bool a_kid_shares(const struct restore_ctx *ctx, const VmaEntry *v)
{
	for (size_t k = 0; k < ctx->nr_kids; k++)
		if (ctx->kids[k]->memory_from == ctx && same_vma(ctx->kids[k], v) >= 0 &&
		    shares(ctx->kids[k], ctx, v))
			return true;
	return false;
}

/* Where in the staging region a VMA staged afresh goes (relative). */
static uint64_t place(struct restore_tree *tree, const VmaEntry *v)
{
	uint64_t at = (tree->cow_len + HUGE_2M - 1) & ~(HUGE_2M - 1);

	at += v->start & (HUGE_2M - 1);
	tree->cow_len = at + (v->end - v->start) + HUGE_2M; /* a gap: no merging */
	return at;
}

static int plan_proc(struct restore_tree *tree, struct restore_ctx *ctx)
{
	/* one made by another process than its parent takes over nothing */
	const struct restore_ctx *parent = ctx->memory_from == ctx->parent ? ctx->parent : NULL;

	ctx->cow = calloc(ctx->mm->n_vmas + 1, sizeof(*ctx->cow));
	if (!ctx->cow)
		return err_set("out of memory");
	for (size_t i = 0; i < ctx->mm->n_vmas; i++) {
		const VmaEntry *v = ctx->mm->vmas[i];
		int k = parent ? same_vma(parent, v) : -1;
		if (!stageable(v))
			continue;
		if (k >= 0 && parent->cow[k].staged && shares(ctx, parent, v))
			ctx->cow[i] = (struct cow_vma){0, true, true}; /* at: below */
		else if (a_kid_shares(ctx, v))
			ctx->cow[i] = (struct cow_vma){place(tree, v), true, false};
	}
	return 0;
}

static bool range_free(const struct proc_vmas *self, const struct restore_tree *tree,
		       uint64_t start, uint64_t len)
{
	for (int i = 0; i < self->nr; i++)
		if (start < self->v[i].end && self->v[i].start < start + len)
			return false;
	for (size_t p = 0; p < tree->nr_procs; p++) {
		const struct restore_ctx *ctx = tree->procs[p];
		for (size_t i = 0; !ctx->zombie && i < ctx->mm->n_vmas; i++)
			if (start < ctx->mm->vmas[i]->end && ctx->mm->vmas[i]->start < start + len)
				return false;
	}
	return true;
}

/* The staging region: a range free in cryo and in every target. */
static int find_region(struct restore_tree *tree)
{
	struct proc_vmas self;

	if (proc_read_vmas(0, &self))
		return -1;
	for (uint64_t a = REGION_FIRST; a + tree->cow_len + MARGIN < tree->kd.task_size;
	     a += REGION_STEP)
		if (range_free(&self, tree, a - MARGIN, tree->cow_len + 2 * MARGIN)) {
			tree->cow_base = a;
			break;
		}
	proc_vmas_free(&self);
	return 0;
}

static void unplan(struct restore_tree *tree)
{
	for (size_t p = 0; p < tree->nr_procs; p++)
		if (tree->procs[p]->cow)
			memset(tree->procs[p]->cow, 0,
			       tree->procs[p]->mm->n_vmas * sizeof(*tree->procs[p]->cow));
	tree->cow_len = 0;
}

int cow_plan(struct restore_tree *tree)
{
	for (size_t p = 0; p < tree->nr_procs; p++)
		if (!tree->procs[p]->zombie && plan_proc(tree, tree->procs[p]))
			return -1;
	if (!tree->cow_len)
		return 0;
	if (find_region(tree))
		return -1;
	if (!tree->cow_base) {
		pr_warn("no free address range for %llu MiB of copy-on-write memory: each process "
			"gets its own copy",
			(unsigned long long)(tree->cow_len >> 20));
		unplan(tree);
		return 0;
	}
	for (size_t p = 0; p < tree->nr_procs; p++)
		for (size_t i = 0; !tree->procs[p]->zombie && i < tree->procs[p]->mm->n_vmas; i++)
			if (tree->procs[p]->cow[i].staged && !tree->procs[p]->cow[i].inherited)
				tree->procs[p]->cow[i].at += tree->cow_base;
	/* inherited copies take the address their parent's has now */
	for (size_t p = 0; p < tree->nr_procs; p++) {
		struct restore_ctx *ctx = tree->procs[p];
		for (size_t i = 0; !ctx->zombie && i < ctx->mm->n_vmas; i++)
			if (ctx->cow[i].inherited)
				ctx->cow[i].at =
				    ctx->parent->cow[same_vma(ctx->parent, ctx->mm->vmas[i])].at;
	}
	pr_info("copy-on-write memory shared again through %llu MiB of staging at 0x%llx",
		(unsigned long long)(tree->cow_len >> 20), (unsigned long long)tree->cow_base);
	return 0;
}

bool cow_in_region(const struct restore_tree *tree, uint64_t start, uint64_t len)
{
	return tree->cow_len && start < tree->cow_base + tree->cow_len &&
	       tree->cow_base < start + len;
}

/* Where the VMA holding addr is staged; 0 if it is not. */
uint64_t cow_staged_at(const struct restore_ctx *ctx, uint64_t addr)
{
	long i;

	if (!ctx->tree->cow_len || !ctx->cow)
		return 0;
	i = ctx_vma_index(ctx->mm, addr);
	return i >= 0 && ctx->cow[i].staged ? ctx->cow[i].at : 0;
}

void cow_free(struct restore_ctx *ctx)
{
	free(ctx->cow);
	ctx->cow = NULL;
}

/* ---- in the new process, before it forks ---- */

/* Reads len bytes of saved pages into dst: pread from the image, not a copy
 * through its mapping, which every new process would fault in again. */
static int read_pages(struct page_src s, uint64_t dst, uint64_t len)
{
	ssize_t n;

	/* allocating in bulk first is several times faster than page faults */
	if (len > PAGE_SIZE_4K)
		madvise((void *)dst, len, MADV_POPULATE_WRITE);
	n = pread(s.owner->pages_fd, (void *)dst, len, s.off);
	if (n < 0 && errno == EBADF) {
		/* a kid sharing its parent's fd table is made after the parent
		 * closed cryo's fds (share.c): it copies from the mapped image */
		memcpy((void *)dst, s.owner->pages_map + s.off, len);
		n = len;
	}

	if (n != (ssize_t)len)
		return n < 0 ? err_errno("cannot read the pages of pid %d", s.owner->pid)
			     : err_set("short read of the pages of pid %d", s.owner->pid);
	return 0;
}

static bool used_here(const struct restore_ctx *ctx, uint64_t at)
{
	for (size_t i = 0; i < ctx->mm->n_vmas; i++)
		if (ctx->cow[i].inherited && ctx->cow[i].at == at)
			return true;
	return false;
}

/* The staged copies it inherited (its parent's, or its maker's: tree.c)
 * and does not take over. */
static int drop_unused(const struct restore_ctx *ctx)
{
	const struct restore_ctx *parent = ctx->memory_from;

	for (size_t i = 0; parent && i < parent->mm->n_vmas; i++) {
		const VmaEntry *v = parent->mm->vmas[i];
		if (parent->cow[i].staged && !used_here(ctx, parent->cow[i].at) &&
		    munmap((void *)parent->cow[i].at, v->end - v->start))
			return err_errno("cannot drop a staged copy of 0x%llx",
					 (unsigned long long)v->start);
	}
	return 0;
}

/* A new mapping at `at` for v: anonymous, or the file's, private. */
static void *map_stage(const VmaEntry *v, uint64_t at)
{
	int fd = -1, flags = MAP_PRIVATE | MAP_FIXED_NOREPLACE;
	void *p;

	if (v->kind == VMA_KIND__FILE_PRIVATE) {
		fd = open(v->path, O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			return MAP_FAILED;
	} else {
		flags |= MAP_ANONYMOUS;
	}
	p = mmap((void *)at, v->end - v->start, PROT_READ | PROT_WRITE, flags, fd,
		 fd >= 0 ? v->pgoff : 0);
	if (fd >= 0)
		close(fd);
	return p;
}

static int stage_fresh(const struct restore_ctx *ctx, const VmaEntry *v, uint64_t at)
{
	void *p = map_stage(v, at);

	if (p != (void *)at)
		return err_errno("cannot stage 0x%llx-0x%llx of pid %d",
				 (unsigned long long)v->start, (unsigned long long)v->end,
				 ctx->pid);
	/* huge pages or not, as the VMA will have them: they are made now */
	for (size_t a = 0; a < v->n_advice; a++)
		if (!strcmp(v->advice[a], "hg") || !strcmp(v->advice[a], "nh"))
			madvise(p, v->end - v->start,
				v->advice[a][0] == 'h' ? MADV_HUGEPAGE : MADV_NOHUGEPAGE);
	for (size_t r = ctx_first_run_from(ctx, v->start);
	     r < ctx->nr_runs && ctx->runs[r]->vaddr < v->end; r++) {
		const PagemapEntry *pe = ctx->runs[r];
		if (read_pages(src_at(ctx, pe->vaddr), at + (pe->vaddr - v->start),
			       pe->nr_pages * PAGE_SIZE_4K))
			return -1;
	}
	return 0;
}

/* What to do to a page of an inherited copy; runs of the same make one
 * pread or one madvise. */
enum fix { FIX_KEEP, FIX_WRITE, FIX_DROP };

struct fix_run {
	enum fix what;
	uint64_t from, to;   /* addresses in the VMA */
	struct page_src src; /* FIX_WRITE: the saved page of from */
};

static int fix_flush(const VmaEntry *v, uint64_t at, const struct fix_run *r)
{
	void *dst = (void *)(at + (r->from - v->start));

	if (r->what == FIX_DROP && madvise(dst, r->to - r->from, MADV_DONTNEED))
		return err_errno("cannot drop pages of a staged copy");
	if (r->what == FIX_WRITE)
		return read_pages(r->src, (uint64_t)dst, r->to - r->from);
	return 0;
}

/* The parent's copy, made this process's: differing pages written, pages
 * it did not have dropped, the rest left shared. */
static int stage_inherited(const struct restore_ctx *ctx, const VmaEntry *v, uint64_t at)
{
	struct fix_run run = {FIX_KEEP, v->start, v->start, {NULL, 0}};

	for (uint64_t a = v->start; a < v->end; a += PAGE_SIZE_4K) {
		struct page_src want = src_at(ctx, a), have = src_at(ctx->parent, a);
		enum fix what = same_src(want, have) ? FIX_KEEP : want.owner ? FIX_WRITE : FIX_DROP;
		bool goes_on = what == run.what &&
			       (what != FIX_WRITE || (want.owner == run.src.owner &&
						      want.off == run.src.off + (a - run.from)));
		if (!goes_on) {
			if (fix_flush(v, at, &run))
				return -1;
			run = (struct fix_run){what, a, a, want};
		}
		run.to = a + PAGE_SIZE_4K;
	}
	return fix_flush(v, at, &run);
}

int cow_stage(struct restore_ctx *ctx)
{
	if (!ctx->tree->cow_len)
		return 0;
	if (drop_unused(ctx))
		return -1;
	for (size_t i = 0; i < ctx->mm->n_vmas; i++) {
		const VmaEntry *v = ctx->mm->vmas[i];
		if (!ctx->cow[i].staged)
			continue;
		if (ctx->cow[i].inherited ? stage_inherited(ctx, v, ctx->cow[i].at)
					  : stage_fresh(ctx, v, ctx->cow[i].at))
			return -1;
	}
	return 0;
}
