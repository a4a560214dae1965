/*
 * restore: bring a checkpointed process back, with its original pid.
 *
 *   1. read and validate every image (sizes, checksums, ranges, the files
 *      and the pid it needs) before anything is created;
 *   2. create the process with clone3(set_tid = the original pid);
 *   3. in the new process, in ordinary C: place its fds, open the files its
 *      mappings need, map the trampoline, set cwd, root, umask, limits,
 *      personality, name and session; then stop for the restorer;
 *   4. from cryo, by syscalls injected through the trampoline: replace the
 *      address space with the target's, fill its pages, set the mm fields,
 *      rseq, robust list, signal handlers and queued signals, timers, and
 *      credentials last;
 *   5. set the registers and the signal mask, unmap the trampoline (the
 *      task is stopped at that syscall's exit, never back in user mode
 *      there) and detach: the process continues at its saved instruction.
 *   6. without -d, wait for it and exit with its status.
 * If anything fails after step 2, the new process is killed: a restore is
 * complete or leaves nothing behind.
 */
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
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

#include "context.h"
#include "infra/log.h"
#include "infra/ptrace.h"

#define REPORT_MAX 1024

/* ---- 1. read and validate ---- */

static int load_one(struct restore_ctx *ctx, const char *fmt, enum img_kind kind,
		    const ProtobufCMessageDescriptor *desc, void **msg)
{
	struct img_in in;
	char name[64];
	int r;

	snprintf(name, sizeof(name), fmt, ctx->pid);
	if (img_in_load(&ctx->dir, &in, name, kind))
		return -1;
	r = img_in_msg(&in, desc, (ProtobufCMessage **)msg);
	if (r == 0)
		err_set("image %s/%s is empty", ctx->dir.path, name);
	else if (r == 1 && in.pos != in.size)
		r = err_set("image %s/%s has trailing data", ctx->dir.path, name);
	img_in_free(&in);
	return r == 1 ? 0 : -1;
}

/* Loads every record of an image; head, if given, is the first record's type. */
static int load_list(struct restore_ctx *ctx, const char *fmt, enum img_kind kind,
		     const ProtobufCMessageDescriptor *head, const ProtobufCMessageDescriptor *desc,
		     void ***out, size_t *n)
{
	struct img_in in;
	ProtobufCMessage *msg;
	char name[64];
	int r;

	*n = 0;
	*out = NULL;
	snprintf(name, sizeof(name), fmt, ctx->pid);
	if (img_in_load(&ctx->dir, &in, name, kind))
		return -1;
	if (head) {
		r = img_in_msg(&in, head, &msg);
		if (r != 1) {
			img_in_free(&in);
			return r ? -1 : err_set("image %s/%s is empty", ctx->dir.path, name);
		}
		protobuf_c_message_free_unpacked(msg, NULL);
	}
	while ((r = img_in_msg(&in, desc, &msg)) == 1) {
		void **grown = realloc(*out, (*n + 1) * sizeof(void *));
		if (!grown) {
			r = err_set("out of memory");
			break;
		}
		*out = grown;
		(*out)[(*n)++] = msg;
	}
	img_in_free(&in);
	return r;
}

static int load_images(struct restore_ctx *ctx)
{
	const InventoryEntry *inv = ctx->dir.inventory;

	if (inv->n_pids != 1 || inv->root_pid != inv->pids[0])
		return err_set("checkpoint %s holds %zu processes: only single processes are "
			       "supported yet",
			       ctx->dir.path, inv->n_pids);
	ctx->pid = inv->root_pid;
	if (load_one(ctx, "core-%d.img", IMG_CORE, &core_entry__descriptor, (void **)&ctx->core) ||
	    load_one(ctx, "mm-%d.img", IMG_MM, &mm_entry__descriptor, (void **)&ctx->mm) ||
	    load_one(ctx, "fs-%d.img", IMG_FS, &fs_entry__descriptor, (void **)&ctx->fs) ||
	    load_list(ctx, "pagemap-%d.img", IMG_PAGEMAP, &pagemap_head__descriptor,
		      &pagemap_entry__descriptor, (void ***)&ctx->runs, &ctx->nr_runs) ||
	    load_list(ctx, "files.img", IMG_FILES, NULL, &file_entry__descriptor,
		      (void ***)&ctx->files, &ctx->nr_files) ||
	    load_list(ctx, "fdinfo-%d.img", IMG_FDINFO, NULL, &fd_entry__descriptor,
		      (void ***)&ctx->fds, &ctx->nr_fds) ||
	    load_list(ctx, "pipes.img", IMG_PIPES, NULL, &pipe_entry__descriptor,
		      (void ***)&ctx->pipes, &ctx->nr_pipes))
		return -1;
	if (ctx->core->pid != ctx->pid)
		return err_set("core-%d.img describes pid %d", ctx->pid, ctx->core->pid);
	return 0;
}

