/*
 * dump: checkpoint one process, with its threads, to an images directory.
 *
 * The steps follow the seed and DESIGN.md:
 *   0. check the target and prepare the directory (nothing touched yet);
 *   1. freeze: seize every thread and stop it with PTRACE_INTERRUPT;
 *   2. collect: registers, then, by syscalls injected through the vDSO's
 *      `syscall` instruction, what only the task itself can tell (signal
 *      handlers, timers, brk, ...); fds, cwd and the rest from /proc;
 *   3. memory: the VMA list and the page contents;
 *   4. write every image, sync, commit the inventory last; then kill the
 *      task, or release it untouched with --leave-running.
 * If any step fails the task is released exactly as it was and the
 * partial images are removed: a failed dump never harms its target.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "context.h"
#include "infra/log.h"
#include "infra/ptrace.h"

#define SCRATCH_LEN 4096

/* ---- 0. checks before touching the target ---- */

/* One process (its threads are welcome): checked before the freeze and
 * again after it, since a child may appear in between. */
static int check_shape(struct dump_ctx *ctx)
{
	int children;

	if (proc_read_status(ctx->pid, &ctx->status))
		return -1;
	children = proc_count_children(ctx->pid);
	if (children < 0)
		return -1;
	if (children > 0)
		return err_set("pid %d has %d child process%s: process trees are not supported yet",
			       ctx->pid, children, children > 1 ? "es" : "");
	return 0;
}

/* Kernel threads have no executable (and no user memory). */
static bool is_kernel_thread(pid_t pid)
{
	char path[64], target[16];

	snprintf(path, sizeof(path), "/proc/%d/exe", pid);
	return readlink(path, target, sizeof(target)) < 0 && errno == ENOENT;
}

static int open_target(struct dump_ctx *ctx)
{
	ctx->pidfd = syscall(SYS_pidfd_open, ctx->pid, 0);
	if (ctx->pidfd < 0) {
		if (errno == ESRCH)
			return err_set("no process with pid %d", ctx->pid);
		return err_errno("cannot open pid %d", ctx->pid);
	}
	if (ctx->pid == getpid() || ctx->pid == getppid())
		return err_set("pid %d is cryo itself or its parent: refusing to dump it",
			       ctx->pid);
	if (ctx->pid == 1)
		return err_set("pid 1 is the init process: refusing to dump it");
	if (is_kernel_thread(ctx->pid))
		return err_set("pid %d is a kernel thread: it cannot be checkpointed", ctx->pid);
	if (check_shape(ctx) || proc_read_stat(ctx->pid, &ctx->stat))
		return -1;
	if (ctx->stat.state == 'Z' && ctx->status.threads > 1)
		return err_set("pid %d: its main thread has exited while other threads run; not "
			       "supported yet",
			       ctx->pid);
	if (ctx->stat.state == 'Z')
		return err_set("pid %d is a zombie: nothing to checkpoint", ctx->pid);
	if (ctx->status.tracer_pid)
		return err_set("pid %d is already traced by pid %d", ctx->pid,
			       ctx->status.tracer_pid);
	if (ctx->status.nr_nspid > 1)
		return err_set("pid %d lives in a nested pid namespace: not supported yet",
			       ctx->pid);
	return 0;
}

static int check_kernel(struct dump_ctx *ctx)
{
	char missing[512];

	kerndat_probe(&ctx->kd);
	if (kerndat_missing(&ctx->kd, missing, sizeof(missing)))
		return err_set("this kernel lacks what cryo needs: %s (see cryo check)", missing);
	return 0;
}

/* ---- 2. collect ---- */

static const struct proc_vma *find_vdso(const struct proc_vmas *vmas)
{
	for (int i = 0; i < vmas->nr; i++)
		if (vmas->v[i].path && !strcmp(vmas->v[i].path, "[vdso]"))
			return &vmas->v[i];
	return NULL;
}

static int begin_injection(struct dump_ctx *ctx)
{
	const struct proc_vma *vdso = find_vdso(&ctx->vmas);
	uint64_t ip;

	if (!vdso)
		return err_set("pid %d has no vDSO: not supported yet", ctx->pid);
	if (inject_find_vdso_syscall(ctx->pid, vdso->start, vdso->end, &ip) ||
	    inject_begin(&ctx->inj, ctx->pid, ip))
		return -1;
	ctx->injecting = true;
	return 0;
}

static int end_injection(struct dump_ctx *ctx)
{
	int ret = 0;

	if (!ctx->injecting)
		return 0;
	ctx->injecting = false;
	if (inject_scratch_unmap(&ctx->inj))
		ret = -1;
	if (inject_end(&ctx->inj))
		ret = -1;
	return ret;
}

/* What needs syscalls run inside the task: done in one stretch. */
static int collect_by_injection(struct dump_ctx *ctx, MmEntry *mm)
{
	if (begin_injection(ctx) || inject_scratch_map(&ctx->inj, SCRATCH_LEN) || threads_dump(ctx))
		return -1;
	if (task_dump(ctx) || creds_dump(ctx) || signals_dump(ctx) || timers_dump(ctx) ||
	    mm_dump(ctx, mm))
		return -1;
	return end_injection(ctx);
}

