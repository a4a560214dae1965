/*
 * pages: the contents of private and anonymous-shared memory.
 *
 * Dump: for each VMA that owns memory (anonymous, or private pages a process
 * wrote over a file), the pages that exist are found in bulk with
 * PAGEMAP_SCAN (or /proc/PID/pagemap on older kernels; SEEK_DATA on the shmem
 * object for shared anonymous memory), read with process_vm_readv in runs of
 * up to 32 MiB, and written to pages-1.img. Never-touched pages, clean file
 * pages and anonymous pages that hold only zeros are not written: on restore
 * they read back the same without being stored. Each run of pages that is
 * contiguous in memory and in the image gets a pagemap entry with its XXH3.
 *
 * Restore: every run's checksum is verified (the image is mapped, hashed in
 * place) before anything is created; then the data goes straight from the
 * image into the new process by preadv calls injected into it, up to 1024
 * runs per call: one copy, kernel to user.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

#include "context.h"
#include "infra/log.h"
#include "infra/uapi.h"

#define CHUNK_SIZE   (32ULL << 20)
#define SCAN_VEC     1024
#define BATCH_IOVS   1024
#define BATCH_BYTES  (1ULL << 30)
#define PAGES_IMG    "pages-1.img"
#define PM_PRESENT   (1ULL << 63)
#define PM_SWAPPED   (1ULL << 62)
#define PM_FILE	     (1ULL << 61)

struct region {
	uint64_t start, end;
};

struct regions {
	size_t nr, cap;
	struct region *r;
};

/* Collects page data into a buffer and cuts it into checksummed runs. */
struct page_writer {
	struct dump_ctx *ctx;
	struct img_out out;
	unsigned char *buf;
	size_t used;
	uint64_t buf_file_off; /* image offset of buf[0] */
	size_t run_start;      /* buffer offset where the open run begins */
	uint64_t run_vaddr, run_pages;
	struct img_out map;
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
					 (unsigned long long)arg.start, (unsigned long long)arg.end);
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
	char path[96];
	uint64_t len = v->end - v->start;
	off_t off = v->pgoff, end = v->pgoff + len;
	int fd;

	snprintf(path, sizeof(path), "/proc/%d/map_files/%llx-%llx", pid,
		 (unsigned long long)v->start, (unsigned long long)v->end);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return err_errno("cannot open shared memory at 0x%llx of pid %d",
				 (unsigned long long)v->start, pid);
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
	pw->ctx->stats.pages_written += pe.nr_pages;
	return img_out_msg(&pw->map, &pe.base);
}

static int buf_flush(struct page_writer *pw)
{
	unsigned long long t = now_us();

	if (run_close(pw) || img_out_raw(&pw->out, pw->buf, pw->used))
		return -1;
	pw->buf_file_off += pw->used;
	pw->used = 0;
	pw->ctx->stats.memwrite_time_us += now_us() - t;
	return 0;
}

static int read_memory(struct dump_ctx *ctx, const VmaEntry *v, uint64_t addr, void *dst,
		       size_t len, int mem_fd)
{
	ssize_t n;

	if (v->prot & PROT_READ) {
		struct iovec local = {.iov_base = dst, .iov_len = len};
		struct iovec remote = {.iov_base = (void *)addr, .iov_len = len};
		n = process_vm_readv(ctx->pid, &local, 1, &remote, 1, 0);
	} else {
		/* not readable by the process itself: /proc/PID/mem reads it anyway */
		n = pread(mem_fd, dst, len, addr);
	}
	if (n != (ssize_t)len)
		return err_errno("cannot read memory 0x%llx-0x%llx of pid %d",
				 (unsigned long long)addr, (unsigned long long)(addr + len),
				 ctx->pid);
	return 0;
}

/* Keeps the just-read page at buf[used] (or drops it if zero) and extends the run. */
static void take_page(struct page_writer *pw, uint64_t vaddr, bool skip_zero)
{
	unsigned char *page = pw->buf + pw->used;

	if (skip_zero && page_is_zero(page)) {
		run_close(pw);
		pw->ctx->stats.pages_skipped_zero++;
		return;
	}
	if (pw->run_pages && pw->run_vaddr + pw->run_pages * PAGE_SIZE_4K != vaddr)
		run_close(pw);
	if (!pw->run_pages) {
		pw->run_vaddr = vaddr;
		pw->run_start = pw->used;
	}
	pw->run_pages++;
	pw->used += PAGE_SIZE_4K;
}

