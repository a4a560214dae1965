/*
 * mm: the address space's layout.
 *
 * Dump: every VMA from /proc/PID/smaps is classified (anonymous or file,
 * private or shared, vDSO family, heap, stack) and written to mm-PID.img with
 * the mm boundaries from /proc/PID/stat, the brk (read by an injected brk(0)),
 * the auxv and the executable. Page contents are pages.c's business.
 *
 * Restore: the new process, still running cryo's code, opens the file of
 * every file-backed VMA and the executable on service fds and maps the
 * trampoline (a page whose first bytes are `syscall`, followed by scratch
 * space) where neither cryo nor the target has anything. The restorer then,
 * by injected syscalls, unmaps everything cryo left there, moves the vDSO and
 * its data pages to the target's addresses, maps every target VMA (writable
 * for as long as pages.c fills it), and finally sets the final protections,
 * the madvise flags and the mm fields with PR_SET_MM_MAP.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <linux/prctl.h>

#include "aio.h"
#include "cow.h"
#include "images.h"
#include "mm.h"
#include "infra/inject.h"
#include "share.h"
#include "shmem.h"
#include "sysvshm.h"
#include "infra/log.h"

#ifndef MAP_DROPPABLE
#define MAP_DROPPABLE 0x08
#endif
#ifndef MCL_ONFAULT
#define MCL_ONFAULT 4
#endif
#ifndef MLOCK_ONFAULT
#define MLOCK_ONFAULT 1
#endif
#ifndef SYS_mseal
#define SYS_mseal 462
#endif

#ifndef PR_SET_VMA
#define PR_SET_VMA	     0x53564d41
#define PR_SET_VMA_ANON_NAME 0
#endif

static const struct {
	const char *flag;
	int advice;
} vma_advice[] = {
    {"dd", MADV_DONTDUMP},   {"dc", MADV_DONTFORK},  {"wf", MADV_WIPEONFORK}, {"hg", MADV_HUGEPAGE},
    {"nh", MADV_NOHUGEPAGE}, {"mg", MADV_MERGEABLE}, {"sr", MADV_SEQUENTIAL}, {"rr", MADV_RANDOM},
};

/* ---- dump ---- */

static bool ends_with(const char *s, const char *suffix)
{
	size_t ls = strlen(s), lx = strlen(suffix);

	return ls >= lx && !strcmp(s + ls - lx, suffix);
}

static int classify_special(const struct proc_vma *pv, VmaEntry *v)
{
	static const struct {
		const char *name;
		VmaKind kind;
	} specials[] = {
	    {"[vdso]", VMA_KIND__VDSO},
	    {"[vvar]", VMA_KIND__VVAR},
	    {"[vvar_vclock]", VMA_KIND__VVAR_VCLOCK},
	    {"[vsyscall]", VMA_KIND__VSYSCALL},
	};

	for (size_t i = 0; i < sizeof(specials) / sizeof(specials[0]); i++) {
		if (!strcmp(pv->path, specials[i].name)) {
			v->kind = specials[i].kind;
			return 1;
		}
	}
	return 0;
}

/* A memfd mapped shared is shmem like MAP_SHARED|MAP_ANONYMOUS memory: its
 * pages are saved with the mapping, and it is made again as a memfd of the
 * same name. A write seal would forbid mapping it again writable: refused.
 * Other seals come back with a description of it (shmem.c). */
static int classify_memfd(pid_t pid, const struct proc_vma *pv, VmaEntry *v)
{
	int fd = proc_open_map_file(pid, pv->start, pv->end, O_RDONLY), seals;

	if (fd < 0)
		return err_wrap("the memfd mapped by pid %d", pid);
	seals = fcntl(fd, F_GET_SEALS);
	close(fd);
	if (seals > 0 && (seals & (F_SEAL_WRITE | F_SEAL_FUTURE_WRITE)))
		return err_set("pid %d maps a memfd sealed against writes at 0x%llx (%s): not "
			       "supported yet",
			       pid, (unsigned long long)pv->start, pv->path);
	v->kind = VMA_KIND__ANON_SHARED;
	v->has_shmem_id = true;
	v->shmem_id = pv->ino;
	/* F_SEAL_SEAL alone: made without MFD_ALLOW_SEALING */
	v->has_memfd_sealable = true;
	v->memfd_sealable = seals == 0;
	/* "/memfd:NAME (deleted)" */
	v->memfd_name = strndup(pv->path + 7, strlen(pv->path) - 7 - strlen(" (deleted)"));
	return v->memfd_name ? 0 : err_set("out of memory");
}

