/*
 * pages: the contents of private and anonymous-shared memory.
 *
 * Dump: for each VMA that owns memory (anonymous, or private pages a process
 * wrote over a file), the pages that exist are found in bulk with
 * PAGEMAP_SCAN (or /proc/PID/pagemap on older kernels; SEEK_DATA on the shmem
 * object for shared anonymous memory), read with process_vm_readv into 16 MiB
 * buffers, and written to pages-PID.img by a writer thread, so that reading
 * the target and writing the image overlap. Never-touched pages, clean file
 * pages and anonymous pages that hold only zeros are not written: on restore
 * they read back the same without being stored. Each run of pages that is
 * contiguous in memory and in the image gets a pagemap entry with its XXH3.
 * In a tree, a private anonymous page that a process still shares
 * copy-on-write with one dumped before it (same physical frame, read from
 * /proc/PID/pagemap) is saved once: the later process's entry points into
 * the earlier one's image (pages_id).
 *
 * With dump -R the pages are read from the process's copy-on-write
 * snapshot (snapshot.c) after it was let go: its child's /proc/PID/mem and
 * pagemap, and, for memory a fork does not carry, the copy made while frozen
 * (pages_copy_frozen). struct page_source and the few functions that use
 * it (read_memory, read_pfns, scan_vma) are all that know where from.
 *
 * Pages mapped by more than one process are read through /proc/PID/mem,
 * never process_vm_readv: the latter pins them, and the kernel breaks the
 * copy-on-write sharing of every anonymous page pinned (one copy per page
 * per process: a tree would leave the dump with many times its memory).
 *
 * Restore: the image is mapped once, and every run's checksum is verified
 * on that mapping, on threads that run while the processes are created and
 * rebuilt; none is released before all passed. Anonymous private memory is
 * then filled with UFFDIO_COPY through a userfaultfd that the new process
 * creates (injected) and cryo takes over with pidfd_getfd: each page is
 * allocated and copied straight from the image's page cache, never cleared
 * first. Memory userfaultfd cannot fill (private pages over a file, shared
 * memory) is written by cryo with process_vm_writev from the same mapping,
 * up to 1024 runs per call, without stopping the new process.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <linux/userfaultfd.h>
#include <unistd.h>

#include "chain.h"
#include "cow.h"
#include "images.h"
#include "infra/log.h"
#include "infra/proc.h"
#include "infra/uapi.h"
#include "memtrack.h"
#include "pages.h"
#include "shmem.h"
#include "snapshot.h"

#define CHUNK_SIZE	   (16ULL << 20)
#define NR_BUFS		   3
#define SCAN_VEC	   1024
#define BATCH_IOVS	   1024
#define BATCH_BYTES	   (1ULL << 30)
#define MAX_VERIFY_THREADS 8
#define PM_PRESENT	   (1ULL << 63)
#define PM_SWAPPED	   (1ULL << 62)
#define PM_FILE		   (1ULL << 61)
#define PM_EXCLUSIVE	   (1ULL << 56)
#define PM_PFN_MASK	   ((1ULL << 55) - 1)

struct region {
	uint64_t start, end;
};

struct regions {
	size_t nr, cap;
	struct region *r;
};

/* Writes full buffers to the pages image on a thread of its own: a ring of
 * NR_BUFS buffers, of which the reader fills one while the rest queue. */
struct async_writer {
	pthread_t thread;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct img_out *out;
	unsigned char *bufs[NR_BUFS];
	size_t len[NR_BUFS];
	int drain, queued;
	bool stop;
	int err; /* errno of a failed write; reported by the reader */
};

/* Where a physical frame's contents were saved: open addressing on the pfn. */
struct pfn_ref {
	uint64_t pfn; /* 0: empty slot */
	uint64_t offset;
	pid_t pages_id;
};

struct pfn_map {
	size_t nr, cap;
	struct pfn_ref *slot;
};

/* A run of pages saved in an earlier process's image. */
struct foreign_run {
	uint64_t vaddr, pages, offset;
	pid_t pages_id;
};

/* Where one process's pages are read from: the target itself, or, once it
 * was let go, its snapshot child (snapshot.c), and what the child lacks from
 * the copy made while frozen. Only these read_ and scan_ functions know. */
struct page_source {
	pid_t pid; /* the process read: the target or its snapshot */
	int pm_fd, mem_fd;
	bool snapshot;			  /* read through /proc/PID/mem only (no pins) */
	const struct snapshot_copy *copy; /* the VMA at hand was copied while frozen */
};

/* Collects page data into a buffer and cuts it into checksummed runs. */
struct page_writer {
	struct dump_ctx *ctx;
	struct page_source src;
	struct img_out out;
	struct async_writer aw;
	int fill;
	unsigned char *buf;
	size_t used;
	uint64_t buf_file_off; /* image offset of buf[0] */
	size_t run_start;      /* buffer offset where the open run begins */
	uint64_t run_vaddr, run_pages;
	struct img_out map;
	struct foreign_run fr;
	uint64_t *pfns; /* per page of the chunk being read: its frame, or 0 */
	bool share;	/* look for pages saved by an earlier process */
};

/* ---- dump: finding pages ---- */

static int regions_add(struct regions *rs, uint64_t start, uint64_t end)
{
	if (rs->nr && rs->r[rs->nr - 1].end == start) {
		rs->r[rs->nr - 1].end = end;
		return 0;
	}
	if (rs->nr == rs->cap) {
		rs->cap = rs->cap ? rs->cap * 2 : 64;
		rs->r = realloc(rs->r, rs->cap * sizeof(*rs->r));
		if (!rs->r)
			return err_set("out of memory scanning pages");
	}
	rs->r[rs->nr++] = (struct region){start, end};
	return 0;
}

/* Present or swapped pages that are anonymous (not page cache, not the zero page). */
static int scan_anon_pagemap_scan(int pm_fd, const VmaEntry *v, struct regions *rs)
{
	struct page_region vec[SCAN_VEC];
	struct pm_scan_arg arg = {
	    .size = sizeof(arg),
	    .start = v->start,
	    .end = v->end,
	    .vec = (uintptr_t)vec,
	    .vec_len = SCAN_VEC,
	    .category_inverted = PAGE_IS_FILE | PAGE_IS_PFNZERO,
	    .category_mask = PAGE_IS_FILE | PAGE_IS_PFNZERO,
	    .category_anyof_mask = PAGE_IS_PRESENT | PAGE_IS_SWAPPED,
	    .return_mask = PAGE_IS_PRESENT | PAGE_IS_SWAPPED,
	};

	while (arg.start < arg.end) {
		long n = ioctl(pm_fd, PAGEMAP_SCAN, &arg);
		if (n < 0)
			return err_errno("PAGEMAP_SCAN of 0x%llx-0x%llx failed",
					 (unsigned long long)arg.start,
					 (unsigned long long)arg.end);
		for (long i = 0; i < n; i++)
			if (regions_add(rs, vec[i].start, vec[i].end))
				return -1;
		arg.start = arg.walk_end;
	}
	return 0;
}

