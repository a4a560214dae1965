/*
 * chain: incremental checkpoints. A checkpoint made with --prev-images-dir
 * PARENT (relative to its own directory, as CRIU) holds only the pages its
 * processes wrote since PARENT (memtrack.c says which); a page present and
 * not written since, for which the parent has data, is a pagemap run with
 * in_parent set and no data. chain.img names the parent and the XXH3 its
 * inventory.img ends with, so a parent replaced or rewritten since is
 * refused, and records the tracking armed for the next checkpoint.
 *
 * Dump: the parent is opened and verified like a checkpoint to restore
 * (step 0); its pagemap of each tracked process says which pages it has
 * data for (a data run, a run shared from another of its processes, or a
 * run that is its own parent's).
 *
 * Restore: before anything is created, the chain is opened level by level
 * (each inventory's checksum checked against its child's chain.img), and
 * each process's in_parent runs are resolved to the level whose image has
 * the bytes; every run of a parent level used is verified by its checksum
 * first. The process's pages image then becomes one memfd holding its own
 * runs and the resolved ones, in address order (the resolved ones keep
 * in_parent set: the verification threads skip them, checked already):
 * the rest of the restore (verification threads, userfaultfd, the
 * copy-on-write staging of cow.c) reads it as an ordinary image. It costs
 * one copy of the memory into the memfd (whose pages the read-only mapping
 * of the restore then shares).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "chain.h"
#include "images.h"
#include "infra/log.h"
#include "memtrack.h"

#define MAX_LEVELS 64

/* ---- both sides ---- */

static char *join_path(const char *dir, const char *rel)
{
	size_t n = strlen(dir) + strlen(rel) + 2;
	char *p = malloc(n);

	if (!p)
		return NULL;
	if (rel[0] == '/')
		snprintf(p, n, "%s", rel);
	else
		snprintf(p, n, "%s/%s", dir, rel);
	return p;
}

static ChainEntry *load_chain(struct img_dir *d)
{
	ProtobufCMessage *m = NULL;

	if (!image_present(d, IMAGE_CHAIN, 0))
		return NULL;
	if (image_load_one(d, IMAGE_CHAIN, 0, &m))
		return (ChainEntry *)-1;
	return (ChainEntry *)m;
}