static int dump_region(struct page_writer *pw, const VmaEntry *v, struct region r, int mem_fd)
{
	bool skip_zero = v->kind != VMA_KIND__FILE_PRIVATE;

	for (uint64_t addr = r.start; addr < r.end;) {
		size_t room = CHUNK_SIZE - pw->used;
		size_t len = r.end - addr < room ? r.end - addr : room;
		if (read_memory(pw->ctx, v, addr, pw->buf + pw->used, len, mem_fd))
			return -1;
		/* pages are compacted in place as zero pages are dropped */
		unsigned char *src = pw->buf + pw->used;
		for (size_t off = 0; off < len; off += PAGE_SIZE_4K) {
			if (src + off != pw->buf + pw->used)
				memmove(pw->buf + pw->used, src + off, PAGE_SIZE_4K);
			take_page(pw, addr + off, skip_zero);
		}
		addr += len;
		if (pw->used == CHUNK_SIZE && buf_flush(pw))
			return -1;
	}
	return run_close(pw);
}

static int dump_vma_pages(struct page_writer *pw, const VmaEntry *v, int pm_fd, int mem_fd)
{
	struct dump_ctx *ctx = pw->ctx;
	struct regions rs = {0};
	uint64_t present = 0;
	int ret;

	if (v->kind == VMA_KIND__ANON_SHARED)
		ret = scan_shmem(ctx->pid, v, &rs);
	else if (ctx->kd.pagemap_scan)
		ret = scan_anon_pagemap_scan(pm_fd, v, &rs);
	else
		ret = scan_anon_pagemap_read(pm_fd, v, &rs);
	for (size_t i = 0; !ret && i < rs.nr; i++) {
		present += (rs.r[i].end - rs.r[i].start) / PAGE_SIZE_4K;
		ret = dump_region(pw, v, rs.r[i], mem_fd);
	}
	ctx->stats.pages_scanned += (v->end - v->start) / PAGE_SIZE_4K;
	ctx->stats.pages_skipped_absent += (v->end - v->start) / PAGE_SIZE_4K - present;
	free(rs.r);
	return ret;
}

static int open_proc_fd(pid_t pid, const char *name)
{
	char path[64];
	int fd;

	snprintf(path, sizeof(path), "/proc/%d/%s", pid, name);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return err_errno("cannot open %s", path);
	return fd;
}

int pages_dump(struct dump_ctx *ctx, const MmEntry *mm)
{
	struct page_writer pw = {.ctx = ctx};
	PagemapHead head = PAGEMAP_HEAD__INIT;
	char name[64];
	int pm_fd, mem_fd, ret = -1;
	unsigned long long t = now_us();

	pm_fd = open_proc_fd(ctx->pid, "pagemap");
	mem_fd = open_proc_fd(ctx->pid, "mem");
	pw.buf = mmap(NULL, CHUNK_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (pm_fd < 0 || mem_fd < 0)
		goto out;
	if (pw.buf == MAP_FAILED) {
		pw.buf = NULL;
		err_errno("cannot allocate the page buffer");
		goto out;
	}
	snprintf(name, sizeof(name), "pagemap-%d.img", ctx->pid);
	if (img_out_open(&ctx->dir, &pw.map, name, IMG_PAGEMAP) ||
	    img_out_open(&ctx->dir, &pw.out, PAGES_IMG, IMG_PAGES))
		goto out;
	pw.buf_file_off = IMG_PAGES_DATA_OFF;
	head.pages_id = 1;
	if (img_out_msg(&pw.map, &head.base))
		goto out;
	for (size_t i = 0; i < mm->n_vmas; i++)
		if (vma_owns_pages(mm->vmas[i]) && dump_vma_pages(&pw, mm->vmas[i], pm_fd, mem_fd))
			goto out;
	if (buf_flush(&pw))
		goto out;
	unsigned long long tw = now_us();
	ret = img_out_close(&pw.out);
	if (!ret)
		ret = img_out_close(&pw.map);
	ctx->stats.memwrite_time_us += now_us() - tw;
out:
	img_out_discard(&pw.out);
	img_out_discard(&pw.map);
	if (pw.buf)
		munmap(pw.buf, CHUNK_SIZE);
	if (pm_fd >= 0)
		close(pm_fd);
	if (mem_fd >= 0)
		close(mem_fd);
	ctx->stats.memdump_time_us += now_us() - t;
	return ret;
}

/* ---- restore ---- */

static const VmaEntry *vma_of(const MmEntry *mm, uint64_t addr)
{
	for (size_t i = 0; i < mm->n_vmas; i++)
		if (addr >= mm->vmas[i]->start && addr < mm->vmas[i]->end)
			return mm->vmas[i];
	return NULL;
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
			       (unsigned long long)pe->vaddr, PAGES_IMG,
			       (unsigned long long)pe->offset);
	return 0;
}

