/*
 * vmaflags: the VMAs of a process with their VmFlags, for a dump whose tree
 * runs on (dump -R, pre-dump), without walking its page tables while it is
 * frozen.
 *
 * The flags only /proc/PID/smaps shows, and smaps makes the kernel walk
 * every page table entry to count Rss and Pss (23 ms for 2 GiB of 4 KiB
 * pages here): the biggest frozen cost after the snapshot's fork. So:
 *  - before the freeze, vmaflags_preread reads smaps and VmLck of every
 *    process of the tree it can find, while they run;
 *  - frozen, vmaflags_read takes a process's cheap /proc/PID/maps, and uses
 *    the flags read before only if the layout, the start time and VmLck are
 *    all unchanged; otherwise it reads smaps again, frozen;
 *  - after the release, vmaflags_check compares them with the snapshot
 *    child's smaps (the child never changes; a process that got no
 *    snapshot is still frozen then and is compared with itself): a fork
 *    copies every flag but the lock and userfaultfd ones (the protection
 *    key too), drops DONTCOPY VMAs and keeps the rest.
 *    A flag changed in place in the instant between the read and the freeze
 *    (madvise or prctl on a whole VMA: no layout change) fails the dump, with
 *    nothing committed, rather than write it wrong.
 * mlock of one VMA and munlock of another of the same size within that
 * instant is the one change neither check sees.
 */
#include <stdlib.h>
#include <string.h>

#include "infra/log.h"
#include "infra/proc.h"
#include "vmaflags.h"

struct vmaflags_early {
	pid_t pid;
	unsigned long long start_time;
	long vmlck;
	struct proc_vmas vmas;
};

struct vmaflags_cache {
	int nr, cap;
	struct vmaflags_early *v;
};

static struct vmaflags_early *cache_add(struct vmaflags_cache *c)
{
	if (c->nr == c->cap) {
		int cap = c->cap ? 2 * c->cap : 16;
		struct vmaflags_early *grown = realloc(c->v, cap * sizeof(*grown));
		if (!grown)
			return NULL;
		c->v = grown;
		c->cap = cap;
	}
	memset(&c->v[c->nr], 0, sizeof(c->v[0]));
	return &c->v[c->nr];
}

/* A process that cannot be read now (gone, a zombie) is read frozen. */
static void preread_one(struct vmaflags_cache *c, pid_t pid)
{
	struct vmaflags_early *e = cache_add(c);
	struct proc_stat st;

	if (!e)
		return;
	e->pid = pid;
	if (proc_read_stat(pid, &st) || proc_read_vmlck(pid, &e->vmlck) ||
	    proc_read_vmas(pid, &e->vmas)) {
		err_clear();
		return;
	}
	e->start_time = st.start_time;
	c->nr++;
}

void vmaflags_preread(struct dump_tree *tree)
{
	struct vmaflags_cache *c = calloc(1, sizeof(*c));

	tree->vmaflags = c;
	if (!c)
		return;
	preread_one(c, tree->opts->pid);
	/* children of those seen so far, breadth first, as the freeze goes */
	for (int i = 0; i < c->nr && c->nr < 4096; i++) {
		pid_t *kids;
		int n = proc_list_children(c->v[i].pid, &kids);
		if (n < 0) {
			err_clear();
			continue;
		}
		for (int k = 0; k < n; k++)
			preread_one(c, kids[k]);
		free(kids);
	}
}

static struct vmaflags_early *cached(const struct dump_ctx *ctx)
{
	struct vmaflags_cache *c = ctx->tree->vmaflags;

	for (int i = 0; c && i < c->nr; i++)
		if (c->v[i].pid == ctx->pid && c->v[i].start_time == ctx->stat.start_time)
			return &c->v[i];
	return NULL;
}

/* The flags of an early read apply to the frozen layout unchanged (status,
 * with VmLck, was read once frozen, just before). */
