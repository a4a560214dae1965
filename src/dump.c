/*
 * dump: checkpoint a process tree, with every thread, to an images directory.
 *
 * The steps follow the seed and DESIGN.md:
 *   0. check the root and prepare the directory (nothing touched yet);
 *   1. freeze: seize every thread of the root, then of each child found,
 *      top-down (tree.c), and stop it with PTRACE_INTERRUPT;
 *   2. collect, process by process: registers, then, by syscalls injected
 *      through the vDSO's `syscall` instruction, what only the task itself
 *      can tell (signal handlers, timers, brk, ...); fds, cwd and the rest
 *      from /proc; open file descriptions shared between processes once;
 *   3. memory: the VMA list and the page contents of each process;
 *   4. write every image, sync, commit the inventory last; then kill the
 *      tree, or release it untouched with --leave-running, or stopped with
 *      --leave-stopped.
 * With --leave-running each process's memory is a copy-on-write snapshot
 * taken in step 2 (snapshot.c): the tree is released right after it, and
 * steps 3 and 4 read the snapshots while it runs; the inventory is still
 * written only once every image is synced.
 * If any step fails every task is released exactly as it was and the
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

#include "cgroup.h"
#include "chain.h"
#include "creds.h"
#include "external.h"
#include "files.h"
#include "fs.h"
#include "images.h"
#include "infra/log.h"
#include "infra/progress.h"
#include "infra/testhook.h"
#include "infra/pbprint.h"
#include "infra/ptrace.h"
#include "locks.h"
#include "memtrack.h"
#include "mm.h"
#include "pages.h"
#include "shmem.h"
#include "signals.h"
#include "snapshot.h"
#include "sysvshm.h"
#include "task.h"
#include "schedule.h"
#include "seccomp.h"
#include "threads.h"
#include "timers.h"
#include "tree.h"
#include "vmaflags.h"

#define SCRATCH_LEN 8192

/* ---- 0. checks before touching the target ---- */

/* Kernel threads have no executable (and no user memory). */
static bool is_kernel_thread(pid_t pid)
{
	char path[64], target[16];

	snprintf(path, sizeof(path), "/proc/%d/exe", pid);
	return readlink(path, target, sizeof(target)) < 0 && errno == ENOENT;
}

/* The root: refused outright if it is cryo, init or a kernel thread. */
static int check_root(struct dump_tree *tree)
{
	pid_t pid = tree->opts->pid;

	if (pid <= 0)
		return err_set("no process with pid %d", pid);
	if (kill(pid, 0) && errno == ESRCH)
		return err_set("no process with pid %d", pid);
	if (pid == getpid() || pid == getppid())
		return err_set("pid %d is cryo itself or its parent: refusing to dump it", pid);
	if (pid == 1)
		return err_set("pid 1 is the init process: refusing to dump it");
	if (is_kernel_thread(pid))
		return err_set("pid %d is a kernel thread: it cannot be checkpointed", pid);
	return 0;
}

static int check_kernel(struct dump_tree *tree)
{
	char missing[512];

	kerndat_probe(&tree->kd);
	if (kerndat_missing(&tree->kd, missing, sizeof(missing)))
		return err_set("this kernel lacks what cryo needs: %s (see cryo check)", missing);
	return 0;
}

/* ---- 2. collect ---- */

static int begin_injection(struct dump_ctx *ctx)
{
	if (inject_begin(&ctx->inj, ctx->pid))
		return -1;
	ctx->injecting = true;
	return inject_setup(&ctx->inj, &ctx->vmas, SCRATCH_LEN);
}

static int end_injection(struct dump_ctx *ctx)
{
	int ret = 0;

	if (!ctx->injecting)
		return 0;
	ctx->injecting = false;
	if (inject_end(&ctx->inj))
		ret = -1;
	return ret;
}

/* dump -R and pre-dump: the tree goes on running, its memory is written
 * from copy-on-write snapshots (snapshot.c) once it is let go. */
static bool runs_on(const struct cryo_opts *opts)
{
	return opts->leave_running || opts->pre_dump;
}

/* What needs syscalls run inside the task: done in one stretch. */
static int collect_by_injection(struct dump_ctx *ctx)
{
	MmEntry *mm = ctx->mm;

	if (begin_injection(ctx) || threads_dump(ctx) || seccomp_dump(ctx))
		return -1;
	if (task_dump(ctx) || creds_dump(ctx) || signals_dump(ctx) || timers_dump(ctx) ||
	    sched_dump(ctx) || mm_dump(ctx, mm) || files_read_fd_flags(ctx) || memtrack_inject(ctx))
		return -1;
	if (runs_on(ctx->opts) && snapshot_take(ctx))
		return -1;
	return end_injection(ctx);
}

/* ---- 4. write ---- */