/* Hashes every run straight from a mapping of the image, a window at a time. */
static int verify_checksums(struct restore_ctx *ctx, uint64_t img_size)
{
	const uint64_t window = 256ULL << 20;
	unsigned char *p = NULL;
	uint64_t wbase = 0, wlen = 0;
	int ret = 0;

	for (size_t i = 0; i < ctx->nr_runs && !ret; i++) {
		const PagemapEntry *pe = ctx->runs[i];
		uint64_t rlen = pe->nr_pages * PAGE_SIZE_4K;
		if (!p || pe->offset + rlen > wbase + wlen) {
			if (p)
				munmap(p, wlen);
			wbase = pe->offset;
			wlen = img_size - wbase < window ? img_size - wbase : window;
			if (wlen < rlen)
				wlen = rlen;
			p = mmap(NULL, wlen, PROT_READ, MAP_PRIVATE | MAP_POPULATE, ctx->pages_fd,
				 wbase);
			if (p == MAP_FAILED)
				return err_errno("cannot map %s/%s", ctx->dir.path, PAGES_IMG);
		}
		if (img_hash(p + (pe->offset - wbase), rlen) != pe->xxh3)
			ret = err_set("page data in %s/%s is corrupted: checksum mismatch for "
				      "0x%llx-0x%llx of pid %d (image offset %llu)",
				      ctx->dir.path, PAGES_IMG, (unsigned long long)pe->vaddr,
				      (unsigned long long)(pe->vaddr + rlen), ctx->pid,
				      (unsigned long long)pe->offset);
	}
	if (p)
		munmap(p, wlen);
	return ret;
}

int pages_validate(struct restore_ctx *ctx)
{
	uint64_t img_size, off = IMG_PAGES_DATA_OFF;

	ctx->pages_fd = img_raw_open(&ctx->dir, PAGES_IMG, IMG_PAGES, &img_size);
	if (ctx->pages_fd < 0)
		return -1;
	for (size_t i = 0; i < ctx->nr_runs; i++) {
		if (validate_run(ctx, ctx->runs[i], off, img_size))
			return err_wrap("pagemap-%d.img", ctx->pid);
		off += ctx->runs[i]->nr_pages * PAGE_SIZE_4K;
	}
	if (off != img_size)
		return err_set("%s/%s is %s: %llu bytes, the pagemap accounts for %llu",
			       ctx->dir.path, PAGES_IMG, off > img_size ? "truncated" : "too long",
			       (unsigned long long)img_size, (unsigned long long)off);
	return verify_checksums(ctx, img_size);
}

static int preadv_batch(struct restore_ctx *ctx, struct iovec *iov, int n, uint64_t off,
			uint64_t bytes)
{
	uint64_t addr = restore_scratch_put(ctx, 0, iov, n * sizeof(*iov));
	long got;

	if (!addr || inject_call(&ctx->inj, "filling memory from the pages image", SYS_preadv,
				     ctx->svc_base + SVC_PAGES, addr, n, off, 0, 0, &got))
		return -1;
	if ((uint64_t)got != bytes)
		return err_set("short read filling memory of pid %d: %ld of %llu bytes", ctx->pid,
			       got, (unsigned long long)bytes);
	return 0;
}

int pages_restore(struct restore_ctx *ctx)
{
	struct iovec iov[BATCH_IOVS];
	uint64_t batch_off = 0, batch_bytes = 0;
	int n = 0;

	for (size_t i = 0; i < ctx->nr_runs; i++) {
		const PagemapEntry *pe = ctx->runs[i];
		uint64_t len = pe->nr_pages * PAGE_SIZE_4K;
		if (n == BATCH_IOVS || (n && batch_bytes + len > BATCH_BYTES)) {
			if (preadv_batch(ctx, iov, n, batch_off, batch_bytes))
				return -1;
			n = 0;
		}
		if (!n) {
			batch_off = pe->offset;
			batch_bytes = 0;
		}
		iov[n++] = (struct iovec){.iov_base = (void *)pe->vaddr, .iov_len = len};
		batch_bytes += len;
		ctx->stats.pages_restored += pe->nr_pages;
	}
	return n ? preadv_batch(ctx, iov, n, batch_off, batch_bytes) : 0;
}
