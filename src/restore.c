/*
 * restore: bring a checkpointed process tree back, with its original pids.
 *
 *   1. read and validate every image (sizes, checksums, ranges, the files
 *      and the pids it needs) before anything is created (checkpoint.c and
 *      each kind's validation); the page data's checksums are checked on
 *      threads meanwhile, until step 5;
 *   2. create the root with clone3(set_tid = its original pid); each new
 *      process creates its own children the same way (child.c, tree.c);
 *   3. in each new process, in ordinary C (child.c): place its fds, open
 *      the files its mappings need, map the trampoline, set cwd, root,
 *      umask, limits, personality, name and session; then wait for cryo;
 *   4. from cryo, by syscalls injected through the trampoline: replace the
 *      address space with the target's, fill its pages, set the mm fields,
 *      rseq, robust list, signal handlers and queued signals, timers, and
 *      credentials last;
 *   5. set the registers and the signal mask, unmap the trampoline (the
 *      task is stopped at that syscall's exit, never back in user mode
 *      there) and detach, children first: each continues at its saved
 *      instruction.
 *   6. without -d, wait for the root and exit with its status.
 * If anything fails after step 2, every new process is killed: a restore
 * is complete or leaves nothing behind.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>
#include <linux/sched.h>

#include "cgroup.h"
#include "checkpoint.h"
#include "child.h"
#include "cow.h"
#include "creds.h"
#include "external.h"
#include "files.h"
#include "fs.h"
#include "images.h"
#include "infra/log.h"
#include "infra/progress.h"
#include "infra/pbprint.h"
#include "infra/ptrace.h"
#include "locks.h"
#include "mm.h"
#include "pages.h"
#include "infra/inject.h"
#include "posix_timers.h"
#include "share.h"
#include "shmem.h"
#include "signals.h"
#include "sysvshm.h"
#include "task.h"
#include "schedule.h"
#include "seccomp.h"
#include "threads.h"
#include "timers.h"
#include "tree.h"
#include "tty.h"

#define REPORT_MAX	  1024
#define REPORT_TIMEOUT_MS 60000
#define REPORT_TICK_MS	  500 /* how often the unreported ones are looked at */

/* ---- 1. read and validate ---- */

static int validate_proc(struct restore_ctx *ctx)
{
	if (task_validate(ctx))
		return -1;
	if (ctx->zombie)
		return 0;
	return threads_validate(ctx) || creds_validate(ctx) || mm_validate(ctx) ||
		       pages_validate(ctx) || locks_validate(ctx) || fs_validate(ctx) ||
		       posix_timers_validate(ctx) || sched_validate(ctx)
		   ? -1
		   : 0;
}

static int validate(struct restore_tree *tree)
{
	char missing[512];

	kerndat_probe(&tree->kd);
	if (kerndat_missing(&tree->kd, missing, sizeof(missing)))
		return err_set("this kernel lacks what cryo needs: %s (see cryo check)", missing);
	if (checkpoint_load(tree))
		return -1;
	for (size_t i = 0; i < tree->nr_procs; i++)
		if (validate_proc(tree->procs[i]))
			return -1;
	return files_validate(tree) || sysvshm_validate(tree) || cgroup_validate(tree) ? -1 : 0;
}

/* ---- 2. create the root ---- */

static int create_root(struct restore_tree *tree)
{
	struct restore_ctx *root = tree->procs[0];
	pid_t tid = root->pid, parent = getpid();
	struct clone_args args = {
	    .exit_signal = SIGCHLD,
	    .set_tid = (uintptr_t)&tid,
	    .set_tid_size = 1,
	};
	long pid = syscall(SYS_clone3, &args, sizeof(args));

	if (pid < 0) {
		if (errno == EEXIST)
			return err_set(
			    "pid %d is already in use: cannot restore the checkpoint with "
			    "its original pid",
			    root->pid);
		return err_errno("cannot create pid %d (clone3 with set_tid)", root->pid);
	}
	if (pid == 0) {
		close(tree->report[0]);
		close(tree->hold[1]);
		close(tree->late[1]);
		tree->child_main(root, parent);
	}
	root->child = pid;
	return 0;
}

/* A new process that died before the restore is done (it crashed: a
 * failure reports its error line first) fails the restore at once. */