static int validate(struct restore_ctx *ctx)
{
	char missing[512];

	kerndat_probe(&ctx->kd);
	if (kerndat_missing(&ctx->kd, missing, sizeof(missing)))
		return err_set("this kernel lacks what cryo needs: %s (see cryo check)", missing);
	if (img_dir_open(&ctx->dir, ctx->opts->images_dir) || load_images(ctx))
		return -1;
	return task_validate(ctx) || threads_validate(ctx) || creds_validate(ctx) ||
		       mm_validate(ctx) || pages_validate(ctx) || files_validate(ctx) ||
		       fs_validate(ctx)
		   ? -1
		   : 0;
}

/* ---- 3. in the new process ---- */

void restore_child_fail(struct restore_ctx *ctx)
{
	const char *msg = err_text();

	if (write(ctx->svc_base + SVC_REPORT, msg, strlen(msg)) < 0)
		_exit(2);
	_exit(1);
}

/* Moves cryo's fds that the new process needs to the service slots and
 * closes all the others. */
static int setup_service_fds(struct restore_ctx *ctx, int report_fd)
{
	int src[SVC_VMA_FIRST] = {ctx->pages_fd, -1, report_fd, ctx->tty_fd};

	for (int i = 0; i < SVC_VMA_FIRST; i++) {
		if (src[i] < 0)
			continue;
		src[i] = fcntl(src[i], F_DUPFD_CLOEXEC, ctx->stage_base);
		if (src[i] < 0)
			return err_errno("cannot set up the restorer's fds");
	}
	for (int i = 0; i < SVC_VMA_FIRST; i++)
		if (src[i] >= 0 && dup2(src[i], ctx->svc_base + i) < 0)
			return err_errno("cannot set up the restorer's fds");
	if (syscall(SYS_close_range, 0, ctx->svc_base - 1, 0) ||
	    syscall(SYS_close_range, ctx->svc_base + SVC_VMA_FIRST, ~0U, 0))
		return err_errno("cannot close cryo's fds");
	return 0;
}

static int child_steps(struct restore_ctx *ctx)
{
	if (files_restore_child(ctx) || mm_restore_child(ctx) || fs_restore_child(ctx) ||
	    task_restore_child(ctx))
		return -1;
	return 0;
}

/* Handlers cryo installed (a sanitizer's, say) must not survive into the
 * restored process: the image holds only dispositions that were not SIG_DFL. */
static void reset_dispositions(void)
{
	/* the kernel's struct, all zero: libc's sigaction() would add its restorer */
	uint64_t dfl[4] = {0};

	for (int sig = 1; sig <= 64; sig++)
		if (sig != SIGKILL && sig != SIGSTOP)
			syscall(SYS_rt_sigaction, sig, dfl, NULL, 8);
}

static void child_main(struct restore_ctx *ctx, pid_t parent, int report_fd)
{
	sigset_t all;

	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (getppid() != parent)
		_exit(1);
	sigfillset(&all);
	sigprocmask(SIG_SETMASK, &all, NULL);
	reset_dispositions();
	log_fini();
	if (setup_service_fds(ctx, report_fd)) {
		const char *msg = err_text();
		if (write(report_fd, msg, strlen(msg)) < 0)
			_exit(2);
		_exit(1);
	}
	if (child_steps(ctx))
		restore_child_fail(ctx);
	if (write(ctx->svc_base + SVC_REPORT, "", 1) != 1 || ptrace(PTRACE_TRACEME, 0, 0, 0))
		_exit(1);
	raise(SIGSTOP);
	_exit(1); /* not reached: the restorer replaces this process's memory */
}