static bool early_applies(const struct dump_ctx *ctx, const struct vmaflags_early *e,
			  const struct proc_vmas *now)
{
	return ctx->status.vmlck_kib == e->vmlck && proc_vmas_same_layout(&e->vmas, now);
}

int vmaflags_read(struct dump_ctx *ctx)
{
	struct vmaflags_early *e = cached(ctx);

	ctx->vmaflags_early = false;
	if (!e)
		return proc_read_vmas(ctx->pid, &ctx->vmas);
	if (proc_read_maps(ctx->pid, &ctx->vmas))
		return -1;
	if (!early_applies(ctx, e, &ctx->vmas)) {
		proc_vmas_free(&ctx->vmas);
		pr_debug(
		    "pid %d changed its mappings since they were read: smaps read again, frozen",
		    ctx->pid);
		return proc_read_vmas(ctx->pid, &ctx->vmas);
	}
	for (int i = 0; i < ctx->vmas.nr; i++) {
		memcpy(ctx->vmas.v[i].vmflags, e->vmas.v[i].vmflags,
		       sizeof(ctx->vmas.v[i].vmflags));
		ctx->vmas.v[i].pkey = e->vmas.v[i].pkey;
	}
	ctx->vmaflags_early = true;
	pr_debug("pid %d: VMA flags as read before the freeze (layout unchanged)", ctx->pid);
	return 0;
}

/* Flags a fork does not hand down: the lock and userfaultfd registrations. */
static bool inherited(const char *flag)
{
	static const char *const dropped[] = {"lo", "lf", "um", "uw", "ui"};

	for (size_t i = 0; i < sizeof(dropped) / sizeof(dropped[0]); i++)
		if (!strcmp(flag, dropped[i]))
			return false;
	return true;
}

/* Every inherited flag of a is one of b. */
static bool flags_within(const struct proc_vma *a, const struct proc_vma *b)
{
	char flags[sizeof(a->vmflags)], *tok, *save = NULL;

	memcpy(flags, a->vmflags, sizeof(flags));
	for (tok = strtok_r(flags, " ", &save); tok; tok = strtok_r(NULL, " ", &save))
		if (inherited(tok) && !proc_vma_has_flag(b, tok))
			return false;
	return true;
}

static int changed(const struct dump_ctx *ctx, const struct proc_vma *v)
{
	return err_set("pid %d changed the flags of its mapping at 0x%llx (madvise, mlock, "
		       "pkey_mprotect or prctl) "
		       "while it was being frozen: nothing was committed, dump again",
		       ctx->pid, (unsigned long long)v->start);
}

int vmaflags_check(const struct dump_ctx *ctx, pid_t source, bool snapshot)
{
	struct proc_vmas child;
	int ret = 0;

	if (!ctx->vmaflags_early)
		return 0;
	if (proc_read_vmas(source, &child))
		return err_wrap("reading the VMA flags of pid %d%s", ctx->pid,
				snapshot ? "'s snapshot" : "");
	for (int i = 0; i < ctx->vmas.nr && !ret; i++) {
		const struct proc_vma *v = &ctx->vmas.v[i];
		const struct proc_vma *c = proc_vma_at(&child, v->start);
		/* a snapshot has no DONTCOPY VMA; the process itself has them all */
		bool dontcopy = snapshot && proc_vma_has_flag(v, "dc");
		/* cryo's own injected pages exist only in the child: not looked at */
		if (dontcopy == (c != NULL) ||
		    (c && (c->pkey != v->pkey || !flags_within(v, c) || !flags_within(c, v))))
			ret = changed(ctx, v);
	}
	proc_vmas_free(&child);
	return ret;
}

void vmaflags_free(struct dump_tree *tree)
{
	struct vmaflags_cache *c = tree->vmaflags;

	for (int i = 0; c && i < c->nr; i++)
		proc_vmas_free(&c->v[i].vmas);
	if (c)
		free(c->v);
	free(c);
	tree->vmaflags = NULL;
}