/* The index of the first run ending above addr (runs in address order). */
static size_t first_run_above(PagemapEntry *const *runs, size_t nr, uint64_t addr)
{
	size_t lo = 0, hi = nr;

	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		if (runs[mid]->vaddr + runs[mid]->nr_pages * PAGE_SIZE_4K <= addr)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/* ---- dump ---- */

struct chain_dump {
	char *parent_path;
	struct img_dir pdir;
	ChainEntry *pchain; /* the parent's chain.img, or NULL */
};

struct chain_cover {
	size_t nr;
	PagemapEntry **runs; /* the parent's pagemap of this process */
};

static bool same_dir(int a, int b)
{
	struct stat sa, sb;

	return !fstat(a, &sa) && !fstat(b, &sb) && sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
}

int chain_dump_open(struct dump_tree *tree)
{
	const char *rel = tree->opts->prev_images_dir;
	struct chain_dump *cd;

	if (!rel)
		return 0;
	cd = calloc(1, sizeof(*cd));
	if (!cd || !(cd->parent_path = join_path(tree->opts->images_dir, rel))) {
		free(cd);
		return err_set("out of memory");
	}
	tree->chain = cd;
	cd->pdir.dirfd = -1;
	if (img_dir_open(&cd->pdir, cd->parent_path))
		return err_wrap("--prev-images-dir %s", rel);
	if (same_dir(cd->pdir.dirfd, tree->dir.dirfd))
		return err_set("--prev-images-dir %s is the images directory itself", rel);
	cd->pchain = load_chain(&cd->pdir);
	if (cd->pchain == (ChainEntry *)-1) {
		cd->pchain = NULL;
		return err_wrap("--prev-images-dir %s", rel);
	}
	return 0;
}

int chain_dump_take(struct dump_tree *tree)
{
	if (!tree->chain)
		return 0;
	return memtrack_take(tree, tree->chain->pchain);
}

static struct chain_cover *load_cover(struct dump_ctx *ctx)
{
	struct img_dir *pd = &ctx->tree->chain->pdir;
	struct chain_cover *c = calloc(1, sizeof(*c));

	if (!c)
		return NULL;
	if (!image_present(pd, IMAGE_PAGEMAP, ctx->pid) ||
	    image_load_list(pd, IMAGE_PAGEMAP, ctx->pid, NULL, (void ***)&c->runs, &c->nr)) {
		pr_warn("pid %d: the parent checkpoint has no usable pagemap of it (%s): saved in "
			"full",
			ctx->pid, err_pending() ? err_text() : "not listed");
		err_clear();
		free(c);
		return NULL;
	}
	return c;
}

bool chain_dump_incremental(struct dump_ctx *ctx)
{
	if (!ctx->tree->chain || !memtrack_tracked(ctx))
		return false;
	if (!ctx->chain && !(ctx->chain = load_cover(ctx))) {
		/* saved in full; the uffd stays, armed again for the next */
		ctx->track_taken = false;
		return false;
	}
	return true;
}

uint64_t chain_dump_cover(const struct dump_ctx *ctx, uint64_t addr, uint64_t end, bool *covered)
{
	const struct chain_cover *c = ctx->chain;
	size_t i = first_run_above(c->runs, c->nr, addr);
	uint64_t at;

	*covered = i < c->nr && c->runs[i]->vaddr <= addr;
	if (!*covered)
		return i < c->nr && c->runs[i]->vaddr < end ? c->runs[i]->vaddr : end;
	at = c->runs[i]->vaddr + c->runs[i]->nr_pages * PAGE_SIZE_4K;
	while (++i < c->nr && c->runs[i]->vaddr == at && at < end)
		at += c->runs[i]->nr_pages * PAGE_SIZE_4K;
	return at < end ? at : end;
}

/* CRIU leaves DIR/parent pointing at the parent; so does cryo. */
static void link_parent(struct dump_tree *tree)
{
	unlinkat(tree->dir.dirfd, "parent", 0);
	if (symlinkat(tree->opts->prev_images_dir, tree->dir.dirfd, "parent"))
		pr_warn("cannot make %s/parent: %s", tree->opts->images_dir, strerror(errno));
}

int chain_dump_write(struct dump_tree *tree)
{
	const struct cryo_opts *o = tree->opts;
	ChainEntry ce = CHAIN_ENTRY__INIT;
	int ret;

	if (!o->pre_dump && !o->prev_images_dir && !o->track_mem)
		return 0;
	ce.pre_dump = o->pre_dump;
	if (tree->chain) {
		ce.parent_dir = (char *)o->prev_images_dir;
		ce.has_parent_inventory_xxh3 = true;
		ce.parent_inventory_xxh3 = tree->chain->pdir.inventory_xxh3;
		link_parent(tree);
	}
	if (memtrack_hand_over(tree, &ce))
		return -1;
	ret = image_write_one(&tree->dir, IMAGE_CHAIN, 0, &ce.base);
	ce.n_tracked = 0;
	ce.tracked = NULL;
	return ret;
}

void chain_dump_free(struct dump_tree *tree)
{
	struct chain_dump *cd = tree->chain;

	for (int i = 0; i < tree->nr_procs; i++) {
		struct chain_cover *c = tree->procs[i]->chain;
		for (size_t k = 0; c && k < c->nr; k++)
			pagemap_entry__free_unpacked(c->runs[k], NULL);
		if (c)
			free(c->runs);
		free(c);
		tree->procs[i]->chain = NULL;
	}
	if (!cd)
		return;
	if (cd->pchain)
		chain_entry__free_unpacked(cd->pchain, NULL);
	img_dir_close(&cd->pdir);
	free(cd->parent_path);
	free(cd);
	tree->chain = NULL;
}

/* ---- restore ---- */

/* One process's pages in one parent level, verified. */
struct level_pages {
	pid_t pid;
	size_t nr;
	PagemapEntry **runs;
	const unsigned char *map;
	uint64_t size;
};

struct chain_level {
	struct img_dir dir;
	char *path;
	size_t nr_lp;
	struct level_pages *lp;
};

struct chain_restore {
	int nr; /* parent levels: lv[0] is the parent, lv[1] its parent... */
	struct chain_level lv[MAX_LEVELS];
};

/* The parent of the checkpoint at dir (whose chain.img is ce), checked. */
static int open_level(struct chain_level *lv, const char *dir, const ChainEntry *ce)
{
	if (!(lv->path = join_path(dir, ce->parent_dir)))
		return err_set("out of memory");
	if (img_dir_open(&lv->dir, lv->path))
		return err_wrap("the parent checkpoint of %s", dir);
	if (!ce->has_parent_inventory_xxh3 || lv->dir.inventory_xxh3 != ce->parent_inventory_xxh3)
		return err_set("the parent checkpoint %s of %s has changed since (its inventory "
			       "checksum is not the one recorded): refusing the chain",
			       lv->path, dir);
	return 0;
}

static int load_levels(struct restore_tree *tree)
{
	struct chain_restore *cr = calloc(1, sizeof(*cr));
	ChainEntry *ce = load_chain(&tree->dir);
	const char *dir = tree->dir.path;

	if (!cr)
		return err_set("out of memory");
	tree->chain = cr;
	while (ce && ce != (ChainEntry *)-1 && ce->parent_dir) {
		struct chain_level *lv = &cr->lv[cr->nr];
		lv->dir.dirfd = -1;
		if (cr->nr == MAX_LEVELS) {
			chain_entry__free_unpacked(ce, NULL);
			return err_set("%s: a chain of more than %d parents", tree->dir.path,
				       MAX_LEVELS);
		}
		cr->nr++;
		int r = open_level(lv, dir, ce);
		chain_entry__free_unpacked(ce, NULL);
		if (r)
			return -1;
		ce = load_chain(&lv->dir);
		dir = lv->path;
	}
	if (ce == (ChainEntry *)-1)
		return err_wrap("checkpoint %s", dir);
	if (ce)
		chain_entry__free_unpacked(ce, NULL);
	return 0;
}

/* The runs of a level's own image: in order, back to back, within it,
 * each matching its checksum. */
static int verify_level(const struct chain_level *lv, const struct level_pages *lp)
{
	uint64_t off = IMG_PAGES_DATA_OFF;

	for (size_t i = 0; i < lp->nr; i++) {
		const PagemapEntry *pe = lp->runs[i];
		uint64_t len = pe->nr_pages * PAGE_SIZE_4K;
		if (i &&
		    pe->vaddr < lp->runs[i - 1]->vaddr + lp->runs[i - 1]->nr_pages * PAGE_SIZE_4K)
			return err_set("%s/pagemap-%d.img: runs out of order", lv->path, lp->pid);
		if (pe->in_parent || (pe->has_pages_id && pe->pages_id != (uint32_t)lp->pid))
			continue;
		if (pe->offset != off || off + len > lp->size || !pe->nr_pages)
			return err_set("%s/pagemap-%d.img: the run at 0x%llx points outside its "
				       "pages image",
				       lv->path, lp->pid, (unsigned long long)pe->vaddr);
		if (img_hash(lp->map + off, len) != pe->xxh3)
			return err_set("page data in %s/%s is corrupted: checksum mismatch for "
				       "0x%llx-0x%llx (a parent checkpoint): refusing the chain",
				       lv->path, image_name(IMAGE_PAGES, lp->pid).s,
				       (unsigned long long)pe->vaddr,
				       (unsigned long long)(pe->vaddr + len));
		off += len;
	}
	if (off != lp->size)
		return err_set("%s/%s does not match its pagemap (%llu bytes, %llu accounted for)",
			       lv->path, image_name(IMAGE_PAGES, lp->pid).s,
			       (unsigned long long)lp->size, (unsigned long long)off);
	return 0;
}

static int open_level_pages(struct chain_level *lv, struct level_pages *lp)
{
	int fd;

	if (!image_present(&lv->dir, IMAGE_PAGEMAP, lp->pid))
		return err_set("the parent checkpoint %s holds no memory of pid %d", lv->path,
			       lp->pid);
	if (image_load_list(&lv->dir, IMAGE_PAGEMAP, lp->pid, NULL, (void ***)&lp->runs, &lp->nr))
		return err_wrap("parent checkpoint %s", lv->path);
	fd = image_raw_open(&lv->dir, IMAGE_PAGES, lp->pid, &lp->size);
	if (fd < 0)
		return err_wrap("parent checkpoint %s", lv->path);
	/* read whole by the checksums at once: populated in bulk */
	lp->map = mmap(NULL, lp->size, PROT_READ, MAP_PRIVATE | MAP_POPULATE, fd, 0);
	close(fd);
	if (lp->map == MAP_FAILED) {
		lp->map = NULL;
		return err_errno("cannot map %s/%s", lv->path, image_name(IMAGE_PAGES, lp->pid).s);
	}
	return verify_level(lv, lp);
}

/* A level's pages of pid, opened and verified the first time. */
static struct level_pages *level_pages(struct chain_restore *cr, int level, pid_t pid)
{
	struct chain_level *lv = &cr->lv[level];
	struct level_pages *grown;

	for (size_t i = 0; i < lv->nr_lp; i++)
		if (lv->lp[i].pid == pid)
			return &lv->lp[i];
	grown = realloc(lv->lp, (lv->nr_lp + 1) * sizeof(*grown));
	if (!grown) {
		err_set("out of memory");
		return NULL;
	}
	lv->lp = grown;
	lv->lp[lv->nr_lp] = (struct level_pages){.pid = pid};
	if (open_level_pages(lv, &lv->lp[lv->nr_lp])) {
		lv->nr_lp++; /* freed with the rest */
		return NULL;
	}
	return &lv->lp[lv->nr_lp++];
}

/* Copies the bytes of one data run of a level (its own or shared from
 * another process of that level) at [cur, cur + n). */
static int copy_from(struct chain_restore *cr, int level, struct level_pages *lp,
		     const PagemapEntry *pe, uint64_t cur, uint64_t n, unsigned char *dst)
{
	struct level_pages *owner = lp;
	uint64_t off = pe->offset + (cur - pe->vaddr);

	if (pe->has_pages_id && pe->pages_id != (uint32_t)lp->pid &&
	    !(owner = level_pages(cr, level, pe->pages_id)))
		return -1;
	if (off < IMG_PAGES_DATA_OFF || off + n > owner->size || off % PAGE_SIZE_4K)
		return err_set("%s/pagemap-%d.img: the run at 0x%llx points outside pages-%d.img",
			       cr->lv[level].path, lp->pid, (unsigned long long)pe->vaddr,
			       owner->pid);
	memcpy(dst, owner->map + off, n);
	return 0;
}

/* The bytes of [va, va + len) of pid as the chain from level on has them. */
static int fill(struct chain_restore *cr, int level, pid_t pid, uint64_t va, uint64_t len,
		unsigned char *dst)
{
	struct level_pages *lp;
	uint64_t cur = va, end = va + len;
	size_t i;

	if (level >= cr->nr)
		return err_set("pid %d: pages at 0x%llx are the parent's, but the chain ends", pid,
			       (unsigned long long)va);
	if (!(lp = level_pages(cr, level, pid)))
		return -1;
	for (i = first_run_above(lp->runs, lp->nr, va); cur < end; i++) {
		const PagemapEntry *pe = i < lp->nr ? lp->runs[i] : NULL;
		if (!pe || pe->vaddr > cur)
			return err_set("the parent checkpoint %s holds no page 0x%llx of pid %d",
				       cr->lv[level].path, (unsigned long long)cur, pid);
		uint64_t pend = pe->vaddr + pe->nr_pages * PAGE_SIZE_4K;
		uint64_t n = (pend < end ? pend : end) - cur;
		if (pe->in_parent ? fill(cr, level + 1, pid, cur, n, dst + (cur - va))
				  : copy_from(cr, level, lp, pe, cur, n, dst + (cur - va)))
			return -1;
		cur += n;
	}
	return 0;
}

/* Bytes of the new image: its header, then every run. */
static uint64_t merged_size(const struct restore_ctx *ctx, size_t *in_parent)
{
	uint64_t size = IMG_PAGES_DATA_OFF;

	*in_parent = 0;
	for (size_t i = 0; i < ctx->nr_runs; i++) {
		size += ctx->runs[i]->nr_pages * PAGE_SIZE_4K;
		*in_parent += ctx->runs[i]->in_parent;
	}
	return size;
}

/* One run into the memfd at off: copied from the process's own image, or
 * resolved in the chain and given its checksum. */
static int merge_run(struct restore_ctx *ctx, PagemapEntry *pe, unsigned char *map, uint64_t off)
{
	uint64_t len = pe->nr_pages * PAGE_SIZE_4K;

	if (pe->has_pages_id && pe->pages_id != (uint32_t)ctx->pid)
		return err_set("pagemap-%d.img: a shared run in an incremental checkpoint",
			       ctx->pid);
	if (pe->in_parent) {
		/* from runs verified in their own level; the memfd is cryo's only */
		if (fill(ctx->tree->chain, 0, ctx->pid, pe->vaddr, len, map + off))
			return -1;
	} else if (pe->offset % PAGE_SIZE_4K || pe->offset + len > ctx->pages_size ||
		   pread(ctx->pages_fd, map + off, len, pe->offset) != (ssize_t)len) {
		return err_set("%s/%s: the run at 0x%llx points outside it", ctx->tree->dir.path,
			       image_name(IMAGE_PAGES, ctx->pid).s, (unsigned long long)pe->vaddr);
	}
	pe->offset = off;
	return 0;
}

static int merge(struct restore_ctx *ctx, int mfd, uint64_t size)
{
	unsigned char *map;
	uint64_t off = IMG_PAGES_DATA_OFF;
	int ret = 0;

	if (ftruncate(mfd, size))
		return err_errno("cannot size the merged pages of pid %d (%llu bytes)", ctx->pid,
				 (unsigned long long)size);
	map = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, mfd, 0);
	if (map == MAP_FAILED)
		return err_errno("cannot map the merged pages of pid %d", ctx->pid);
	/* allocated in bulk: several times faster than a fault per page */
	madvise(map, size, MADV_POPULATE_WRITE);
	if (pread(ctx->pages_fd, map, IMG_PAGES_DATA_OFF, 0) != IMG_PAGES_DATA_OFF)
		ret = err_errno("cannot read %s", image_name(IMAGE_PAGES, ctx->pid).s);
	for (size_t i = 0; !ret && i < ctx->nr_runs; i++) {
		ret = merge_run(ctx, ctx->runs[i], map, off);
		off += ctx->runs[i]->nr_pages * PAGE_SIZE_4K;
	}
	munmap(map, size);
	return ret;
}