static int classify_file(pid_t pid, const struct proc_vma *pv, VmaEntry *v)
{
	char link[96];
	struct stat st;

	/* MAP_SHARED|MAP_ANONYMOUS shows as a deleted /dev/zero on shmem */
	if (pv->shared && !strcmp(pv->path, "/dev/zero (deleted)")) {
		v->kind = VMA_KIND__ANON_SHARED;
		v->has_shmem_id = true;
		v->shmem_id = pv->ino;
		return 0;
	}
	if (pv->shared && !strncmp(pv->path, "/memfd:", 7) && ends_with(pv->path, " (deleted)"))
		return classify_memfd(pid, pv, v);
	if (pv->shared && !strncmp(pv->path, "/SYSV", 5)) {
		/* its contents are the segment's own: sysvshm.c saves them once */
		v->kind = VMA_KIND__SYSV_SHM;
		v->has_shmem_id = true;
		v->shmem_id = pv->ino;
		return 0;
	}
	if (aio_is_ring(pv))
		return aio_dump_ring(pid, pv, v);
	v->kind = pv->shared ? VMA_KIND__FILE_SHARED : VMA_KIND__FILE_PRIVATE;
	v->path = strdup(pv->path);
	if (ends_with(pv->path, " (deleted)")) {
		/* mapped through the description a process has open (tree.c) */
		v->has_deleted_ino = true;
		v->deleted_ino = pv->ino;
		return v->path ? 0 : err_set("out of memory");
	}
	snprintf(link, sizeof(link), "/proc/%d/map_files/%llx-%llx", pid,
		 (unsigned long long)pv->start, (unsigned long long)pv->end);
	if (stat(link, &st))
		return err_errno("cannot stat the file mapped at 0x%llx in pid %d (%s)",
				 (unsigned long long)pv->start, pid, pv->path);
	v->has_file_size = v->has_file_mtime_ns = true;
	v->file_size = st.st_size;
	v->file_mtime_ns = st.st_mtim.tv_sec * 1000000000LL + st.st_mtim.tv_nsec;
	return 0;
}

static int classify_vma(pid_t pid, const struct proc_vma *pv, VmaEntry *v)
{
	v->kind = pv->shared ? VMA_KIND__ANON_SHARED : VMA_KIND__ANON_PRIVATE;
	if (!pv->path)
		return 0;
	if (pv->path[0] == '/')
		return classify_file(pid, pv, v);
	if (classify_special(pv, v))
		return 0;
	if (!strncmp(pv->path, "[anon:", 6) || !strncmp(pv->path, "[anon_shmem:", 12)) {
		const char *name = strchr(pv->path, ':') + 1;
		v->anon_name = strndup(name, strlen(name) - 1);
		return 0;
	}
	if (!strcmp(pv->path, "[heap]") || !strncmp(pv->path, "[stack", 6)) {
		v->path = strdup(pv->path);
		return 0;
	}
	return err_set("pid %d has a mapping of an unsupported kind at 0x%llx: %s", pid,
		       (unsigned long long)pv->start, pv->path);
}

/* The flags mmap, mlock and mseal set, which madvise cannot. */
static void vma_dump_lock_flags(const struct proc_vma *pv, VmaEntry *v)
{
	v->has_mlock = v->has_noreserve = v->has_droppable = v->has_sealed = true;
	v->mlock = proc_vma_has_flag(pv, "lo") ? 1 + proc_vma_has_flag(pv, "lf") : 0;
	v->droppable = proc_vma_has_flag(pv, "dp");
	v->noreserve = proc_vma_has_flag(pv, "nr") && !v->droppable;
	v->sealed = proc_vma_has_flag(pv, "sl");
}

static int vma_dump(pid_t pid, const struct proc_vma *pv, VmaEntry *v)
{
	vma_entry__init(v);
	v->start = pv->start;
	v->end = pv->end;
	v->prot = pv->prot;
	v->pgoff = pv->pgoff * 0; /* set below for file mappings */
	v->growsdown = proc_vma_has_flag(pv, "gd");
	v->may_write = proc_vma_has_flag(pv, "mw");
	if (classify_vma(pid, pv, v))
		return -1;
	if (v->kind == VMA_KIND__FILE_PRIVATE || v->kind == VMA_KIND__FILE_SHARED ||
	    v->kind == VMA_KIND__ANON_SHARED)
		v->pgoff = pv->pgoff;
	v->advice = calloc(sizeof(vma_advice) / sizeof(vma_advice[0]), sizeof(char *));
	for (size_t i = 0; v->advice && i < sizeof(vma_advice) / sizeof(vma_advice[0]); i++)
		if (proc_vma_has_flag(pv, vma_advice[i].flag))
			v->advice[v->n_advice++] = strdup(vma_advice[i].flag);
	vma_dump_lock_flags(pv, v);
	v->has_pkey = pv->pkey != 0;
	v->pkey = pv->pkey;
	return 0;
}

static int read_auxv(pid_t pid, MmEntry *mm)
{
	char *buf;
	size_t len;

	if (proc_read(pid, "auxv", &buf, &len))
		return -1;
	mm->n_auxv = len / sizeof(uint64_t);
	mm->auxv = (uint64_t *)buf;
	return 0;
}

static int read_brk(struct dump_ctx *ctx, uint64_t *brk)
{
	long ret;

	if (inject_syscall(&ctx->inj, SYS_brk, 0, 0, 0, 0, 0, 0, &ret))
		return -1;
	*brk = ret;
	return 0;
}

static int page_present(pid_t pid, uint64_t addr, bool *present)
{
	char path[64];
	uint64_t pm = 0;
	int fd;

	snprintf(path, sizeof(path), "/proc/%d/pagemap", pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0 || pread(fd, &pm, sizeof(pm), addr / PAGE_SIZE_4K * sizeof(pm)) != sizeof(pm)) {
		if (fd >= 0)
			close(fd);
		return err_errno("cannot read the pagemap of pid %d", pid);
	}
	close(fd);
	*present = pm >> 63;
	return 0;
}