static int scan_anon_pagemap_read(int pm_fd, const VmaEntry *v, struct regions *rs)
{
	static uint64_t ent[8192];

	for (uint64_t addr = v->start; addr < v->end;) {
		size_t n = (v->end - addr) / PAGE_SIZE_4K;
		if (n > 8192)
			n = 8192;
		ssize_t got = pread(pm_fd, ent, n * 8, addr / PAGE_SIZE_4K * 8);
		if (got != (ssize_t)(n * 8))
			return err_errno("cannot read pagemap at 0x%llx", (unsigned long long)addr);
		for (size_t i = 0; i < n; i++, addr += PAGE_SIZE_4K)
			if ((ent[i] & (PM_PRESENT | PM_SWAPPED)) && !(ent[i] & PM_FILE) &&
			    regions_add(rs, addr, addr + PAGE_SIZE_4K))
				return -1;
	}
	return 0;
}

/* Shared anonymous memory lives in a shmem object: its populated ranges. */
static int scan_shmem(pid_t pid, const VmaEntry *v, struct regions *rs)
{
	uint64_t len = v->end - v->start;
	off_t off = v->pgoff, end = v->pgoff + len;
	int fd = proc_open_map_file(pid, v->start, v->end, O_RDONLY);

	if (fd < 0)
		return err_wrap("the shared memory of pid %d", pid);
	while (off < end) {
		off_t data = lseek(fd, off, SEEK_DATA), hole;
		if (data < 0 || data >= end)
			break;
		hole = lseek(fd, data, SEEK_HOLE);
		if (hole < 0 || hole > end)
			hole = end;
		if (regions_add(rs, v->start + (data - v->pgoff), v->start + (hole - v->pgoff))) {
			close(fd);
			return -1;
		}
		off = hole;
	}
	close(fd);
	return 0;
}

static bool vma_owns_pages(const VmaEntry *v)
{
	return v->kind == VMA_KIND__ANON_PRIVATE || v->kind == VMA_KIND__ANON_SHARED ||
	       v->kind == VMA_KIND__FILE_PRIVATE;
}

/* ---- dump: writing pages ---- */

static bool page_is_zero(const unsigned char *p)
{
	const uint64_t *w = (const uint64_t *)p;

	for (size_t i = 0; i < PAGE_SIZE_4K / 8; i += 4)
		if (w[i] | w[i + 1] | w[i + 2] | w[i + 3])
			return false;
	return true;
}

static int run_close(struct page_writer *pw)
{
	PagemapEntry pe = PAGEMAP_ENTRY__INIT;

	if (!pw->run_pages)
		return 0;
	pe.vaddr = pw->run_vaddr;
	pe.nr_pages = pw->run_pages;
	pe.offset = pw->buf_file_off + pw->run_start;
	pe.xxh3 = img_hash(pw->buf + pw->run_start, pw->run_pages * PAGE_SIZE_4K);
	pw->run_pages = 0;
	pw->ctx->tree->stats.pages_written += pe.nr_pages;
	return img_out_msg(&pw->map, &pe.base);
}

static void *writer_main(void *arg)
{
	struct async_writer *aw = arg;

	pthread_mutex_lock(&aw->lock);
	for (;;) {
		while (!aw->queued && !aw->stop)
			pthread_cond_wait(&aw->cond, &aw->lock);
		if (!aw->queued)
			break;
		int i = aw->drain;
		pthread_mutex_unlock(&aw->lock);
		int failed = !aw->err && img_out_raw(aw->out, aw->bufs[i], aw->len[i]);
		pthread_mutex_lock(&aw->lock);
		if (failed)
			aw->err = errno ? errno : EIO;
		aw->drain = (aw->drain + 1) % NR_BUFS;
		aw->queued--;
		pthread_cond_broadcast(&aw->cond);
	}
	pthread_mutex_unlock(&aw->lock);
	return NULL;
}