/* ---- 2. create the process ---- */

static int create_process(struct restore_ctx *ctx, int report[2])
{
	pid_t tid = ctx->pid, parent = getpid();
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
			    ctx->pid);
		return err_errno("cannot create pid %d (clone3 with set_tid)", ctx->pid);
	}
	if (pid == 0) {
		close(report[0]);
		child_main(ctx, parent, report[1]);
	}
	ctx->child = pid;
	close(report[1]);
	report[1] = -1;
	return 0;
}

/* Waits for the new process to finish its own part and stop. */
static int wait_child_ready(struct restore_ctx *ctx, int report_fd)
{
	char msg[REPORT_MAX + 1];
	ssize_t n = read(report_fd, msg, REPORT_MAX);
	int status;

	if (n < 0)
		return err_errno("reading the report of pid %d", ctx->pid);
	msg[n > 0 ? n : 0] = '\0';
	if (n == 0 || msg[0])
		return err_set("restoring pid %d: %s", ctx->pid,
			       n ? msg : "the new process died while setting itself up");
	if (ptrace_wait_stop(ctx->child, &status) < 0)
		return -1;
	if (ptrace(PTRACE_SETOPTIONS, ctx->child, 0, PTRACE_O_EXITKILL))
		return err_errno("cannot set ptrace options on pid %d", ctx->pid);
	return 0;
}

/* ---- 4, 5. rebuild from the restorer ---- */

uint64_t restore_scratch_put(struct restore_ctx *ctx, size_t off, const void *data, size_t len)
{
	uint64_t addr = ctx->tramp + 4096 + off;

	if (off + len > ctx->tramp_len / 2 - 4096) {
		err_set("restorer scratch overflow (%zu bytes)", off + len);
		return 0;
	}
	if (inject_write(ctx->child, addr, data, len))
		return 0;
	return addr;
}

static int release_child(struct restore_ctx *ctx)
{
	if (inject_call(&ctx->inj, "unmapping the trampoline", SYS_munmap, ctx->tramp,
			ctx->tramp_len, 0, 0, 0, 0, NULL))
		return -1;
	return threads_restore_release(ctx);
}

static int rebuild(struct restore_ctx *ctx)
{
	unsigned long long t = now_us();

	if (inject_begin(&ctx->inj, ctx->child, ctx->tramp))
		return -1;
	if (task_restore_unregister(ctx) || mm_restore(ctx) || pages_restore(ctx) ||
	    mm_restore_finish(ctx))
		return -1;
	ctx->stats.memrestore_time_us = now_us() - t;
	if (threads_restore_create(ctx) || task_restore(ctx) || signals_restore(ctx) ||
	    timers_restore(ctx) || threads_restore(ctx))
		return -1;
	if (inject_call(&ctx->inj, "closing the restorer's fds", SYS_close_range, ctx->svc_base,
			~0U, 0, 0, 0, 0, NULL))
		return -1;
	if (threads_restore_creds(ctx))
		return -1;
	return release_child(ctx);
}

/* ---- 6 ---- */

static int write_pidfile(struct restore_ctx *ctx)
{
	FILE *f;

	if (!ctx->opts->pidfile)
		return 0;
	f = fopen(ctx->opts->pidfile, "we");
	if (!f || fprintf(f, "%d\n", ctx->child) < 0 || fclose(f))
		return err_errno("cannot write pid file %s", ctx->opts->pidfile);
	return 0;
}

static void write_stats(struct restore_ctx *ctx)
{
	struct img_dir d = ctx->dir;
	struct img_out out;

	d.sync = false;
	d.nr_files = 0;
	if (img_out_open(&d, &out, "stats-restore", IMG_STATS) ||
	    img_out_msg(&out, &ctx->stats.base) || img_out_close(&out)) {
		img_out_discard(&out);
		return; /* statistics are best effort: the restore itself succeeded */
	}
	char part[96];
	snprintf(part, sizeof(part), ".stats-restore.part");
	renameat(d.dirfd, part, d.dirfd, "stats-restore");
}