/* mm->def_flags, which mlockall(MCL_FUTURE) sets and no file shows: a page
 * mapped by an injected mmap is locked (VmLck grows) if it holds VM_LOCKED,
 * and stays absent if it also holds VM_LOCKONFAULT. Unmapped at once. */
static int probe_mlockall(struct dump_ctx *ctx, uint32_t *mcl)
{
	long before, after, addr;
	bool present = false;
	int ret;

	*mcl = 0;
	if (proc_read_vmlck(ctx->pid, &before) ||
	    inject_call(&ctx->inj, "mapping a probe page", SYS_mmap, 0, PAGE_SIZE_4K,
			PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0, &addr))
		return -1;
	ret = proc_read_vmlck(ctx->pid, &after);
	if (!ret && after > before)
		ret = page_present(ctx->pid, addr, &present);
	if (!ret && after > before)
		*mcl = MCL_FUTURE | (present ? 0 : MCL_ONFAULT);
	if (inject_call(&ctx->inj, "unmapping the probe page", SYS_munmap, addr, PAGE_SIZE_4K, 0, 0,
			0, 0, NULL))
		return -1;
	return ret;
}

int mm_dump(struct dump_ctx *ctx, MmEntry *mm)
{
	char exe[4096];

	mm_entry__init(mm);
	mm->start_code = ctx->stat.start_code;
	mm->end_code = ctx->stat.end_code;
	mm->start_data = ctx->stat.start_data;
	mm->end_data = ctx->stat.end_data;
	mm->start_brk = ctx->stat.start_brk;
	mm->start_stack = ctx->stat.start_stack;
	mm->arg_start = ctx->stat.arg_start;
	mm->arg_end = ctx->stat.arg_end;
	mm->env_start = ctx->stat.env_start;
	mm->env_end = ctx->stat.env_end;
	mm->has_mlockall = true;
	if (read_brk(ctx, &mm->brk) || read_auxv(ctx->pid, mm) ||
	    probe_mlockall(ctx, &mm->mlockall))
		return -1;
	if (proc_readlink(ctx->pid, "exe", exe, sizeof(exe)))
		return -1;
	mm->exe_path = strdup(exe);
	mm->vmas = calloc(ctx->vmas.nr, sizeof(*mm->vmas));
	if (!mm->vmas || !mm->exe_path)
		return err_set("out of memory dumping mm of pid %d", ctx->pid);
	for (int i = 0; i < ctx->vmas.nr; i++) {
		VmaEntry *v = calloc(1, sizeof(*v));
		if (!v)
			return err_set("out of memory dumping mm of pid %d", ctx->pid);
		mm->vmas[mm->n_vmas++] = v;
		if (vma_dump(ctx->pid, &ctx->vmas.v[i], v))
			return -1;
	}
	return 0;
}

/* ---- restore: validation ---- */

static bool is_vdso_family(VmaKind k)
{
	return k == VMA_KIND__VDSO || k == VMA_KIND__VVAR || k == VMA_KIND__VVAR_VCLOCK;
}

static bool is_file_kind(VmaKind k)
{
	return k == VMA_KIND__FILE_PRIVATE || k == VMA_KIND__FILE_SHARED;
}

static int validate_vma(const struct restore_ctx *ctx, const VmaEntry *v, const VmaEntry *prev)
{
	if (v->start >= v->end || v->start % PAGE_SIZE_4K || v->end % PAGE_SIZE_4K ||
	    (v->end > ctx->tree->kd.task_size && v->kind != VMA_KIND__VSYSCALL))
		return err_set("bad VMA 0x%llx-0x%llx", (unsigned long long)v->start,
			       (unsigned long long)v->end);
	if (prev && v->start < prev->end)
		return err_set("VMA 0x%llx-0x%llx overlaps the one before it",
			       (unsigned long long)v->start, (unsigned long long)v->end);
	if (v->prot & ~(PROT_READ | PROT_WRITE | PROT_EXEC))
		return err_set("VMA 0x%llx has bad protection 0x%x", (unsigned long long)v->start,
			       v->prot);
	if (is_file_kind(v->kind) && (!v->path || v->path[0] != '/' || v->pgoff % PAGE_SIZE_4K))
		return err_set("file VMA 0x%llx has no valid path or offset",
			       (unsigned long long)v->start);
	return 0;
}

static int validate_mapped_file(const VmaEntry *v)
{
	struct stat st;

	if (stat(v->path, &st))
		return err_errno("file %s, mapped at 0x%llx, is not available", v->path,
				 (unsigned long long)v->start);
	if (v->kind != VMA_KIND__FILE_PRIVATE)
		return 0;
	if ((uint64_t)st.st_size != v->file_size ||
	    st.st_mtim.tv_sec * 1000000000LL + st.st_mtim.tv_nsec != v->file_mtime_ns)
		return err_set("file %s, mapped at 0x%llx, changed since the checkpoint "
			       "(size or modification time differ)",
			       v->path, (unsigned long long)v->start);
	return 0;
}