static int writer_start(struct page_writer *pw)
{
	struct async_writer *aw = &pw->aw;

	for (int i = 0; i < NR_BUFS; i++) {
		aw->bufs[i] = mmap(NULL, CHUNK_SIZE, PROT_READ | PROT_WRITE,
				   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (aw->bufs[i] == MAP_FAILED) {
			aw->bufs[i] = NULL;
			return err_errno("cannot allocate the page buffers");
		}
		/* huge pages: a fault per 2 MiB of buffer rather than per page,
		 * which is most of the cost of a small dump */
		madvise(aw->bufs[i], CHUNK_SIZE, MADV_HUGEPAGE);
	}
	aw->out = &pw->out;
	pthread_mutex_init(&aw->lock, NULL);
	pthread_cond_init(&aw->cond, NULL);
	errno = pthread_create(&aw->thread, NULL, writer_main, aw);
	if (errno)
		return err_errno("cannot start the page writer thread");
	pw->fill = 0;
	pw->buf = aw->bufs[0];
	return 0;
}

static int writer_error(struct page_writer *pw)
{
	errno = pw->aw.err;
	return err_errno("cannot write %s/%s", pw->ctx->tree->dir.path,
			 image_name(IMAGE_PAGES, pw->ctx->pid).s);
}

/* Waits for every queued buffer to be written and stops the thread. */
static int writer_stop(struct page_writer *pw)
{
	struct async_writer *aw = &pw->aw;

	if (!pw->buf)
		return 0;
	pthread_mutex_lock(&aw->lock);
	aw->stop = true;
	pthread_cond_broadcast(&aw->cond);
	pthread_mutex_unlock(&aw->lock);
	pthread_join(aw->thread, NULL);
	pthread_mutex_destroy(&aw->lock);
	pthread_cond_destroy(&aw->cond);
	for (int i = 0; i < NR_BUFS; i++)
		munmap(aw->bufs[i], CHUNK_SIZE);
	pw->buf = NULL;
	return aw->err ? writer_error(pw) : 0;
}

/* Hands the full buffer to the writer and moves on to the next free one. */
static int buf_flush(struct page_writer *pw)
{
	struct async_writer *aw = &pw->aw;
	unsigned long long t;

	if (run_close(pw))
		return -1;
	if (!pw->used)
		return 0;
	t = now_us();
	pthread_mutex_lock(&aw->lock);
	aw->len[pw->fill] = pw->used;
	aw->queued++;
	pthread_cond_broadcast(&aw->cond);
	while (aw->queued == NR_BUFS)
		pthread_cond_wait(&aw->cond, &aw->lock);
	pthread_mutex_unlock(&aw->lock);
	pw->ctx->tree->stats.memwrite_time_us += now_us() - t;
	if (aw->err)
		return writer_error(pw);
	pw->buf_file_off += pw->used;
	pw->used = 0;
	pw->fill = (pw->fill + 1) % NR_BUFS;
	pw->buf = aw->bufs[pw->fill];
	return 0;
}

/* The bytes at addr of a VMA copied while frozen: its ranges are in order. */
static int read_copy(const struct snapshot_copy *c, uint64_t addr, void *dst, size_t len)
{
	size_t off = 0;

	for (size_t i = 0; i < c->nr; off += c->ranges[2 * i + 1] - c->ranges[2 * i], i++)
		if (addr >= c->ranges[2 * i] && addr + len <= c->ranges[2 * i + 1]) {
			memcpy(dst, c->data + off + (addr - c->ranges[2 * i]), len);
			return 0;
		}
	return err_set("0x%llx-0x%llx was not copied while frozen", (unsigned long long)addr,
		       (unsigned long long)(addr + len));
}

static int read_memory(const struct page_source *src, const VmaEntry *v, uint64_t addr, void *dst,
		       size_t len, bool shared)
{
	ssize_t n;

	if (src->copy)
		return read_copy(src->copy, addr, dst, len);
	if ((v->prot & PROT_READ) && !shared && !src->snapshot) {
		struct iovec local = {.iov_base = dst, .iov_len = len};
		struct iovec remote = {.iov_base = (void *)addr, .iov_len = len};
		n = process_vm_readv(src->pid, &local, 1, &remote, 1, 0);
	} else {
		/* shared (a snapshot's pages all are), or not readable by the
		 * process itself: /proc/PID/mem reads without pinning (a pin
		 * would copy a shared page), whatever the protection */
		n = pread(src->mem_fd, dst, len, addr);
	}
	if (n != (ssize_t)len)
		return err_errno("cannot read memory 0x%llx-0x%llx of pid %d",
				 (unsigned long long)addr, (unsigned long long)(addr + len),
				 src->pid);
	return 0;
}

/* ---- dump: pages shared copy-on-write between processes ---- */

static struct pfn_ref *pfn_slot(struct pfn_map *m, uint64_t pfn)
{
	size_t i = (pfn * 0x9e3779b97f4a7c15ULL) & (m->cap - 1);

	while (m->slot[i].pfn && m->slot[i].pfn != pfn)
		i = (i + 1) & (m->cap - 1);
	return &m->slot[i];
}

static const struct pfn_ref *pfn_find(struct pfn_map *m, uint64_t pfn)
{
	struct pfn_ref *r;

	if (!m || !m->cap || !pfn)
		return NULL;
	r = pfn_slot(m, pfn);
	return r->pfn ? r : NULL;
}

static int pfn_grow(struct pfn_map *m)
{
	struct pfn_map bigger = {.cap = m->cap ? 2 * m->cap : 1 << 16};

	bigger.slot = calloc(bigger.cap, sizeof(*bigger.slot));
	if (!bigger.slot)
		return err_set("out of memory indexing saved pages");
	for (size_t i = 0; i < m->cap; i++)
		if (m->slot[i].pfn)
			*pfn_slot(&bigger, m->slot[i].pfn) = m->slot[i];
	bigger.nr = m->nr;
	free(m->slot);
	*m = bigger;
	return 0;
}

static int pfn_add(struct pfn_map *m, uint64_t pfn, pid_t pages_id, uint64_t offset)
{
	struct pfn_ref *r;

	if (!m || !pfn)
		return 0;
	if ((m->nr + 1) * 2 > m->cap && pfn_grow(m))
		return -1;
	r = pfn_slot(m, pfn);
	if (!r->pfn)
		m->nr++;
	*r = (struct pfn_ref){.pfn = pfn, .offset = offset, .pages_id = pages_id};
	return 0;
}

void pages_dump_free(struct dump_tree *tree)
{
	if (tree->saved_pfns)
		free(tree->saved_pfns->slot);
	free(tree->saved_pfns);
	tree->saved_pfns = NULL;
}

static int foreign_close(struct page_writer *pw)
{
	struct foreign_run *fr = &pw->fr;
	PagemapEntry pe = PAGEMAP_ENTRY__INIT;

	if (!fr->pages)
		return 0;
	pe.vaddr = fr->vaddr;
	pe.nr_pages = fr->pages;
	pe.offset = fr->offset;
	pe.xxh3 = 0; /* the bytes are checked through the runs of the image they are in */
	pe.has_pages_id = true;
	pe.pages_id = fr->pages_id;
	fr->pages = 0;
	pw->ctx->tree->stats.pages_skipped_shared += pe.nr_pages;
	return img_out_msg(&pw->map, &pe.base);
}

/* A page another process saved already: only a reference is written. */
static int foreign_take(struct page_writer *pw, uint64_t vaddr, const struct pfn_ref *ref)
{
	struct foreign_run *fr = &pw->fr;

	if (fr->pages &&
	    (fr->pages_id != ref->pages_id || fr->vaddr + fr->pages * PAGE_SIZE_4K != vaddr ||
	     fr->offset + fr->pages * PAGE_SIZE_4K != ref->offset) &&
	    foreign_close(pw))
		return -1;
	if (!fr->pages)
		*fr = (struct foreign_run){
		    .vaddr = vaddr, .offset = ref->offset, .pages_id = ref->pages_id};
	fr->pages++;
	return 0;
}

/* The frames behind len bytes at addr, into pw->pfns (0 where none);
 * *shared is set if any of them is mapped by another process too. */
static int read_pfns(struct page_writer *pw, uint64_t addr, size_t len, bool *shared)
{
	size_t n = len / PAGE_SIZE_4K;
	ssize_t got;

	if (pw->src.copy) { /* not indexed: saved as its own */
		memset(pw->pfns, 0, n * sizeof(*pw->pfns));
		*shared = true;
		return 0;
	}
	got = pread(pw->src.pm_fd, pw->pfns, n * 8, addr / PAGE_SIZE_4K * 8);

	if (got != (ssize_t)(n * 8))
		return err_errno("cannot read pagemap at 0x%llx of pid %d",
				 (unsigned long long)addr, pw->ctx->pid);
	*shared = false;
	for (size_t i = 0; i < n; i++) {
		uint64_t e = pw->pfns[i];
		if ((e & PM_PRESENT) && !(e & PM_EXCLUSIVE))
			*shared = true;
		pw->pfns[i] = e & PM_PRESENT ? e & PM_PFN_MASK : 0;
	}
	return 0;
}

/* ---- dump: the pages themselves ---- */

/* Keeps the just-read page at buf[used] (or drops it if zero) and extends
 * the run; *offset gets its place in the image, or 0 if it was dropped. */
static int take_page(struct page_writer *pw, uint64_t vaddr, bool skip_zero, uint64_t *offset)
{
	unsigned char *page = pw->buf + pw->used;

	*offset = 0;
	if (skip_zero && page_is_zero(page)) {
		pw->ctx->tree->stats.pages_skipped_zero++;
		return run_close(pw);
	}
	if (pw->run_pages && pw->run_vaddr + pw->run_pages * PAGE_SIZE_4K != vaddr && run_close(pw))
		return -1;
	if (!pw->run_pages) {
		pw->run_vaddr = vaddr;
		pw->run_start = pw->used;
	}
	pw->run_pages++;
	*offset = pw->buf_file_off + pw->used;
	pw->used += PAGE_SIZE_4K;
	return 0;
}

/* One page just read at src: a reference to a copy saved already, or kept. */
/* One page just read at src, kept (or dropped if zero) and indexed. */
static int place_page(struct page_writer *pw, uint64_t vaddr, unsigned char *src, bool skip_zero,
		      uint64_t pfn)
{
	uint64_t offset;

	/* pages are compacted in place as zero pages are dropped */
	if (src != pw->buf + pw->used)
		memmove(pw->buf + pw->used, src, PAGE_SIZE_4K);
	if (take_page(pw, vaddr, skip_zero, &offset))
		return -1;
	return offset ? pfn_add(pw->ctx->tree->saved_pfns, pfn, pw->ctx->pid, offset) : 0;
}

/* Where an earlier process saved page i of the chunk, or NULL. */
static const struct pfn_ref *saved_page(struct page_writer *pw, bool shareable, size_t i)
{
	return shareable ? pfn_find(pw->ctx->tree->saved_pfns, pw->pfns[i]) : NULL;
}

/* Reads and keeps pages [i, j) of the chunk at addr: none is saved already. */
static int keep_pages(struct page_writer *pw, const VmaEntry *v, uint64_t addr, size_t i, size_t j,
		      bool shared)
{
	unsigned char *src = pw->buf + pw->used;
	bool skip_zero = v->kind != VMA_KIND__FILE_PRIVATE;
	bool pfns = v->kind != VMA_KIND__ANON_SHARED;

	if (foreign_close(pw) ||
	    read_memory(&pw->src, v, addr + i * PAGE_SIZE_4K, src, (j - i) * PAGE_SIZE_4K, shared))
		return -1;
	pw->ctx->tree->stats.pages_read += j - i;
	for (size_t k = i; k < j; k++)
		if (place_page(pw, addr + k * PAGE_SIZE_4K, src + (k - i) * PAGE_SIZE_4K, skip_zero,
			       pfns ? pw->pfns[k] : 0))
			return -1;
	return 0;
}

/* A page an earlier process of the tree saved is not even read: its entry
 * points into that process's image. */
static int dump_region(struct page_writer *pw, const VmaEntry *v, struct region r)
{
	bool private = v->kind != VMA_KIND__ANON_SHARED;
	/* private file mappings too: their written pages are anonymous (cow.c) */
	bool shareable =
	    pw->share && (v->kind == VMA_KIND__ANON_PRIVATE || v->kind == VMA_KIND__FILE_PRIVATE);

	for (uint64_t addr = r.start; addr < r.end;) {
		size_t room = CHUNK_SIZE - pw->used;
		size_t len = r.end - addr < room ? r.end - addr : room, n = len / PAGE_SIZE_4K;
		bool shared = false;
		if (private && read_pfns(pw, addr, len, &shared))
			return -1;
		for (size_t i = 0, j; i < n; i = j) {
			const struct pfn_ref *ref = saved_page(pw, shareable, i);
			j = i + 1;
			if (ref) {
				if (run_close(pw) || foreign_take(pw, addr + i * PAGE_SIZE_4K, ref))
					return -1;
				continue;
			}
			while (j < n && !saved_page(pw, shareable, j))
				j++;
			if (keep_pages(pw, v, addr, i, j, shared))
				return -1;
		}
		addr += len;
		if (pw->used == CHUNK_SIZE && buf_flush(pw))
			return -1;
	}
	return run_close(pw) || foreign_close(pw) ? -1 : 0;
}

static int dump_regions(struct page_writer *pw, const VmaEntry *v, const struct regions *rs)
{
	for (size_t i = 0; i < rs->nr; i++)
		if (dump_region(pw, v, rs->r[i]))
			return -1;
	return 0;
}

/* ---- dump: incremental (chain.c, memtrack.c) ---- */

/* Pages unchanged since the parent checkpoint: a run without data. */
static int in_parent_run(struct page_writer *pw, uint64_t start, uint64_t end)
{
	PagemapEntry pe = PAGEMAP_ENTRY__INIT;

	if (run_close(pw) || foreign_close(pw))
		return -1;
	pe.vaddr = start;
	pe.nr_pages = (end - start) / PAGE_SIZE_4K;
	pe.has_in_parent = pe.in_parent = true;
	pw->ctx->tree->stats.pages_in_parent += pe.nr_pages;
	return img_out_msg(&pw->map, &pe.base);
}

static int add_written(void *arg, uint64_t start, uint64_t end)
{
	return regions_add(arg, start, end);
}

/* [addr, end) not written since the parent: the parent's where it has
 * data, read where it has none (it was all zeros, or never saved). */
static int dump_unwritten(struct page_writer *pw, const VmaEntry *v, uint64_t addr, uint64_t end)
{
	while (addr < end) {
		bool covered;
		uint64_t to = chain_dump_cover(pw->ctx, addr, end, &covered);
		if (covered ? in_parent_run(pw, addr, to)
			    : dump_region(pw, v, (struct region){addr, to}))
			return -1;
		addr = to;
	}
	return 0;
}

/* The present pages of v in an incremental dump: those written since the
 * parent are read, the rest refer to the parent; a VMA not tracked since
 * (new, moved, shared memory) is read whole. */
static int dump_changed(struct page_writer *pw, const VmaEntry *v, const struct regions *present)
{
	struct regions w = {0};
	int t =
	    v->kind == VMA_KIND__ANON_SHARED ? 0 : memtrack_written(pw->ctx, v, add_written, &w);
	int ret = 0;
	size_t k = 0;

	if (t <= 0) {
		free(w.r);
		for (size_t i = 0; i < present->nr; i++)
			pw->ctx->tree->stats.pages_untracked +=
			    (present->r[i].end - present->r[i].start) / PAGE_SIZE_4K;
		return t < 0 ? -1 : dump_regions(pw, v, present);
	}
	for (size_t i = 0; !ret && i < present->nr; i++)
		for (uint64_t a = present->r[i].start, e = present->r[i].end, to; !ret && a < e;
		     a = to) {
			while (k < w.nr && w.r[k].end <= a)
				k++;
			bool written = k < w.nr && w.r[k].start <= a;
			to = k < w.nr ? (written ? w.r[k].end : w.r[k].start) : e;
			to = to < e ? to : e;
			ret = written ? dump_region(pw, v, (struct region){a, to})
				      : dump_unwritten(pw, v, a, to);
		}
	free(w.r);
	return ret;
}

/* The ranges of v that hold pages, as its source has them. */
static int scan_vma(const struct dump_ctx *ctx, const struct page_source *src, const VmaEntry *v,
		    struct regions *rs)
{
	if (src->copy) {
		for (size_t i = 0; i < src->copy->nr; i++)
			if (regions_add(rs, src->copy->ranges[2 * i], src->copy->ranges[2 * i + 1]))
				return -1;
		return 0;
	}
	if (v->kind == VMA_KIND__ANON_SHARED)
		return scan_shmem(src->pid, v, rs);
	if (ctx->tree->kd.pagemap_scan)
		return scan_anon_pagemap_scan(src->pm_fd, v, rs);
	return scan_anon_pagemap_read(src->pm_fd, v, rs);
}

static int dump_vma_pages(struct page_writer *pw, const VmaEntry *v)
{
	struct dump_ctx *ctx = pw->ctx;
	struct regions rs = {0};
	uint64_t present = 0;
	int ret;

	pw->src.copy = snapshot_copy_of(ctx->snap, v->start);
	ret = scan_vma(ctx, &pw->src, v, &rs);
	for (size_t i = 0; i < rs.nr; i++)
		present += (rs.r[i].end - rs.r[i].start) / PAGE_SIZE_4K;
	if (!ret && chain_dump_incremental(ctx)) {
		ret = dump_changed(pw, v, &rs);
	} else if (!ret) {
		/* in a chain, a process not tracked since the parent (forked
		 * since, or its tracking gone) is saved in full */
		if (ctx->tree->chain)
			ctx->tree->stats.pages_untracked += present;
		ret = dump_regions(pw, v, &rs);
	}
	ctx->tree->stats.pages_scanned += (v->end - v->start) / PAGE_SIZE_4K;
	ctx->tree->stats.pages_skipped_absent += (v->end - v->start) / PAGE_SIZE_4K - present;
	free(rs.r);
	return ret ? ret : shmem_mark_saved(ctx->tree, v);
}

/* Pages saved by an earlier process are looked for only in a tree. */
static int share_setup(struct page_writer *pw)
{
	struct dump_tree *tree = pw->ctx->tree;

	pw->pfns = malloc(CHUNK_SIZE / PAGE_SIZE_4K * sizeof(*pw->pfns));
	if (!pw->pfns)
		return err_set("out of memory");
	/* not in an incremental dump: its images are merged on restore
	 * (chain.c), which would move the pages another process points to */
	if (tree->nr_procs < 2 || tree->chain)
		return 0;
	if (!tree->saved_pfns && !(tree->saved_pfns = calloc(1, sizeof(*tree->saved_pfns))))
		return err_set("out of memory");
	pw->share = true;
	return 0;
}

/* The target, or its snapshot if it has one (see struct page_source). */
static int source_open(const struct dump_ctx *ctx, struct page_source *src, bool snapshot)
{
	*src = (struct page_source){.pid = snapshot ? snapshot_source_pid(ctx) : ctx->pid,
				    .snapshot = snapshot && ctx->snap};
	src->pm_fd = proc_open_file(src->pid, "pagemap", O_RDONLY);
	src->mem_fd = proc_open_file(src->pid, "mem", O_RDONLY);
	return src->pm_fd < 0 || src->mem_fd < 0 ? -1 : 0;
}

static void source_close(struct page_source *src)
{
	if (src->pm_fd >= 0)
		close(src->pm_fd);
	if (src->mem_fd >= 0)
		close(src->mem_fd);
	src->pm_fd = src->mem_fd = -1;
}

/* One VMA's present pages, into a copy of the snapshot's. */
static int copy_vma(const struct dump_ctx *ctx, struct page_source *src, const VmaEntry *v)
{
	struct snapshot_copy *c = snapshot_copy_add(ctx->snap, v->start);
	struct regions rs = {0};
	int ret = c ? scan_vma(ctx, src, v, &rs) : -1;

	for (size_t i = 0; !ret && i < rs.nr; i++) {
		unsigned char *dst = snapshot_copy_range(c, rs.r[i].start, rs.r[i].end);
		/* shmem is never shared copy-on-write: a pin copies nothing, and
		 * process_vm_readv is the fast way; private pages might be */
		ret = dst ? read_memory(src, v, rs.r[i].start, dst, rs.r[i].end - rs.r[i].start,
					v->kind != VMA_KIND__ANON_SHARED)
			  : -1;
		ctx->tree->stats.pages_copied_frozen +=
		    (rs.r[i].end - rs.r[i].start) / PAGE_SIZE_4K;
	}
	free(rs.r);
	return ret;
}

int pages_copy_frozen(struct dump_ctx *ctx, const MmEntry *mm)
{
	struct page_source src;
	int ret = 0;

	if (!ctx->snap)
		return 0;
	if (source_open(ctx, &src, false))
		ret = -1;
	for (size_t i = 0; !ret && i < mm->n_vmas; i++)
		if (vma_owns_pages(mm->vmas[i]) && snapshot_lacks(mm->vmas[i]))
			ret = copy_vma(ctx, &src, mm->vmas[i]);
	source_close(&src);
	return ret;
}

int pages_dump(struct dump_ctx *ctx, const MmEntry *mm)
{
	struct page_writer pw = {.ctx = ctx};
	PagemapHead head = PAGEMAP_HEAD__INIT;
	int ret = -1;
	unsigned long long t = now_us();

	if (source_open(ctx, &pw.src, true))
		goto out;
	if (image_out_open(&ctx->tree->dir, &pw.map, IMAGE_PAGEMAP, ctx->pid) ||
	    image_out_open(&ctx->tree->dir, &pw.out, IMAGE_PAGES, ctx->pid) || writer_start(&pw))
		goto out;
	pw.buf_file_off = IMG_PAGES_DATA_OFF;
	if (share_setup(&pw))
		goto out;
	head.pages_id = ctx->pid;
	if (img_out_msg(&pw.map, &head.base))
		goto out;
	for (size_t i = 0; i < mm->n_vmas; i++)
		if (vma_owns_pages(mm->vmas[i]) && !shmem_saved(ctx->tree, mm->vmas[i]) &&
		    dump_vma_pages(&pw, mm->vmas[i]))
			goto out;
	if (buf_flush(&pw) || writer_stop(&pw))
		goto out;
	unsigned long long tw = now_us();
	ret = img_out_close(&pw.out);
	if (!ret)
		ret = img_out_close(&pw.map);
	ctx->tree->stats.memwrite_time_us += now_us() - tw;
out:
	if (pw.buf)
		writer_stop(&pw);
	free(pw.pfns);
	img_out_discard(&pw.out);
	img_out_discard(&pw.map);
	source_close(&pw.src);
	ctx->tree->stats.memdump_time_us += now_us() - t;
	return ret;
}

/* ---- restore ---- */

static const VmaEntry *vma_of(const MmEntry *mm, uint64_t addr)
{
	long i = ctx_vma_index(mm, addr);

	return i < 0 ? NULL : mm->vmas[i];
}

/* The process whose image holds a run: ctx itself, or an earlier one
 * whose pages it shared; NULL if the image names a process it cannot use. */
static const struct restore_ctx *run_owner(const struct restore_ctx *ctx, const PagemapEntry *pe)
{
	const struct restore_ctx *owner;

	if (!pe->has_pages_id || pe->pages_id == (uint32_t)ctx->pid)
		return ctx;
	owner = ctx_proc(ctx->tree, pe->pages_id);
	/* validated (and mapped) before ctx: the tree lists it earlier */
	return owner && !owner->zombie && owner->pages_map ? owner : NULL;
}

static bool is_foreign(const struct restore_ctx *ctx, const PagemapEntry *pe)
{
	return run_owner(ctx, pe) != ctx;
}

static int validate_foreign_run(const struct restore_ctx *ctx, const PagemapEntry *pe)
{
	const struct restore_ctx *owner = run_owner(ctx, pe);
	uint64_t len = pe->nr_pages * PAGE_SIZE_4K;
	const VmaEntry *v = vma_of(ctx->mm, pe->vaddr);

	if (!owner)
		return err_set("run at 0x%llx refers to the pages of pid %u, which the checkpoint "
			       "does not hold before pid %d",
			       (unsigned long long)pe->vaddr, pe->pages_id, ctx->pid);
	if (!v || (v->kind != VMA_KIND__ANON_PRIVATE && v->kind != VMA_KIND__FILE_PRIVATE) ||
	    pe->vaddr + len > v->end || pe->offset % PAGE_SIZE_4K ||
	    pe->offset < IMG_PAGES_DATA_OFF || pe->offset + len > owner->pages_size ||
	    pe->offset + len < pe->offset)
		return err_set("shared run at 0x%llx (pages of pid %u) is out of bounds",
			       (unsigned long long)pe->vaddr, pe->pages_id);
	/* every byte of the owner's image is covered by its own verified runs */
	return 0;
}

static int validate_run(const struct restore_ctx *ctx, const PagemapEntry *pe, uint64_t expect_off,
			uint64_t img_size)
{
	uint64_t len = pe->nr_pages * PAGE_SIZE_4K;
	const VmaEntry *v = vma_of(ctx->mm, pe->vaddr);

	if (!pe->nr_pages || pe->nr_pages > (1ULL << 36) || pe->vaddr % PAGE_SIZE_4K)
		return err_set("bad run of %llu pages at 0x%llx", (unsigned long long)pe->nr_pages,
			       (unsigned long long)pe->vaddr);
	if (!v || !vma_owns_pages(v) || pe->vaddr + len > v->end || pe->vaddr + len < pe->vaddr)
		return err_set("run at 0x%llx lies outside the memory it belongs to",
			       (unsigned long long)pe->vaddr);
	if (pe->offset != expect_off || pe->offset + len > img_size)
		return err_set("run at 0x%llx points outside %s (offset %llu)",
			       (unsigned long long)pe->vaddr, image_name(IMAGE_PAGES, ctx->pid).s,
			       (unsigned long long)pe->offset);
	return 0;
}

static int verify_run(const struct restore_ctx *ctx, const PagemapEntry *pe)
{
	uint64_t len = pe->nr_pages * PAGE_SIZE_4K;

	if (img_hash(ctx->pages_map + pe->offset, len) == pe->xxh3)
		return 0;
	return err_set("page data in %s/%s is corrupted: checksum mismatch for 0x%llx-0x%llx of "
		       "pid %d (image offset %llu)",
		       ctx->tree->dir.path, image_name(IMAGE_PAGES, ctx->pid).s,
		       (unsigned long long)pe->vaddr, (unsigned long long)(pe->vaddr + len),
		       ctx->pid, (unsigned long long)pe->offset);
}

/* Every run's checksum, checked on threads while the processes are
 * created and rebuilt (nothing runs before all passed): the runs are cut
 * into chunks of at most VERIFY_CHUNK bytes, which the threads take in
 * turn; the thread that waits for the result helps. */
#define VERIFY_CHUNK (64ULL << 20)

struct verify_chunk {
	const struct restore_ctx *ctx;
	size_t first, end; /* runs [first, end) of ctx */
	long bad;	   /* the first bad run's index, or -1 */
};

struct pages_verify {
	pthread_t threads[MAX_VERIFY_THREADS];
	size_t nr_threads, nr_chunks, next;
	struct verify_chunk *chunks;
};

static void check_chunk(struct verify_chunk *c)
{
	for (size_t i = c->first; i < c->end && c->bad < 0; i++) {
		const PagemapEntry *pe = c->ctx->runs[i];
		/* a run resolved in the parent chain was verified there (chain.c) */
		if (!is_foreign(c->ctx, pe) && !pe->in_parent &&
		    img_hash(c->ctx->pages_map + pe->offset, pe->nr_pages * PAGE_SIZE_4K) !=
			pe->xxh3)
			c->bad = i;
	}
}

static void *verify_worker(void *arg)
{
	struct pages_verify *v = arg;
	size_t k;

	while ((k = __atomic_fetch_add(&v->next, 1, __ATOMIC_RELAXED)) < v->nr_chunks)
		check_chunk(&v->chunks[k]);
	return NULL;
}

static int add_chunks(struct pages_verify *v, const struct restore_ctx *ctx)
{
	for (size_t i = 0; i < ctx->nr_runs;) {
		struct verify_chunk *grown =
		    realloc(v->chunks, (v->nr_chunks + 1) * sizeof(*v->chunks));
		uint64_t bytes = 0;
		size_t first = i;
		if (!grown)
			return err_set("out of memory");
		v->chunks = grown;
		while (i < ctx->nr_runs && (i == first || bytes < VERIFY_CHUNK))
			bytes += ctx->runs[i++]->nr_pages * PAGE_SIZE_4K;
		v->chunks[v->nr_chunks++] = (struct verify_chunk){ctx, first, i, -1};
	}
	return 0;
}

/* Starts checking every process's pages; spare: leave one CPU to the
 * restore itself. */
int pages_verify_start(struct restore_tree *tree, bool spare)
{
	struct pages_verify *v = calloc(1, sizeof(*v));
	long cpus = sysconf(_SC_NPROCESSORS_ONLN) - (spare ? 1 : 0);
	size_t n = cpus < 1 ? 1 : cpus > MAX_VERIFY_THREADS ? MAX_VERIFY_THREADS : cpus;

	if (!v)
		return err_set("out of memory");
	tree->verify = v;
	for (size_t p = 0; p < tree->nr_procs; p++)
		if (!tree->procs[p]->zombie && add_chunks(v, tree->procs[p]))
			return -1;
	while (v->nr_threads < n && v->nr_threads < v->nr_chunks &&
	       !pthread_create(&v->threads[v->nr_threads], NULL, verify_worker, v))
		v->nr_threads++;
	return 0;
}

/* Waits for the checks (helping), and drops them. */
static void verify_join(struct restore_tree *tree)
{
	struct pages_verify *v = tree->verify;

	if (!v)
		return;
	verify_worker(v);
	for (size_t t = 0; t < v->nr_threads; t++)
		pthread_join(v->threads[t], NULL);
	v->nr_threads = 0;
}

/* The verdict: 0 when every run's checksum matched. */
int pages_verify_finish(struct restore_tree *tree)
{
	struct pages_verify *v = tree->verify;
	int ret = 0;

	if (!v)
		return 0;
	verify_join(tree);
	for (size_t k = 0; k < v->nr_chunks && !ret; k++)
		if (v->chunks[k].bad >= 0)
			ret =
			    verify_run(v->chunks[k].ctx, v->chunks[k].ctx->runs[v->chunks[k].bad]);
	pages_verify_stop(tree);
	return ret;
}

/* On a failed restore: the threads are stopped, their verdict unread. */
void pages_verify_stop(struct restore_tree *tree)
{
	if (!tree->verify)
		return;
	__atomic_store_n(&tree->verify->next, tree->verify->nr_chunks, __ATOMIC_RELAXED);
	verify_join(tree);
	free(tree->verify->chunks);
	free(tree->verify);
	tree->verify = NULL;
}

int pages_load(struct restore_ctx *ctx)
{
	return image_load_list(&ctx->tree->dir, IMAGE_PAGEMAP, ctx->pid, NULL, (void ***)&ctx->runs,
			       &ctx->nr_runs);
}

static int map_image(struct restore_ctx *ctx)
{
	void *p =
	    mmap(NULL, ctx->pages_size, PROT_READ, MAP_PRIVATE | MAP_POPULATE, ctx->pages_fd, 0);

	if (p == MAP_FAILED)
		return err_errno("cannot map %s/%s", ctx->tree->dir.path,
				 image_name(IMAGE_PAGES, ctx->pid).s);
	ctx->pages_map = p;
	return 0;
}

int pages_validate(struct restore_ctx *ctx)
{
	uint64_t off = IMG_PAGES_DATA_OFF;

	ctx->pages_fd = image_raw_open(&ctx->tree->dir, IMAGE_PAGES, ctx->pid, &ctx->pages_size);
	if (ctx->pages_fd < 0 || chain_resolve(ctx))
		return -1;
	for (size_t i = 0; i < ctx->nr_runs; i++) {
		const PagemapEntry *prev = i ? ctx->runs[i - 1] : NULL;
		/* in address order: others look runs up by binary search */
		if (prev && ctx->runs[i]->vaddr < prev->vaddr + prev->nr_pages * PAGE_SIZE_4K)
			return err_set("pagemap-%d.img: the run at 0x%llx is out of order",
				       ctx->pid, (unsigned long long)ctx->runs[i]->vaddr);
		if (is_foreign(ctx, ctx->runs[i]))
			continue;
		if (validate_run(ctx, ctx->runs[i], off, ctx->pages_size))
			return err_wrap("pagemap-%d.img", ctx->pid);
		off += ctx->runs[i]->nr_pages * PAGE_SIZE_4K;
	}
	if (off != ctx->pages_size)
		return err_set("%s/%s is %s: %llu bytes, the pagemap accounts for %llu",
			       ctx->tree->dir.path, image_name(IMAGE_PAGES, ctx->pid).s,
			       off > ctx->pages_size ? "truncated" : "too long",
			       (unsigned long long)ctx->pages_size, (unsigned long long)off);
	if (map_image(ctx))
		return -1;
	for (size_t i = 0; i < ctx->nr_runs; i++)
		if (is_foreign(ctx, ctx->runs[i]) && validate_foreign_run(ctx, ctx->runs[i]))
			return -1;
	return 0; /* the checksums: pages_verify_start() */
}

void pages_restore_free(struct restore_ctx *ctx)
{
	for (size_t i = 0; i < ctx->nr_runs; i++)
		protobuf_c_message_free_unpacked(&ctx->runs[i]->base, NULL);
	free(ctx->runs);
	ctx->runs = NULL;
	ctx->nr_runs = 0;
	if (ctx->pages_map)
		munmap((void *)ctx->pages_map, ctx->pages_size);
	ctx->pages_map = NULL;
	if (ctx->pages_fd >= 0)
		close(ctx->pages_fd);
	ctx->pages_fd = -1;
}

/* Writes a batch of runs into the new process from the mapped images. */
static int write_batch(struct restore_ctx *ctx, struct iovec *local, struct iovec *remote, int n,
		       uint64_t bytes)
{
	ssize_t got = process_vm_writev(ctx->child, local, n, remote, n, 0);

	if (got != (ssize_t)bytes)
		return got < 0 ? err_errno("cannot fill the memory of pid %d", ctx->pid)
			       : err_set("short write filling the memory of pid %d: %zd of %llu "
					 "bytes",
					 ctx->pid, got, (unsigned long long)bytes);
	return 0;
}

static bool uffd_fills(const struct restore_ctx *ctx, const PagemapEntry *pe)
{
	const VmaEntry *v = vma_of(ctx->mm, pe->vaddr);

	return v && v->kind == VMA_KIND__ANON_PRIVATE && !v->droppable; /* no uffd there */
}

/* Filled before the process forked, and shared copy-on-write (cow.c). */
static bool staged(const struct restore_ctx *ctx, const PagemapEntry *pe)
{
	return cow_staged_at(ctx, pe->vaddr) != 0;
}

/* Every run userfaultfd does not fill, written from cryo with
 * process_vm_writev, up to BATCH_IOVS runs a call: no stop of the new
 * process, one copy from the image's page cache. */
static int restore_by_writev(struct restore_ctx *ctx, bool skip_uffd)
{
	struct iovec local[BATCH_IOVS], remote[BATCH_IOVS];
	uint64_t bytes = 0;
	int n = 0;

	for (size_t i = 0; i < ctx->nr_runs; i++) {
		const PagemapEntry *pe = ctx->runs[i];
		uint64_t len = pe->nr_pages * PAGE_SIZE_4K;
		if ((skip_uffd && uffd_fills(ctx, pe)) || staged(ctx, pe))
			continue;
		if (n == BATCH_IOVS || (n && bytes + len > BATCH_BYTES)) {
			if (write_batch(ctx, local, remote, n, bytes))
				return -1;
			n = 0;
			bytes = 0;
		}
		local[n] =
		    (struct iovec){(void *)(run_owner(ctx, pe)->pages_map + pe->offset), len};
		remote[n++] = (struct iovec){(void *)pe->vaddr, len};
		bytes += len;
		ctx->tree->stats.pages_restored += pe->nr_pages;
	}
	return n ? write_batch(ctx, local, remote, n, bytes) : 0;
}

/* A userfaultfd of the new process's mm, held by cryo; -1 if unavailable. */
static int take_uffd(struct restore_ctx *ctx)
{
	struct uffdio_api api = {.api = UFFD_API};
	long child_fd;
	int pidfd, fd;

	if (!ctx->tree->kd.userfaultfd || ctx->opts->no_uffd)
		return -1;
	if (inject_syscall(&ctx->inj, SYS_userfaultfd, O_CLOEXEC, 0, 0, 0, 0, 0, &child_fd) ||
	    child_fd < 0)
		return -1;
	pidfd = syscall(SYS_pidfd_open, ctx->child, 0);
	fd = pidfd < 0 ? -1 : syscall(SYS_pidfd_getfd, pidfd, child_fd, 0);
	if (pidfd >= 0)
		close(pidfd);
	inject_call(&ctx->inj, "closing the userfaultfd", SYS_close, child_fd, 0, 0, 0, 0, 0, NULL);
	if (fd >= 0 && ioctl(fd, UFFDIO_API, &api)) {
		close(fd);
		fd = -1;
	}
	return fd;
}

static int uffd_register_vmas(struct restore_ctx *ctx, int uffd)
{
	for (size_t i = 0; i < ctx->mm->n_vmas; i++) {
		const VmaEntry *v = ctx->mm->vmas[i];
		struct uffdio_register reg = {
		    .range = {.start = v->start, .len = v->end - v->start},
		    .mode = UFFDIO_REGISTER_MODE_MISSING,
		};
		if (v->kind == VMA_KIND__ANON_PRIVATE && !v->droppable &&
		    !cow_staged_at(ctx, v->start) && ioctl(uffd, UFFDIO_REGISTER, &reg))
			return err_errno("cannot register 0x%llx-0x%llx with userfaultfd",
					 (unsigned long long)v->start, (unsigned long long)v->end);
	}
	return 0;
}

static int uffd_copy_run(struct restore_ctx *ctx, int uffd, const PagemapEntry *pe)
{
	uint64_t len = pe->nr_pages * PAGE_SIZE_4K, done = 0;

	while (done < len) {
		struct uffdio_copy cp = {
		    .dst = pe->vaddr + done,
		    .src = (uintptr_t)(run_owner(ctx, pe)->pages_map + pe->offset + done),
		    .len = len - done,
		};
		if (ioctl(uffd, UFFDIO_COPY, &cp) && errno != EAGAIN)
			return err_errno("cannot fill 0x%llx of pid %d", (unsigned long long)cp.dst,
					 ctx->pid);
		if (cp.copy <= 0)
			return err_set("cannot fill 0x%llx of pid %d: no progress",
				       (unsigned long long)cp.dst, ctx->pid);
		done += cp.copy;
	}
	ctx->tree->stats.pages_restored += pe->nr_pages;
	return 0;
}

static int restore_by_uffd(struct restore_ctx *ctx, int uffd)
{
	if (uffd_register_vmas(ctx, uffd))
		return -1;
	for (size_t i = 0; i < ctx->nr_runs; i++)
		if (uffd_fills(ctx, ctx->runs[i]) && !staged(ctx, ctx->runs[i]) &&
		    uffd_copy_run(ctx, uffd, ctx->runs[i]))
			return -1;
	return 0;
}

int pages_restore(struct restore_ctx *ctx)
{
	int uffd = take_uffd(ctx), ret;

	if (uffd < 0) {
		pr_debug("pid %d: memory filled without userfaultfd (process_vm_writev)%s",
			 ctx->pid, ctx->opts->no_uffd ? ", as --no-uffd asks" : "");
		return restore_by_writev(ctx, false);
	}
	pr_debug("pid %d: memory filled through userfaultfd (UFFDIO_COPY)", ctx->pid);
	/* closing the last reference unregisters every range again */
	ret = restore_by_uffd(ctx, uffd);
	close(uffd);
	return ret ? ret : restore_by_writev(ctx, true);
}