static int check_unreported(const struct restore_tree *tree)
{
	for (size_t i = 0; i < tree->nr_procs; i++) {
		const struct restore_ctx *ctx = tree->procs[i];
		struct proc_stat st;
		if (ctx->zombie || proc_read_stat(ctx->pid, &st)) {
			err_clear(); /* not made yet */
			continue;
		}
		if (st.state != 'Z' && st.state != 'X')
			continue;
		if (WIFSIGNALED(st.exit_code))
			return err_set(
			    "restoring pid %d: it was killed by signal %d (%s) before it "
			    "was ready",
			    ctx->pid, WTERMSIG(st.exit_code), strsignal(WTERMSIG(st.exit_code)));
		return err_set("restoring pid %d: it exited with status %d before it was ready",
			       ctx->pid, WEXITSTATUS(st.exit_code));
	}
	return 0;
}

/* Waits until every live process has reported ready (or one failed). */
static int wait_reports(struct restore_tree *tree)
{
	size_t want = 0;
	int waited_ms = 0;

	for (size_t i = 0; i < tree->nr_procs; i++)
		want += !tree->procs[i]->zombie;
	while (want) {
		char msg[REPORT_MAX + 1];
		struct pollfd pfd = {.fd = tree->report[0], .events = POLLIN};
		struct restore_ctx *ctx;
		pid_t pid;
		int r = poll(&pfd, 1, REPORT_TICK_MS);
		ssize_t n;
		if (r < 0 && errno == EINTR)
			continue;
		if (r == 0 && check_unreported(tree))
			return -1;
		if (r == 0 && (waited_ms += REPORT_TICK_MS) < REPORT_TIMEOUT_MS)
			continue;
		if (r <= 0)
			return err_set("the new processes did not report within %d s",
				       REPORT_TIMEOUT_MS / 1000);
		n = recv(tree->report[0], msg, REPORT_MAX, 0);
		if (n < (ssize_t)sizeof(pid))
			return err_errno("reading the reports of the new processes");
		msg[n] = '\0';
		memcpy(&pid, msg, sizeof(pid));
		ctx = ctx_proc(tree, pid);
		if (n > (ssize_t)sizeof(pid))
			return err_set("restoring pid %d: %s", pid, msg + sizeof(pid));
		if (!ctx)
			return err_set("a report from unknown pid %d", pid);
		ctx->child = pid;
		want--;
	}
	return 0;
}

/* Once every process exists: those that open descriptions late do, one
 * byte of the late pipe each. */
static int open_late(struct restore_tree *tree)
{
	char go[256];

	if (!tree->has_late)
		return 0;
	memset(go, 'g', sizeof(go));
	for (size_t left = tree->nr_procs; left;) {
		size_t n = left < sizeof(go) ? left : sizeof(go);
		if (write(tree->late[1], go, n) != (ssize_t)n)
			return err_errno("cannot let the new processes go on");
		left -= n;
	}
	return wait_reports(tree);
}

/* ---- 4, 5. rebuild from the restorer ---- */

/* The process waits in read(): seize it and stop it there. */
static int seize(struct restore_ctx *ctx)
{
	int status;

	if (ptrace(PTRACE_SEIZE, ctx->child, 0, PTRACE_O_EXITKILL))
		return err_errno("cannot seize restored pid %d", ctx->child);
	ctx->seized = true;
	if (ptrace(PTRACE_INTERRUPT, ctx->child, 0, 0))
		return err_errno("cannot interrupt restored pid %d", ctx->child);
	for (;;) {
		int sig = ptrace_wait_stop(ctx->child, &status);
		if (sig < 0)
			return -1;
		if (status >> 16 == PTRACE_EVENT_STOP)
			return 0;
		if (ptrace(PTRACE_CONT, ctx->child, 0, 0)) /* all signals are blocked */
			return err_errno("cannot resume restored pid %d", ctx->child);
	}
}

static int release_child(struct restore_ctx *ctx)
{
	if (inject_call(&ctx->inj, "unmapping the trampoline", SYS_munmap, ctx->tramp,
			ctx->tramp_len, 0, 0, 0, 0, NULL))
		return -1;
	return threads_restore_release(ctx);
}

static int rebuild_memory(struct restore_ctx *ctx)
{
	unsigned long long t = now_us();

	if (task_restore_unregister(ctx) || mm_restore(ctx))
		return -1;
	pr_debug("pid %d: address space laid out", ctx->pid);
	if (pages_restore(ctx))
		return -1;
	pr_debug("pid %d: pages filled", ctx->pid);
	if (mm_restore_finish(ctx))
		return -1;
	ctx->tree->stats.memrestore_time_us += now_us() - t;
	pr_debug("pid %d: memory restored in %llu us", ctx->pid, now_us() - t);
	return 0;
}