/* The vDSO pages come from the running kernel: they must have the same shape. */
static int validate_vdso(struct restore_ctx *ctx)
{
	struct proc_vmas self;
	int ret = 0;

	if (proc_read_vmas(0, &self))
		return -1;
	for (size_t i = 0; i < ctx->mm->n_vmas && !ret; i++) {
		const VmaEntry *v = ctx->mm->vmas[i];
		const char *name = v->kind == VMA_KIND__VDSO	      ? "[vdso]"
				   : v->kind == VMA_KIND__VVAR	      ? "[vvar]"
				   : v->kind == VMA_KIND__VVAR_VCLOCK ? "[vvar_vclock]"
								      : NULL;
		bool found = false;
		if (!name)
			continue;
		for (int j = 0; j < self.nr; j++)
			if (self.v[j].path && !strcmp(self.v[j].path, name) &&
			    self.v[j].end - self.v[j].start == v->end - v->start)
				found = true;
		if (!found)
			ret = err_set("the %s of this kernel differs from the checkpoint's "
				      "(checkpoint taken on kernel %s)",
				      name, ctx->tree->dir.inventory->kernel_release);
	}
	proc_vmas_free(&self);
	return ret;
}

int mm_write(struct dump_ctx *ctx)
{
	return image_write_one(&ctx->tree->dir, IMAGE_MM, ctx->pid, &ctx->mm->base);
}

int mm_load(struct restore_ctx *ctx)
{
	return image_load_one(&ctx->tree->dir, IMAGE_MM, ctx->pid, (ProtobufCMessage **)&ctx->mm);
}

int mm_validate(struct restore_ctx *ctx)
{
	const MmEntry *mm = ctx->mm;

	for (size_t i = 0; i < mm->n_vmas; i++)
		if (validate_vma(ctx, mm->vmas[i], i ? mm->vmas[i - 1] : NULL))
			return err_wrap("mm-%d.img", ctx->pid);
	if (mm->n_auxv % 2 || mm->n_auxv > 2 * 64)
		return err_set("mm-%d.img: bad auxv of %zu words", ctx->pid, mm->n_auxv);
	for (size_t i = 0; i < mm->n_vmas; i++)
		if (is_file_kind(mm->vmas[i]->kind) && !mm->vmas[i]->has_file_id &&
		    validate_mapped_file(mm->vmas[i]))
			return -1;
	if (access(mm->exe_path, X_OK))
		return err_errno("executable %s is not available", mm->exe_path);
	return validate_vdso(ctx);
}

/* ---- restore: in the child ---- */

/* Same file, same kind of mapping: one fd serves both VMAs. */
static int same_file_vma(const struct restore_ctx *ctx, size_t i)
{
	const VmaEntry *v = ctx->mm->vmas[i];

	for (size_t j = 0; j < i; j++) {
		const VmaEntry *w = ctx->mm->vmas[j];
		if (ctx->vma_fd[j] >= 0 && w->path && v->path && !strcmp(w->path, v->path) &&
		    w->kind == v->kind && w->may_write == v->may_write)
			return ctx->vma_fd[j];
	}
	return -1;
}

/* Is [start, start+len) clear of every target VMA? */
static bool target_range_free(const MmEntry *mm, uint64_t start, uint64_t len)
{
	for (size_t i = 0; i < mm->n_vmas; i++)
		if (start < mm->vmas[i]->end && mm->vmas[i]->start < start + len)
			return false;
	return true;
}

static bool own_range_free(const struct proc_vmas *self, uint64_t start, uint64_t len)
{
	for (int i = 0; i < self->nr; i++)
		if (start < self->v[i].end && self->v[i].start < start + len)
			return false;
	return true;
}

/* The trampoline goes where neither the target nor cryo (whose layout the
 * new process inherits) has anything, 1 MiB clear of both: candidates from
 * 1 GiB up in 1 GiB steps. */
static int plan_trampoline(struct restore_ctx *ctx)
{
	const uint64_t margin = 1 << 20;
	struct proc_vmas self;

	if (proc_read_vmas(0, &self))
		return -1;
	for (uint64_t a = 1ULL << 30; a + TRAMP_LEN + margin < ctx->tree->kd.task_size;
	     a += 1ULL << 30) {
		if (target_range_free(ctx->mm, a - margin, TRAMP_LEN + 2 * margin) &&
		    own_range_free(&self, a - margin, TRAMP_LEN + 2 * margin) &&
		    !cow_in_region(ctx->tree, a - margin, TRAMP_LEN + 2 * margin)) {
			ctx->tramp = a;
			ctx->tramp_len = TRAMP_LEN;
			proc_vmas_free(&self);
			return 0;
		}
	}
	proc_vmas_free(&self);
	return err_set("no free address range for the restorer's trampoline");
}

/* Before the new process exists: which service fd each mapped file gets,
 * and where the trampoline goes; the new process carries the plan out. */