static int commit(struct dump_tree *tree)
{
	InventoryEntry inv = INVENTORY_ENTRY__INIT;
	struct utsname uts;
	struct timespec ts;
	int32_t *pids = calloc(tree->nr_procs, sizeof(*pids));
	int ret;

	if (!pids)
		return err_set("out of memory");
	for (int i = 0; i < tree->nr_procs; i++)
		pids[i] = tree->procs[i]->pid;
	uname(&uts);
	clock_gettime(CLOCK_REALTIME, &ts);
	inv.format_version = IMG_VERSION;
	inv.cryo_version = CRYO_VERSION;
	inv.root_pid = tree->procs[0]->pid;
	inv.n_pids = tree->nr_procs;
	inv.pids = pids;
	inv.kernel_release = uts.release;
	inv.dump_time_unix_ns = ts.tv_sec * 1000000000ULL + ts.tv_nsec;
	inv.has_shell_job = true;
	inv.shell_job = tree->opts->shell_job;
	inv.xcr0 = tree->kd.xcr0;
	inv.xsave_size = tree->kd.xsave_size;
	tree->stats.has_pages_skipped_shared = true;
	tree->stats.has_pages_read = true;
	tree->stats.has_pages_in_parent = tree->stats.has_pages_untracked = tree->chain != NULL;
	tree->stats.total_time_us = now_us() - tree->t_start;
	tree->stats.frozen_time_us =
	    (tree->released ? tree->t_released : now_us()) - tree->t_frozen;
	if (tree->released) {
		tree->stats.has_snapshot_time_us = tree->stats.has_pages_copied_frozen = true;
		tree->stats.has_written_after_release_us = true;
		tree->stats.written_after_release_us = now_us() - tree->t_released;
	}
	ret = image_write_one(&tree->dir, IMAGE_STATS_DUMP, 0, &tree->stats.base);
	if (!ret)
		ret = img_dir_commit(&tree->dir, &inv);
	free(pids);
	return ret ? -1 : 0;
}

/* ---- release ---- */

/* Every task goes on as it was; what cannot be put back is warned about
 * (the pid and what), and the error that made the dump fail stays the one
 * reported. */
static void release_all(struct dump_tree *tree)
{
	struct err_stash failure;

	if (tree->released)
		return;
	err_stash(&failure);
	for (int i = tree->nr_procs - 1; i >= 0; i--) {
		struct dump_ctx *ctx = tree->procs[i];
		if (ctx->injecting && end_injection(ctx))
			pr_warn("pid %d may not go on exactly as it was: %s", ctx->pid, err_text());
		threads_release(ctx);
	}
	err_unstash(&failure);
}

/* --leave-stopped: a SIGSTOP queued while each process is still traced
 * takes it into a group stop as soon as it is let go; a process that was
 * stopped already stays so with its own stop signal. */
static void stop_all(struct dump_tree *tree)
{
	for (int i = 0; i < tree->nr_procs; i++) {
		struct dump_ctx *ctx = tree->procs[i];
		if (!ctx->zombie && ctx->state != 'T' && kill(ctx->pid, SIGSTOP))
			pr_warn("pid %d could not be left stopped: %s", ctx->pid, strerror(errno));
	}
}

/* Children first, so that no parent is notified of a child's death
 * before it is gone itself. */
static int kill_all(struct dump_tree *tree)
{
	for (int i = tree->nr_procs - 1; i >= 0; i--)
		if (!tree->procs[i]->zombie && threads_kill(tree->procs[i]))
			return -1;
	return 0;
}

static int collect_state(struct dump_ctx *ctx)
{
	if (ctx->zombie)
		return tree_dump_zombie(ctx);
	/* stat was read again once the tree was frozen (tree_check_ids); status
	 * is read again here for the credentials, which may have changed; the
	 * pages written since the parent are read and re-armed as the snapshot
	 * is taken, while frozen (a write after it is the next checkpoint's),
	 * so that they can be read from the snapshot once the tree runs on */
	if (proc_read_status(ctx->pid, &ctx->status) || vmaflags_read(ctx) ||
	    collect_by_injection(ctx) || memtrack_freeze_point(ctx) ||
	    pages_copy_frozen(ctx, ctx->mm) || files_dump(ctx) || locks_dump(ctx) || fs_dump(ctx))
		return -1;
	pr_info("collected the state of pid %d (%d threads, %d VMAs, %d fds)", ctx->pid,
		ctx->nr_threads, ctx->vmas.nr, ctx->nr_fds);
	return 0;
}

static int collect_memory(struct dump_ctx *ctx)
{
	if (ctx->zombie)
		return task_write(ctx);
	if (vmaflags_check(ctx, snapshot_source_pid(ctx), ctx->snap != NULL) ||
	    pages_dump(ctx, ctx->mm))
		return -1;
	return task_write(ctx) || mm_write(ctx) || files_write(ctx) || fs_write(ctx);
}

/* --leave-running: every process with a snapshot is let go before its
 * memory is written; those without one are written first, still frozen. */