/* ---- 4. write ---- */

static int write_one(struct dump_ctx *ctx, const char *fmt, enum img_kind kind,
		     const ProtobufCMessage *msg)
{
	struct img_out out;
	char name[64];
	int ret;

	snprintf(name, sizeof(name), fmt, ctx->pid);
	if (img_out_open(&ctx->dir, &out, name, kind))
		return -1;
	ret = img_out_msg(&out, msg);
	if (!ret)
		ret = img_out_close(&out);
	img_out_discard(&out);
	return ret;
}

static int commit(struct dump_ctx *ctx)
{
	InventoryEntry inv = INVENTORY_ENTRY__INIT;
	struct utsname uts;
	struct timespec ts;
	int32_t pids[1] = {ctx->pid};

	uname(&uts);
	clock_gettime(CLOCK_REALTIME, &ts);
	inv.format_version = IMG_VERSION;
	inv.cryo_version = CRYO_VERSION;
	inv.root_pid = ctx->pid;
	inv.n_pids = 1;
	inv.pids = pids;
	inv.kernel_release = uts.release;
	inv.dump_time_unix_ns = ts.tv_sec * 1000000000ULL + ts.tv_nsec;
	inv.has_shell_job = true;
	inv.shell_job = ctx->opts->shell_job;
	inv.xcr0 = ctx->kd.xcr0;
	inv.xsave_size = ctx->kd.xsave_size;
	ctx->stats.total_time_us = now_us() - ctx->t_start;
	ctx->stats.frozen_time_us = now_us() - ctx->t_frozen;
	if (write_one(ctx, "stats-dump", IMG_STATS, &ctx->stats.base))
		return -1;
	return img_dir_commit(&ctx->dir, &inv);
}

/* ---- release ---- */

static void release_target(struct dump_ctx *ctx)
{
	if (ctx->injecting)
		end_injection(ctx);
	threads_release(ctx);
}

static int dump_steps(struct dump_ctx *ctx, MmEntry *mm)
{
	unsigned long long t;

	/* 0 */
	if (check_kernel(ctx) || open_target(ctx) ||
	    img_dir_create(&ctx->dir, ctx->opts->images_dir, !ctx->opts->no_sync))
		return -1;
	/* 1 */
	t = now_us();
	if (threads_freeze(ctx))
		return -1;
	ctx->t_frozen = now_us();
	ctx->stats.freezing_time_us = ctx->t_frozen - t;
	pr_info("froze pid %d (%d threads) in %llu us", ctx->pid, ctx->nr_threads,
		ctx->t_frozen - t);
	/* 2 */
	if (check_shape(ctx) || proc_read_stat(ctx->pid, &ctx->stat) ||
	    proc_read_vmas(ctx->pid, &ctx->vmas) || collect_by_injection(ctx, mm) ||
	    files_dump(ctx) || fs_dump(ctx))
		return -1;
	pr_info("collected the state of pid %d (%d VMAs, %d fds)", ctx->pid, ctx->vmas.nr,
		ctx->nr_fds);
	/* 3 */
	if (pages_dump(ctx, mm))
		return -1;
	pr_info("dumped memory: %llu pages written, %llu zero, %llu absent, in %llu us",
		(unsigned long long)ctx->stats.pages_written,
		(unsigned long long)ctx->stats.pages_skipped_zero,
		(unsigned long long)ctx->stats.pages_skipped_absent,
		(unsigned long long)ctx->stats.memdump_time_us);
	/* 4 */
	if (write_one(ctx, "core-%d.img", IMG_CORE, &ctx->core->base) ||
	    write_one(ctx, "mm-%d.img", IMG_MM, &mm->base) || commit(ctx))
		return -1;
	pr_info("checkpoint of pid %d committed to %s", ctx->pid, ctx->opts->images_dir);
	if (ctx->opts->leave_running) {
		release_target(ctx);
		return 0;
	}
	return threads_kill(ctx);
}

int cryo_dump(const struct cryo_opts *opts)
{
	struct dump_ctx ctx = {.opts = opts, .pid = opts->pid, .pidfd = -1};
	/* every field of these two is heap-allocated, freed as one tree */
	CoreEntry *core = calloc(1, sizeof(*core));
	MmEntry *mm = calloc(1, sizeof(*mm));
	int ret;

	if (!core || !mm) {
		free(core);
		free(mm);
		err_set("out of memory");
		return 1;
	}
	core_entry__init(core);
	mm_entry__init(mm);
	ctx.core = core;
	ctx.dir.dirfd = -1;
	ctx.t_start = now_us();
	dump_stats__init(&ctx.stats);
	ret = dump_steps(&ctx, mm);
	if (ret) {
		release_target(&ctx);
		img_dir_abort(&ctx.dir);
	} else {
		img_dir_close(&ctx.dir);
	}
	files_dump_free(&ctx);
	threads_dump_free(&ctx);
	protobuf_c_message_free_unpacked(&mm->base, NULL);
	protobuf_c_message_free_unpacked(&core->base, NULL);
	proc_vmas_free(&ctx.vmas);
	if (ctx.pidfd >= 0)
		close(ctx.pidfd);
	return ret ? 1 : 0;
}