int mm_restore_plan(struct restore_ctx *ctx)
{
	int next;

	if (share_slots(ctx, &next))
		return -1;
	ctx->vma_fd = calloc(ctx->mm->n_vmas + 1, sizeof(int));
	if (!ctx->vma_fd)
		return err_set("out of memory");
	for (size_t i = 0; i < ctx->mm->n_vmas; i++) {
		ctx->vma_fd[i] = -1;
		if (shmem_fd(ctx, ctx->mm->vmas[i]) >= 0) {
			ctx->vma_fd[i] = next++; /* the object shared with other processes */
			continue;
		}
		if (!is_file_kind(ctx->mm->vmas[i]->kind))
			continue;
		ctx->vma_fd[i] = same_file_vma(ctx, i);
		if (ctx->vma_fd[i] < 0)
			ctx->vma_fd[i] = next++;
	}
	/* temporary fds go above: one slot per mapped file, not per VMA (a
	 * process may have tens of thousands of VMAs, and fds are limited) */
	ctx->stage_base = next + 1;
	share_reserve(ctx);
	return plan_trampoline(ctx);
}

static int open_on(const char *path, int flags, int fd)
{
	int tmp = open(path, flags | O_CLOEXEC);

	if (tmp < 0)
		return -1;
	if (tmp != fd && dup2(tmp, fd) < 0) {
		close(tmp);
		return -1;
	}
	if (tmp != fd)
		close(tmp);
	return 0;
}

static int open_vma_files(struct restore_ctx *ctx)
{
	for (size_t i = 0; i < ctx->mm->n_vmas; i++) {
		const VmaEntry *v = ctx->mm->vmas[i];
		int flags = v->kind == VMA_KIND__FILE_SHARED && v->may_write ? O_RDWR : O_RDONLY;
		int shmem = shmem_fd(ctx, v);
		if (shmem >= 0) {
			if (dup2(shmem, ctx->vma_fd[i]) < 0)
				return err_errno("cannot take the shared memory mapped at 0x%llx",
						 (unsigned long long)v->start);
			continue;
		}
		if (ctx->vma_fd[i] < 0 || (i && same_file_vma(ctx, i) == ctx->vma_fd[i]))
			continue;
		if (open_on(v->path, flags, ctx->vma_fd[i]))
			return err_errno("cannot open %s for the mapping at 0x%llx", v->path,
					 (unsigned long long)v->start);
	}
	return 0;
}

/* Whether a process whose memory this one started with (its parent, or
 * theirs) has its trampoline at the same place: a kid made once that one
 * was mapped (a sharer of its parent's fd table, or a kid of one) holds a
 * copy of it there, which serves. */
static bool inherited_trampoline(const struct restore_ctx *ctx)
{
	for (const struct restore_ctx *p = ctx->memory_from; p; p = p->memory_from)
		if (p->tramp == ctx->tramp && p->tramp_len == ctx->tramp_len)
			return true;
	return false;
}

static int map_trampoline(struct restore_ctx *ctx)
{
	unsigned char *p = mmap((void *)ctx->tramp, ctx->tramp_len, PROT_READ | PROT_WRITE,
				MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);

	if (p == MAP_FAILED && errno == EEXIST && inherited_trampoline(ctx))
		return 0; /* an ancestor's, the same */
	if (p == MAP_FAILED)
		return err_errno("cannot map the restorer's trampoline at 0x%llx",
				 (unsigned long long)ctx->tramp);
	p[0] = 0x0f; /* syscall */
	p[1] = 0x05;
	memcpy(p + TRAMP_BATCH_OFF, inject_batch_code, sizeof(inject_batch_code));
	if (mprotect(p, 4096, PROT_READ | PROT_EXEC))
		return err_errno("cannot make the trampoline executable");
	return 0;
}

int mm_restore_child(struct restore_ctx *ctx)
{
	if (open_vma_files(ctx))
		return -1;
	if (open_on(ctx->mm->exe_path, O_RDONLY, ctx->exe_fd))
		return err_errno("cannot open executable %s", ctx->mm->exe_path);
	return map_trampoline(ctx);
}

/* ---- restore: injected into the stopped child ---- */

/* Calls run in the new process in one stop each batch (inject_batch):
 * one ptrace round trip instead of one per call. */
struct mm_batch {
	size_t n, cap;
	struct inject_call_desc *calls;
	struct mm_range *range; /* what each call is for, for the error message */
	const char **verb;
};

struct mm_range {
	uint64_t start, end;
};

static int batch_add(struct mm_batch *b, const char *verb, uint64_t start, uint64_t end, long nr,
		     uint64_t a1, uint64_t a2, uint64_t a3, uint64_t a4, uint64_t a5, uint64_t a6)
{
	if (b->n == b->cap) {
		size_t cap = b->cap ? 2 * b->cap : 128;
		struct inject_call_desc *c = realloc(b->calls, cap * sizeof(*c));
		struct mm_range *r = c ? realloc(b->range, cap * sizeof(*r)) : NULL;
		const char **s = r ? realloc(b->verb, cap * sizeof(*s)) : NULL;
		if (c)
			b->calls = c;
		if (r)
			b->range = r;
		if (!s)
			return err_set("out of memory");
		b->verb = s;
		b->cap = cap;
	}
	b->calls[b->n] = (struct inject_call_desc){nr, {a1, a2, a3, a4, a5, a6}};
	b->range[b->n] = (struct mm_range){start, end};
	b->verb[b->n++] = verb;
	return 0;
}

static void batch_free(struct mm_batch *b)
{
	free(b->calls);
	free(b->range);
	free(b->verb);
	memset(b, 0, sizeof(*b));
}