int chain_resolve(struct restore_ctx *ctx)
{
	size_t in_parent;
	uint64_t size = merged_size(ctx, &in_parent);
	char name[32];
	int mfd;

	if (!ctx->tree->chain && load_levels(ctx->tree))
		return -1;
	if (!in_parent)
		return 0;
	snprintf(name, sizeof(name), "cryo-pages-%d", ctx->pid);
	mfd = memfd_create(name, MFD_CLOEXEC);
	if (mfd < 0)
		return err_errno("cannot make a memfd for the pages of pid %d", ctx->pid);
	if (merge(ctx, mfd, size)) {
		close(mfd);
		return -1;
	}
	close(ctx->pages_fd);
	ctx->pages_fd = mfd;
	ctx->pages_size = size;
	pr_debug("pid %d: %zu runs resolved in %d parent checkpoint%s", ctx->pid, in_parent,
		 ctx->tree->chain->nr, ctx->tree->chain->nr > 1 ? "s" : "");
	return 0;
}

void chain_restore_free(struct restore_tree *tree)
{
	struct chain_restore *cr = tree->chain;

	for (int l = 0; cr && l < cr->nr; l++) {
		struct chain_level *lv = &cr->lv[l];
		for (size_t i = 0; i < lv->nr_lp; i++) {
			for (size_t k = 0; k < lv->lp[i].nr; k++)
				pagemap_entry__free_unpacked(lv->lp[i].runs[k], NULL);
			free(lv->lp[i].runs);
			if (lv->lp[i].map)
				munmap((void *)lv->lp[i].map, lv->lp[i].size);
		}
		free(lv->lp);
		img_dir_close(&lv->dir);
		free(lv->path);
	}
	free(cr);
	tree->chain = NULL;
}