static int rebuild(struct restore_ctx *ctx)
{
	if (seize(ctx) || inject_begin(&ctx->inj, ctx->child))
		return -1;
	/* the trampoline: its `syscall` first, scratch in the rest of its first half */
	inject_use(&ctx->inj, ctx->tramp, ctx->tramp + 4096, ctx->tramp_len / 2 - 4096);
	if (rebuild_memory(ctx))
		return -1;
	if (threads_restore_create(ctx) || task_restore(ctx) || signals_restore(ctx) ||
	    timers_restore(ctx) || threads_restore(ctx))
		return -1;
	if ((share_closes_service_fds(ctx) &&
	     inject_call(&ctx->inj, "closing the restorer's fds", SYS_close_range, ctx->svc_base,
			 ~0U, 0, 0, 0, 0, NULL)) ||
	    sched_restore(ctx) || seccomp_restore(ctx))
		return -1;
	pr_debug("pid %d: threads, signals, timers and registrations restored", ctx->pid);
	return threads_restore_creds(ctx);
}

static int rebuild_each(struct restore_tree *tree)
{
	struct progress progress;
	int failed = 0;

	progress_start(&progress, "restore", "restored", &tree->stats.pages_restored);
	for (size_t i = 0; i < tree->nr_procs && !failed; i++)
		failed = !tree->procs[i]->zombie && rebuild(tree->procs[i]);
	if (!failed)
		failed = pages_verify_finish(tree);
	progress_stop(&progress);
	return failed ? -1 : 0;
}

static int rebuild_all(struct restore_tree *tree)
{
	unsigned long long t = now_us();

	if (rebuild_each(tree) || sysvshm_mark_removed(tree) || files_restore_release(tree))
		return -1;
	/* children first: a parent never runs before its children are complete */
	for (size_t i = tree->nr_procs; i-- > 0;)
		if (!tree->procs[i]->zombie && release_child(tree->procs[i]))
			return -1;
	pr_info("rebuilt %zu process%s in %llu us", tree->nr_procs, tree->nr_procs > 1 ? "es" : "",
		now_us() - t);
	return 0;
}

/* ---- 6 ---- */

static int write_pidfile(struct restore_tree *tree)
{
	FILE *f;

	if (!tree->opts->pidfile)
		return 0;
	f = fopen(tree->opts->pidfile, "we");
	if (!f || fprintf(f, "%d\n", tree->procs[0]->child) < 0 || fclose(f))
		return err_errno("cannot write pid file %s", tree->opts->pidfile);
	return 0;
}

static void write_stats(struct restore_tree *tree)
{
	struct img_dir d = tree->dir;
	struct img_out out;
	struct img_name name = image_name(IMAGE_STATS_RESTORE, 0);
	char part[sizeof(name.s) + 8];

	/* a private list of written files: the checkpoint's own is not touched */
	d.sync = false;
	d.files = NULL;
	d.nr_files = d.cap_files = 0;
	snprintf(part, sizeof(part), ".%s.part", name.s);
	if (image_out_open(&d, &out, IMAGE_STATS_RESTORE, 0) ||
	    img_out_msg(&out, &tree->stats.base) || img_out_close(&out))
		img_out_discard(&out); /* best effort: the restore itself succeeded */
	else
		renameat(d.dirfd, part, d.dirfd, name.s);
	free(d.files);
}

static int wait_restored(struct restore_tree *tree)
{
	struct restore_ctx *root = tree->procs[0];
	int status;

	while (waitpid(root->child, &status, 0) < 0) {
		if (errno != EINTR)
			return err_errno("waiting for pid %d", root->child);
	}
	tty_restore_return(tree);
	if (WIFSIGNALED(status))
		return 128 + WTERMSIG(status);
	return WEXITSTATUS(status);
}

/* Removes every process made so far: the root and all that reported are
 * killed by pid, the others die with their parent (PR_SET_PDEATHSIG), and
 * all come back to cryo, the subreaper, to be reaped. */
static void kill_all(struct restore_tree *tree)
{
	if (!tree->procs || !tree->procs[0]->child)
		return;
	for (size_t i = 0; i < tree->nr_procs; i++)
		if (tree->procs[i]->child > 0)
			kill(tree->procs[i]->child, SIGKILL);
	close(tree->hold[1]);
	tree->hold[1] = -1;
	while (waitpid(-1, NULL, __WALL) > 0 || errno == EINTR)
		;
	for (size_t i = 0; i < tree->nr_procs; i++)
		tree->procs[i]->child = 0;
}