/* Runs the batch in chunks that fit the trampoline's scratch area. */
static int batch_run(struct restore_ctx *ctx, struct mm_batch *b)
{
	size_t max = inject_batch_max(&ctx->inj);
	int ret = 0;

	for (size_t first = 0; !ret && first < b->n;) {
		size_t k = b->n - first < max ? b->n - first : max, done;
		long err;
		ret = inject_batch(&ctx->inj, ctx->tramp + TRAMP_BATCH_OFF, b->calls + first, k,
				   &done, &err);
		if (!ret && done < k) {
			const struct mm_range *r = &b->range[first + done];
			errno = -err;
			ret = err_errno("%s 0x%llx-0x%llx in pid %d", b->verb[first + done],
					(unsigned long long)r->start, (unsigned long long)r->end,
					ctx->pid);
		}
		first += k;
	}
	batch_free(b);
	return ret;
}

static bool in_tramp(const struct restore_ctx *ctx, uint64_t start)
{
	return start >= ctx->tramp && start < ctx->tramp + ctx->tramp_len;
}

static bool keep_inherited(const struct restore_ctx *ctx, const struct proc_vma *v)
{
	if (in_tramp(ctx, v->start) || cow_in_region(ctx->tree, v->start, v->end - v->start))
		return true; /* staged copies are moved into place (cow.c) */
	return v->path && (!strcmp(v->path, "[vdso]") || !strcmp(v->path, "[vvar]") ||
			   !strcmp(v->path, "[vvar_vclock]") || !strcmp(v->path, "[vsyscall]"));
}

/* Unmap everything cryo left in the child, in as few calls as possible:
 * one munmap per run of VMAs between the mappings we keep. */
static int unmap_inherited(struct restore_ctx *ctx, const struct proc_vmas *cur, struct mm_batch *b)
{
	uint64_t run_start = 0, run_end = 0;

	for (int i = 0; i <= cur->nr; i++) {
		bool keep = i == cur->nr || keep_inherited(ctx, &cur->v[i]);
		if (!keep) {
			if (!run_end)
				run_start = cur->v[i].start;
			run_end = cur->v[i].end;
			continue;
		}
		if (run_end && batch_add(b, "unmapping cryo's memory at", run_start, run_end,
					 SYS_munmap, run_start, run_end - run_start, 0, 0, 0, 0))
			return -1;
		run_end = 0;
	}
	return 0;
}

struct vdso_move {
	uint64_t from, to, len;
};

static int find_family(const struct proc_vmas *cur, const char *name, uint64_t *start,
		       uint64_t *len)
{
	for (int i = 0; i < cur->nr; i++) {
		if (cur->v[i].path && !strcmp(cur->v[i].path, name)) {
			*start = cur->v[i].start;
			*len = cur->v[i].end - cur->v[i].start;
			return 1;
		}
	}
	return 0;
}

static int mremap_one(struct mm_batch *b, uint64_t from, uint64_t len, uint64_t to)
{
	if (from == to)
		return 0;
	return batch_add(b, "moving the vDSO to", to, to + len, SYS_mremap, from, len, len,
			 MREMAP_MAYMOVE | MREMAP_FIXED, to, 0);
}

/* Moves [vvar], [vvar_vclock] and [vdso] to the target's addresses; through
 * a spare area of the trampoline when the old and new places overlap. */
static int move_vdso(struct restore_ctx *ctx, const struct proc_vmas *cur, struct mm_batch *b)
{
	static const VmaKind kinds[] = {VMA_KIND__VVAR, VMA_KIND__VVAR_VCLOCK, VMA_KIND__VDSO};
	static const char *const names[] = {"[vvar]", "[vvar_vclock]", "[vdso]"};
	struct vdso_move mv[3];
	int n = 0;
	bool overlap = false;

	for (int k = 0; k < 3; k++) {
		uint64_t start, len;
		const VmaEntry *target = NULL;
		if (!find_family(cur, names[k], &start, &len))
			continue;
		for (size_t i = 0; i < ctx->mm->n_vmas; i++)
			if (ctx->mm->vmas[i]->kind == kinds[k])
				target = ctx->mm->vmas[i];
		if (!target) {
			if (batch_add(b, "unmapping the vDSO at", start, start + len, SYS_munmap,
				      start, len, 0, 0, 0, 0))
				return -1;
			continue;
		}
		mv[n++] = (struct vdso_move){start, target->start, len};
	}
	for (int i = 0; i < n; i++)
		for (int j = 0; j < n; j++)
			if (mv[i].to < mv[j].from + mv[j].len &&
			    mv[j].from < mv[i].to + mv[i].len && mv[i].from != mv[i].to)
				overlap = true;
	if (overlap) {
		uint64_t spare = ctx->tramp + ctx->tramp_len / 2;
		for (int i = 0; i < n; i++) {
			if (mremap_one(b, mv[i].from, mv[i].len, spare))
				return -1;
			mv[i].from = spare;
			spare += mv[i].len;
		}
	}
	for (int i = 0; i < n; i++)
		if (mremap_one(b, mv[i].from, mv[i].len, mv[i].to))
			return -1;
	return 0;
}

/* Does pages.c have data for this VMA? Then it is mapped writable first. */
static bool vma_has_pages(const struct restore_ctx *ctx, const VmaEntry *v)
{
	size_t i = ctx_first_run_from(ctx, v->start);

	return i < ctx->nr_runs && ctx->runs[i]->vaddr < v->end;
}