static int wait_restored(struct restore_ctx *ctx)
{
	int status;

	while (waitpid(ctx->child, &status, 0) < 0) {
		if (errno != EINTR)
			return err_errno("waiting for pid %d", ctx->child);
	}
	tty_restore_return(ctx);
	if (WIFSIGNALED(status))
		return 128 + WTERMSIG(status);
	return WEXITSTATUS(status);
}

static void raise_fd_limit(void)
{
	struct rlimit rl;

	if (!getrlimit(RLIMIT_NOFILE, &rl) && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
}

static int restore_steps(struct restore_ctx *ctx)
{
	int report[2] = {-1, -1}, ret = -1;
	unsigned long long t;

	if (validate(ctx) || tty_restore_prepare(ctx))
		return -1;
	ctx->stats.validate_time_us = now_us() - ctx->t_start;
	raise_fd_limit();
	ctx->svc_base = files_max_fd(ctx) + 1;
	ctx->stage_base = ctx->svc_base + SVC_VMA_FIRST + ctx->mm->n_vmas + 1;
	if (mm_restore_plan(ctx))
		return -1;
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, report))
		return err_errno("cannot create a socket pair");
	t = now_us();
	if (create_process(ctx, report) || wait_child_ready(ctx, report[0]))
		goto out;
	ctx->stats.fork_time_us = now_us() - t;
	if (rebuild(ctx))
		goto out;
	ctx->stats.restore_time_us = now_us() - ctx->t_start;
	pr_info("restored pid %d in %llu us", ctx->child,
		(unsigned long long)ctx->stats.restore_time_us);
	write_stats(ctx);
	ret = write_pidfile(ctx);
out:
	close(report[0]);
	if (report[1] >= 0)
		close(report[1]);
	if (ret)
		threads_restore_kill(ctx);
	return ret;
}

static void free_list(void **msgs, size_t n)
{
	for (size_t i = 0; i < n; i++)
		protobuf_c_message_free_unpacked(msgs[i], NULL);
	free(msgs);
}

static void free_images(struct restore_ctx *ctx)
{
	if (ctx->core)
		core_entry__free_unpacked(ctx->core, NULL);
	if (ctx->mm)
		mm_entry__free_unpacked(ctx->mm, NULL);
	if (ctx->fs)
		fs_entry__free_unpacked(ctx->fs, NULL);
	free_list((void **)ctx->runs, ctx->nr_runs);
	free_list((void **)ctx->files, ctx->nr_files);
	free_list((void **)ctx->fds, ctx->nr_fds);
	free_list((void **)ctx->pipes, ctx->nr_pipes);
	free(ctx->vma_fd);
	pages_restore_free(ctx);
	threads_restore_free(ctx);
	if (ctx->tty_fd >= 0)
		close(ctx->tty_fd);
}

int restore_verify_images(const struct cryo_opts *opts)
{
	struct restore_ctx ctx = {.opts = opts, .pages_fd = -1, .tty_fd = -1};
	int ret;

	ctx.dir.dirfd = -1;
	ret = img_dir_open(&ctx.dir, opts->images_dir) || load_images(&ctx) || pages_validate(&ctx);
	free_images(&ctx);
	img_dir_close(&ctx.dir);
	return ret ? -1 : 0;
}

int cryo_restore(const struct cryo_opts *opts)
{
	struct restore_ctx ctx = {.opts = opts, .pages_fd = -1, .tty_fd = -1};
	int ret;

	ctx.dir.dirfd = -1;
	ctx.t_start = now_us();
	restore_stats__init(&ctx.stats);
	ret = restore_steps(&ctx);
	if (!ret && !opts->detach)
		ret = wait_restored(&ctx);
	else if (ret)
		ret = 1;
	free_images(&ctx);
	img_dir_close(&ctx.dir);
	return ret;
}