static void raise_fd_limit(void)
{
	struct rlimit rl;

	if (!getrlimit(RLIMIT_NOFILE, &rl) && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
}

/* cryo's highest open fd (the list is sorted); the new processes inherit
 * them all until each has set itself up. */
static int highest_own_fd(void)
{
	int *fds, n = proc_list_fds(getpid(), &fds), max = n > 0 ? fds[n - 1] : 2;

	if (n > 0)
		free(fds);
	return n < 0 ? 1 << 16 : max;
}

/* Where the descriptions the root makes go: above every fd any process
 * uses while it sets itself up, and above the temporary fds the root
 * makes while creating them. */
static void plan_inherit_base(struct restore_tree *tree)
{
	int base = highest_own_fd();

	for (size_t i = 0; i < tree->nr_procs; i++)
		if (!tree->procs[i]->zombie && tree->procs[i]->stage_base > base)
			base = tree->procs[i]->stage_base;
	tree->inherit_base = base + 2 * tree->nr_inherit + 16;
}

/* Fd numbers for each process's service and temporary fds. */
static int plan_fds(struct restore_tree *tree)
{
	/* what is shared first: it decides which mappings use inherited fds */
	if (files_plan(tree) || shmem_plan(tree) || cow_plan(tree))
		return -1;
	for (size_t i = 0; i < tree->nr_procs; i++) {
		struct restore_ctx *ctx = tree->procs[i];
		if (ctx->zombie)
			continue;
		ctx->svc_base = files_max_fd(ctx) + 1;
		if (mm_restore_plan(ctx)) /* sets stage_base, above its mapped files' fds */
			return -1;
	}
	share_plan_done(tree);
	plan_inherit_base(tree);
	return 0;
}

static int open_channels(struct restore_tree *tree)
{
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, tree->report) ||
	    pipe2(tree->hold, O_CLOEXEC) || pipe2(tree->late, O_CLOEXEC))
		return err_errno("cannot create the restorer's channels");
	return 0;
}

static int create_all(struct restore_tree *tree)
{
	unsigned long long t = now_us();

	/* orphans of a failed restore come back to cryo to be reaped */
	prctl(PR_SET_CHILD_SUBREAPER, 1);
	/* the checksums are checked meanwhile: after the root's clone3, which
	 * copies cryo's memory but not its threads */
	if (create_root(tree) || pages_verify_start(tree, true) || wait_reports(tree) ||
	    open_late(tree))
		return -1;
	pr_debug("%zu process%s created and set up", tree->nr_procs,
		 tree->nr_procs > 1 ? "es" : "");
	tree->stats.fork_time_us = now_us() - t;
	return 0;
}

static int restore_steps(struct restore_tree *tree)
{
	/* --inherit-fd first: cryo's fds are checked before it opens any */
	if (external_parse(tree) || validate(tree) || files_prepare(tree))
		return -1;
	pr_debug("images validated");
	tree->stats.validate_time_us = now_us() - tree->t_start;
	raise_fd_limit();
	if (open_channels(tree) || plan_fds(tree) || sysvshm_restore(tree))
		return -1;
	child_setup(tree);
	/* in their cgroups before any memory is filled or thread made */
	if (create_all(tree) || cgroup_restore(tree) || rebuild_all(tree))
		return -1;
	tree->stats.restore_time_us = now_us() - tree->t_start;
	pr_info("restored pid %d in %llu us", tree->procs[0]->child,
		(unsigned long long)tree->stats.restore_time_us);
	write_stats(tree);
	if (tree->opts->display_stats) {
		printf("restore statistics:\n");
		pbprint_text(stdout, &tree->stats.base, 1);
		fflush(stdout);
	}
	return write_pidfile(tree);
}

int cryo_restore(const struct cryo_opts *opts)
{
	struct restore_tree tree;
	int ret, subreaper = 0;

	/* cryo is a subreaper while it creates the tree (create_all); then
	 * back to what its caller had (cryo run is one all along) */
	prctl(PR_GET_CHILD_SUBREAPER, &subreaper);
	checkpoint_init(&tree, opts);
	ret = restore_steps(&tree);
	if (ret) {
		kill_all(&tree);
		cgroup_restore_undo(&tree);
		files_restore_undo(&tree);
		sysvshm_restore_undo(&tree);
		ret = 1;
	}
	prctl(PR_SET_CHILD_SUBREAPER, subreaper);
	if (!ret && !opts->detach) {
		ret = wait_restored(&tree);
	}
	checkpoint_free(&tree);
	return ret;
}