static unsigned map_prot(const struct restore_ctx *ctx, const VmaEntry *v)
{
	return vma_has_pages(ctx, v) ? v->prot | PROT_READ | PROT_WRITE : v->prot;
}

static int map_vma(struct restore_ctx *ctx, size_t i, struct mm_batch *b)
{
	const VmaEntry *v = ctx->mm->vmas[i];
	int flags = MAP_FIXED, fd = -1;

	if (ctx->cow[i].staged) /* filled, and shared with the parent or kids */
		return batch_add(b, "moving the staged copy to", v->start, v->end, SYS_mremap,
				 ctx->cow[i].at, v->end - v->start, v->end - v->start,
				 MREMAP_MAYMOVE | MREMAP_FIXED, v->start, 0);
	switch (v->kind) {
	case VMA_KIND__ANON_PRIVATE:
		flags |= (v->droppable ? MAP_DROPPABLE : MAP_PRIVATE) | MAP_ANONYMOUS;
		break;
	case VMA_KIND__ANON_SHARED:
		/* shared with other processes: their common memfd; else its own */
		fd = ctx->vma_fd[i];
		flags |= fd >= 0 ? MAP_SHARED : MAP_SHARED | MAP_ANONYMOUS;
		break;
	case VMA_KIND__FILE_PRIVATE:
		flags |= MAP_PRIVATE;
		fd = ctx->vma_fd[i];
		break;
	case VMA_KIND__FILE_SHARED:
		flags |= MAP_SHARED;
		fd = ctx->vma_fd[i];
		break;
	case VMA_KIND__SYSV_SHM: /* attached at once: what is queued goes first */
		return batch_run(ctx, b) || sysvshm_attach(ctx, v) ? -1 : 0;
	case VMA_KIND__AIO_RING: /* a new context, its ring moved here */
		return batch_run(ctx, b) || aio_restore_ring(ctx, v) ? -1 : 0;
	default:
		return 0; /* the vDSO family was moved, [vsyscall] is the kernel's */
	}
	if (v->growsdown)
		flags |= MAP_GROWSDOWN;
	if (v->noreserve)
		flags |= MAP_NORESERVE;
	return batch_add(b, "mapping", v->start, v->end, SYS_mmap, v->start, v->end - v->start,
			 map_prot(ctx, v), flags, fd, fd >= 0 ? v->pgoff : 0);
}

int mm_restore(struct restore_ctx *ctx)
{
	struct mm_batch b = {0};
	struct proc_vmas cur;
	int ret;

	if (proc_read_vmas(ctx->child, &cur))
		return -1;
	/* all in one batch: cryo's memory out, the vDSO moved, every VMA in */
	ret = unmap_inherited(ctx, &cur, &b);
	if (!ret)
		ret = move_vdso(ctx, &cur, &b);
	proc_vmas_free(&cur);
	for (size_t i = 0; !ret && i < ctx->mm->n_vmas; i++)
		ret = map_vma(ctx, i, &b);
	if (ret) {
		batch_free(&b);
		return ret;
	}
	return batch_run(ctx, &b);
}

/* The kernel's own key for execute-only memory: mprotect(PROT_EXEC) gives
 * such a VMA a key it allocates itself (and denies reading through it in
 * PKRU); a later mprotect that adds PROT_READ takes that key away again,
 * which a key given by pkey_mprotect would not. -1 if none. */
static int exec_only_vma(const struct restore_ctx *ctx)
{
	for (size_t i = 0; i < ctx->mm->n_vmas; i++)
		if (ctx->mm->vmas[i]->pkey && ctx->mm->vmas[i]->prot == PROT_EXEC)
			return (int)i;
	return -1;
}

static bool is_exec_only_key(const struct restore_ctx *ctx, const VmaEntry *v)
{
	int x = exec_only_vma(ctx);

	return x >= 0 && v->prot == PROT_EXEC && v->pkey == ctx->mm->vmas[x]->pkey;
}

static int finish_vma(struct restore_ctx *ctx, const VmaEntry *v, struct mm_batch *b)
{
	uint64_t len = v->end - v->start;

	if (v->kind == VMA_KIND__VSYSCALL || is_vdso_family(v->kind))
		return 0;
	if (v->pkey && !is_exec_only_key(ctx, v)) {
		if (batch_add(b, "setting the protection key of", v->start, v->end,
			      SYS_pkey_mprotect, v->start, len, v->prot, v->pkey, 0, 0))
			return -1;
	} else if (map_prot(ctx, v) != v->prot &&
		   batch_add(b, "setting the protection of", v->start, v->end, SYS_mprotect,
			     v->start, len, v->prot, 0, 0, 0)) {
		return -1;
	}
	for (size_t a = 0; a < v->n_advice; a++)
		for (size_t k = 0; k < sizeof(vma_advice) / sizeof(vma_advice[0]); k++)
			if (!strcmp(v->advice[a], vma_advice[k].flag) &&
			    batch_add(b, "restoring madvise flags of", v->start, v->end,
				      SYS_madvise, v->start, len, vma_advice[k].advice, 0, 0, 0))
				return -1;
	/* locked last: its pages are all in now, and mlock faults in the rest */
	if (v->mlock && batch_add(b, "locking", v->start, v->end, SYS_mlock2, v->start, len,
				  v->mlock == 2 ? MLOCK_ONFAULT : 0, 0, 0, 0))
		return -1;
	if (v->anon_name) {
		uint64_t name;
		if (inject_scratch_put(&ctx->inj, 0, v->anon_name, strlen(v->anon_name) + 1,
				       &name) ||
		    inject_call(&ctx->inj, "naming an anonymous mapping", SYS_prctl, PR_SET_VMA,
				PR_SET_VMA_ANON_NAME, v->start, len, name, 0, NULL))
			return -1;
	}
	return 0;
}