static int release_early(struct dump_tree *tree)
{
	bool any = false;

	for (int i = 0; i < tree->nr_procs; i++) {
		if (!tree->procs[i]->snap && collect_memory(tree->procs[i]))
			return -1;
		any |= tree->procs[i]->snap != NULL;
	}
	if (!any)
		return 0;
	if (snapshot_guard(tree))
		return -1;
	files_dump_end(tree, DUMP_END_RELEASE);
	release_all(tree);
	tree->released = true;
	tree->t_released = now_us();
	pr_info("released the tree after %llu us frozen; its memory is written from snapshots",
		tree->t_released - tree->t_frozen);
	for (int i = 0; i < tree->nr_procs; i++)
		if (tree->procs[i]->snap && collect_memory(tree->procs[i]))
			return -1;
	snapshot_release_all(tree);
	return 0;
}

/* Step 3: every process's pages, from its snapshot once the tree runs on
 * again (dump -R, pre-dump), else from the frozen tree. */
static int write_memory(struct dump_tree *tree)
{
	if (runs_on(tree->opts))
		return release_early(tree);
	for (int i = 0; i < tree->nr_procs; i++)
		if (collect_memory(tree->procs[i]))
			return -1;
	return 0;
}

static int dump_steps(struct dump_tree *tree)
{
	struct progress progress;
	unsigned long long t;
	int failed = 0;

	/* 0 */
	if (check_kernel(tree) || check_root(tree) || external_check_opts(tree->opts) ||
	    img_dir_create(&tree->dir, tree->opts->images_dir, !tree->opts->no_sync) ||
	    chain_dump_open(tree))
		return -1;
	/* 1 */
	if (runs_on(tree->opts)) {
		vmaflags_preread(tree);
		test_wait_point("dump-preread");
	}
	locks_dump_warm(); /* last before the freeze: its effect lasts a grace period */
	t = now_us();
	if (tree_freeze(tree))
		return -1;
	tree->t_frozen = now_us();
	tree->stats.freezing_time_us = tree->t_frozen - t;
	test_kill_point("dump-frozen");
	if (chain_dump_take(tree) || locks_dump_begin(tree))
		return -1;
	pr_info("froze %d process%s in %llu us", tree->nr_procs, tree->nr_procs > 1 ? "es" : "",
		tree->t_frozen - t);
	/* 2 */
	for (int i = 0; i < tree->nr_procs; i++)
		if (collect_state(tree->procs[i]))
			return -1;
	if (locks_dump_tree(tree) || shmem_link_mapped(tree) || sysvshm_dump(tree) ||
	    cgroup_dump(tree) || files_dump_finish(tree))
		return -1;
	test_kill_point("dump-collected");
	test_hold_point("dump-collected");
	/* 3 */
	progress_start(&progress, "dump", "written", &tree->stats.pages_written);
	failed = write_memory(tree);
	progress_stop(&progress);
	if (failed)
		return -1;
	test_kill_point("dump-written");
	pr_info("dumped memory: %llu pages written, %llu zero, %llu absent, in %llu us",
		(unsigned long long)tree->stats.pages_written,
		(unsigned long long)tree->stats.pages_skipped_zero,
		(unsigned long long)tree->stats.pages_skipped_absent,
		(unsigned long long)tree->stats.memdump_time_us);
	/* 4 */
	if (chain_dump_write(tree) || commit(tree))
		return -1;
	pr_info("checkpoint of pid %d committed to %s", tree->procs[0]->pid,
		tree->opts->images_dir);
	test_kill_point("dump-committed");
	if (tree->released)
		return 0;
	if (tree->opts->leave_running || tree->opts->leave_stopped) {
		files_dump_end(tree, DUMP_END_RELEASE);
		if (tree->opts->leave_stopped)
			stop_all(tree);
		release_all(tree);
		return 0;
	}
	files_dump_end(tree, DUMP_END_KILL);
	return kill_all(tree);
}

int cryo_dump(const struct cryo_opts *opts)
{
	struct dump_tree tree = {.opts = opts};
	int ret;

	tree.dir.dirfd = -1;
	tree.t_start = now_us();
	dump_stats__init(&tree.stats);
	ret = dump_steps(&tree);
	if (ret) {
		if (!tree.released)
			files_dump_end(&tree, DUMP_END_FAILED);
		memtrack_abort(&tree);
		release_all(&tree);
		snapshot_release_all(&tree); /* once the tree is not traced any more */
		img_dir_abort(&tree.dir);
	} else {
		img_dir_close(&tree.dir);
		if (opts->display_stats) {
			printf("dump statistics:\n");
			pbprint_text(stdout, &tree.stats.base, 1);
			fflush(stdout);
		}
	}
	for (int i = 0; i < tree.nr_procs; i++)
		locks_dump_free(tree.procs[i]);
	locks_dump_end(&tree);
	vmaflags_free(&tree);
	files_dump_free(&tree);
	pages_dump_free(&tree);
	memtrack_free(&tree);
	chain_dump_free(&tree);
	shmem_dump_free(&tree);
	tree_dump_free(&tree);
	return ret ? 1 : 0;
}

int cryo_pre_dump(const struct cryo_opts *opts)
{
	struct cryo_opts pre = *opts;

	pre.leave_running = true;
	pre.track_mem = true;
	pre.pre_dump = true;
	return cryo_dump(&pre);
}