static int set_mm_map(struct restore_ctx *ctx)
{
	const MmEntry *mm = ctx->mm;
	struct prctl_mm_map map = {
	    .start_code = mm->start_code,
	    .end_code = mm->end_code,
	    .start_data = mm->start_data,
	    .end_data = mm->end_data,
	    .start_brk = mm->start_brk,
	    .brk = mm->brk,
	    .start_stack = mm->start_stack,
	    .arg_start = mm->arg_start,
	    .arg_end = mm->arg_end,
	    .env_start = mm->env_start,
	    .env_end = mm->env_end,
	    .auxv_size = mm->n_auxv * sizeof(uint64_t),
	    .exe_fd = ctx->exe_fd,
	};
	uint64_t auxv, addr;

	if (inject_scratch_put(&ctx->inj, 4096, mm->auxv, map.auxv_size, &auxv))
		return -1;
	map.auxv = (__u64 *)auxv;
	if (inject_scratch_put(&ctx->inj, 0, &map, sizeof(map), &addr))
		return -1;
	return inject_call(&ctx->inj, "setting the mm fields (PR_SET_MM_MAP)", SYS_prctl, PR_SET_MM,
			   PR_SET_MM_MAP, addr, sizeof(map), 0, 0, NULL);
}

/* After everything else: sealed VMAs accept no more change, and mlockall
 * (MCL_FUTURE) locks every mapping made after it. */
static int seal_and_lock_future(struct restore_ctx *ctx, struct mm_batch *b)
{
	for (size_t i = 0; i < ctx->mm->n_vmas; i++) {
		const VmaEntry *v = ctx->mm->vmas[i];
		if (v->sealed && batch_add(b, "sealing", v->start, v->end, SYS_mseal, v->start,
					   v->end - v->start, 0, 0, 0, 0))
			return -1;
	}
	if (ctx->mm->mlockall && batch_add(b, "mlockall(MCL_FUTURE) for", 0, 0, SYS_mlockall,
					   ctx->mm->mlockall, 0, 0, 0, 0, 0))
		return -1;
	return batch_run(ctx, b);
}

/* Keys are handed out lowest first: the restored process asks for keys
 * until it holds every one its VMAs carry, lets the kernel take the
 * execute-only one at its number, and gives back the others. (A key
 * allocated and never used on a VMA is not seen at dump.) What each thread
 * may do through a key is its PKRU, restored with the rest of its xsave
 * state. */
static int alloc_pkeys(struct restore_ctx *ctx)
{
	int x = exec_only_vma(ctx);
	uint32_t want = 0, got = 0, spare = 0;
	long key;

	for (size_t i = 0; i < ctx->mm->n_vmas; i++)
		if (ctx->mm->vmas[i]->pkey && ctx->mm->vmas[i]->pkey < 32)
			want |= 1u << ctx->mm->vmas[i]->pkey;
	while ((got & want) != want) {
		if (inject_call(&ctx->inj, "allocating a protection key", SYS_pkey_alloc, 0, 0, 0,
				0, 0, 0, &key))
			return -1;
		if (key <= 0 || key >= 32)
			return err_set(
			    "pid %d: protection key %ld given where one of %#x was wanted",
			    ctx->pid, key, want);
		got |= 1u << key;
		if (!(want & (1u << key)))
			spare |= 1u << key;
		if (x >= 0 && key == ctx->mm->vmas[x]->pkey) {
			const VmaEntry *v = ctx->mm->vmas[x];
			if (inject_call(&ctx->inj, "freeing a protection key", SYS_pkey_free, key,
					0, 0, 0, 0, 0, NULL) ||
			    inject_call(&ctx->inj, "making memory execute-only", SYS_mprotect,
					v->start, v->end - v->start, PROT_EXEC, 0, 0, 0, NULL))
				return -1;
		}
	}
	for (int k = 1; k < 32; k++)
		if ((spare & (1u << k)) && inject_call(&ctx->inj, "freeing a protection key",
						       SYS_pkey_free, k, 0, 0, 0, 0, 0, NULL))
			return -1;
	return 0;
}

int mm_restore_finish(struct restore_ctx *ctx)
{
	struct mm_batch b = {0};

	if (alloc_pkeys(ctx))
		return -1;
	for (size_t i = 0; i < ctx->mm->n_vmas; i++)
		if (finish_vma(ctx, ctx->mm->vmas[i], &b)) {
			batch_free(&b);
			return -1;
		}
	return batch_run(ctx, &b) || set_mm_map(ctx) || seal_and_lock_future(ctx, &b) ? -1 : 0;
}
