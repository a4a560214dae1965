/*
 * restore: bring a checkpointed process back, with its original pid.
 *
 *   1. read and validate every image (sizes, checksums, ranges, the files
 *      and the pid it needs) before anything is created; the page data's
 *      checksums are checked on threads meanwhile, until step 5;
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
#include <poll.h>
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

#define REPORT_MAX	  1024
#define REPORT_TIMEOUT_MS 60000

/* ---- 1. read and validate ---- */

static int load_one(struct restore_ctx *ctx, const char *fmt, enum img_kind kind,
		    const ProtobufCMessageDescriptor *desc, void **msg)
{
	struct img_in in;
	char name[64];
	int r;

	snprintf(name, sizeof(name), fmt, ctx->pid);
	if (img_in_load(&ctx->tree->dir, &in, name, kind))
		return -1;
	r = img_in_msg(&in, desc, (ProtobufCMessage **)msg);
	if (r == 0)
		err_set("image %s/%s is empty", ctx->tree->dir.path, name);
	else if (r == 1 && in.pos != in.size)
		r = err_set("image %s/%s has trailing data", ctx->tree->dir.path, name);
	img_in_free(&in);
	return r == 1 ? 0 : -1;
}

/* Loads every record of an image; head, if given, is the first record's type. */
static int load_list(struct restore_ctx *ctx, const char *fmt, enum img_kind kind,
		     const ProtobufCMessageDescriptor *head, const ProtobufCMessageDescriptor *desc,
		     void ***out, size_t *n)
{
	char name[64];

	snprintf(name, sizeof(name), fmt, ctx->pid);
	return img_load_list(&ctx->tree->dir, name, kind, head, NULL, desc, out, n);
}

/* files.img and pipes.img are the tree's: parsed once (a tree of hundreds
 * of processes parsed them hundreds of times), each process points at them. */
static int load_shared_lists(struct restore_ctx *ctx)
{
	struct restore_tree *tree = ctx->tree;

	if (!tree->lists_loaded &&
	    (load_list(ctx, "files.img", IMG_FILES, NULL, &file_entry__descriptor,
		       (void ***)&tree->files, &tree->nr_files) ||
	     load_list(ctx, "pipes.img", IMG_PIPES, NULL, &pipe_entry__descriptor,
		       (void ***)&tree->pipes, &tree->nr_pipes)))
		return -1;
	tree->lists_loaded = true;
	ctx->files = tree->files;
	ctx->nr_files = tree->nr_files;
	ctx->pipes = tree->pipes;
	ctx->nr_pipes = tree->nr_pipes;
	return 0;
}

static int load_images(struct restore_ctx *ctx)
{
	if (load_one(ctx, "core-%d.img", IMG_CORE, &core_entry__descriptor, (void **)&ctx->core))
		return -1;
	if (ctx->core->pid != ctx->pid)
		return err_set("core-%d.img describes pid %d", ctx->pid, ctx->core->pid);
	ctx->zombie = !strcmp(ctx->core->state, "Z");
	if (ctx->zombie)
		return 0;
	if (load_one(ctx, "mm-%d.img", IMG_MM, &mm_entry__descriptor, (void **)&ctx->mm) ||
	    load_one(ctx, "fs-%d.img", IMG_FS, &fs_entry__descriptor, (void **)&ctx->fs) ||
	    load_list(ctx, "pagemap-%d.img", IMG_PAGEMAP, &pagemap_head__descriptor,
		      &pagemap_entry__descriptor, (void ***)&ctx->runs, &ctx->nr_runs) ||
	    load_list(ctx, "fdinfo-%d.img", IMG_FDINFO, NULL, &fd_entry__descriptor,
		      (void ***)&ctx->fds, &ctx->nr_fds) ||
	    load_shared_lists(ctx))
		return -1;
	return 0;
}

static struct restore_ctx *new_proc(struct restore_tree *tree, pid_t pid)
{
	struct restore_ctx *ctx = calloc(1, sizeof(*ctx));

	if (!ctx)
		return NULL;
	ctx->opts = tree->opts;
	ctx->tree = tree;
	ctx->pid = pid;
	ctx->pages_fd = -1;
	ctx->tty_fd = -1;
	tree->procs[tree->nr_procs++] = ctx;
	return ctx;
}

/* Every process the inventory lists, root first, parents before children. */
static int load_tree(struct restore_tree *tree)
{
	const InventoryEntry *inv = tree->dir.inventory;

	if (!inv->n_pids || inv->root_pid != inv->pids[0])
		return err_set("checkpoint %s: inventory does not start with its root pid",
			       tree->dir.path);
	tree->procs = calloc(inv->n_pids, sizeof(*tree->procs));
	if (!tree->procs)
		return err_set("out of memory");
	for (size_t i = 0; i < inv->n_pids; i++) {
		struct restore_ctx *ctx = new_proc(tree, inv->pids[i]);
		if (!ctx)
			return err_set("out of memory");
		if (load_images(ctx))
			return -1;
	}
	return tree_restore_plan(tree);
}

static int validate_proc(struct restore_ctx *ctx)
{
	if (task_validate(ctx))
		return -1;
	if (ctx->zombie)
		return 0;
	return threads_validate(ctx) || creds_validate(ctx) || mm_validate(ctx) ||
		       pages_validate(ctx) || files_validate(ctx) || fs_validate(ctx)
		   ? -1
		   : 0;
}

static int validate(struct restore_tree *tree)
{
	char missing[512];

	kerndat_probe(&tree->kd);
	if (kerndat_missing(&tree->kd, missing, sizeof(missing)))
		return err_set("this kernel lacks what cryo needs: %s (see cryo check)", missing);
	if (img_dir_open(&tree->dir, tree->opts->images_dir) || load_tree(tree))
		return -1;
	for (size_t i = 0; i < tree->nr_procs; i++)
		if (validate_proc(tree->procs[i]))
			return -1;
	return sysvshm_validate(tree);
}

/* ---- 3. in the new processes ---- */

/* Reports to cryo: the pid, then an error line, or nothing when ready. */
void restore_report(struct restore_tree *tree, pid_t pid, const char *msg)
{
	char buf[REPORT_MAX];
	size_t len = strlen(msg);

	if (len > sizeof(buf) - sizeof(pid))
		len = sizeof(buf) - sizeof(pid);
	memcpy(buf, &pid, sizeof(pid));
	memcpy(buf + sizeof(pid), msg, len);
	if (send(tree->report[1], buf, sizeof(pid) + len, MSG_NOSIGNAL) < 0)
		_exit(2);
}

void restore_child_fail(struct restore_ctx *ctx)
{
	restore_report(ctx->tree, ctx->pid, err_text());
	_exit(1);
}

/* Moves cryo's fds that the new process needs to the service slots and
 * closes all the others, except the descriptions shared between processes,
 * which are still to be placed. */
static int setup_service_fds(struct restore_ctx *ctx)
{
	struct restore_tree *tree = ctx->tree;
	/* the executable: mm.c opens it there */
	int src[SVC_VMA_FIRST] = {-1, tree->report[1], ctx->tty_fd, tree->hold[0]};
	unsigned inherit_end = tree->inherit_base + tree->nr_inherit + tree->nr_shmem;

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
	tree->report[1] = ctx->svc_base + SVC_REPORT;
	if (syscall(SYS_close_range, 0, ctx->svc_base - 1, 0) ||
	    syscall(SYS_close_range, ctx->svc_base + SVC_VMA_FIRST, tree->inherit_base - 1, 0) ||
	    syscall(SYS_close_range, inherit_end, ~0U, 0))
		return err_errno("cannot close cryo's fds");
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

/* Its own part of the restore, in the new process, once its children exist. */
static int child_steps(struct restore_ctx *ctx)
{
	/* mm first: the shared memory it maps sits with the inherited fds,
	 * which placing the fds closes */
	return setup_service_fds(ctx) || mm_restore_child(ctx) || files_restore_child(ctx) ||
		       fs_restore_child(ctx) || task_restore_child(ctx)
		   ? -1
		   : 0;
}

/* The new process: ids, children, its own state; then it waits, blocked
 * in read(), for cryo to seize it and rebuild its memory. */
void restore_child_main(struct restore_ctx *ctx, pid_t parent)
{
	sigset_t all;
	char byte;

	tree_wait_adopted(ctx, parent);
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (getppid() != parent)
		_exit(1);
	sigfillset(&all);
	sigprocmask(SIG_SETMASK, &all, NULL);
	reset_dispositions();
	log_fini();
	if ((!ctx->parent && tree_restore_inherited(ctx)) || task_restore_session(ctx) ||
	    cow_stage(ctx) || tree_restore_kids(ctx) || child_steps(ctx))
		restore_child_fail(ctx);
	restore_report(ctx->tree, ctx->pid, "");
	while (read(ctx->svc_base + SVC_HOLD, &byte, 1) < 0 && errno == EINTR)
		;
	_exit(1); /* cryo gave up on the restore (or the wait failed) */
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
		restore_child_main(root, parent);
	}
	root->child = pid;
	return 0;
}

/* Waits until every live process has set itself up (or one failed). */
static int wait_reports(struct restore_tree *tree)
{
	size_t want = 0;

	for (size_t i = 0; i < tree->nr_procs; i++)
		want += !tree->procs[i]->zombie;
	while (want) {
		char msg[REPORT_MAX + 1];
		struct pollfd pfd = {.fd = tree->report[0], .events = POLLIN};
		struct restore_ctx *ctx;
		pid_t pid;
		int r = poll(&pfd, 1, REPORT_TIMEOUT_MS);
		ssize_t n;
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return err_set("the new processes did not report within %d s",
				       REPORT_TIMEOUT_MS / 1000);
		n = recv(tree->report[0], msg, REPORT_MAX, 0);
		if (n < (ssize_t)sizeof(pid))
			return err_errno("reading the reports of the new processes");
		msg[n] = '\0';
		memcpy(&pid, msg, sizeof(pid));
		ctx = tree_proc(tree, pid);
		if (n > (ssize_t)sizeof(pid))
			return err_set("restoring pid %d: %s", pid, msg + sizeof(pid));
		if (!ctx)
			return err_set("a report from unknown pid %d", pid);
		ctx->child = pid;
		want--;
	}
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

static int rebuild(struct restore_ctx *ctx)
{
	unsigned long long t = now_us();

	if (seize(ctx) || inject_begin(&ctx->inj, ctx->child, ctx->tramp))
		return -1;
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
	if (threads_restore_create(ctx) || task_restore(ctx) || signals_restore(ctx) ||
	    timers_restore(ctx) || threads_restore(ctx))
		return -1;
	if (inject_call(&ctx->inj, "closing the restorer's fds", SYS_close_range, ctx->svc_base,
			~0U, 0, 0, 0, 0, NULL))
		return -1;
	pr_debug("pid %d: threads, signals, timers and registrations restored", ctx->pid);
	return threads_restore_creds(ctx);
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

	/* a private list of written files: the checkpoint's own is not touched */
	d.sync = false;
	d.files = NULL;
	d.nr_files = d.cap_files = 0;
	if (img_out_open(&d, &out, "stats-restore", IMG_STATS) ||
	    img_out_msg(&out, &tree->stats.base) || img_out_close(&out))
		img_out_discard(&out); /* best effort: the restore itself succeeded */
	else
		renameat(d.dirfd, ".stats-restore.part", d.dirfd, "stats-restore");
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
	tty_restore_return(root);
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

/* Fd numbers for each process's service and temporary fds. */
static int plan_fds(struct restore_tree *tree)
{
	/* what is shared first: it decides which mappings use inherited fds */
	if (tree_plan_inherited(tree) || cow_plan(tree))
		return -1;
	for (size_t i = 0; i < tree->nr_procs; i++) {
		struct restore_ctx *ctx = tree->procs[i];
		if (ctx->zombie)
			continue;
		ctx->tty_fd = tree->procs[0]->tty_fd;
		ctx->svc_base = files_max_fd(ctx) + 1;
		if (mm_restore_plan(ctx)) /* sets stage_base, above its mapped files' fds */
			return -1;
	}
	return tree_plan_inherit_base(tree);
}

static int rebuild_all(struct restore_tree *tree)
{
	unsigned long long t = now_us();

	for (size_t i = 0; i < tree->nr_procs; i++)
		if (!tree->procs[i]->zombie && rebuild(tree->procs[i]))
			return -1;
	if (pages_verify_finish(tree) || sysvshm_mark_removed(tree))
		return -1;
	/* children first: a parent never runs before its children are complete */
	for (size_t i = tree->nr_procs; i-- > 0;)
		if (!tree->procs[i]->zombie && release_child(tree->procs[i]))
			return -1;
	pr_info("rebuilt %zu process%s in %llu us", tree->nr_procs, tree->nr_procs > 1 ? "es" : "",
		now_us() - t);
	return 0;
}

static int restore_steps(struct restore_tree *tree)
{
	unsigned long long t;

	if (validate(tree) || tty_restore_prepare(tree->procs[0]))
		return -1;
	pr_debug("images validated");
	tree->stats.validate_time_us = now_us() - tree->t_start;
	raise_fd_limit();
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, tree->report) ||
	    pipe2(tree->hold, O_CLOEXEC))
		return err_errno("cannot create the restorer's channels");
	if (plan_fds(tree) || sysvshm_restore(tree))
		return -1;
	/* orphans of a failed restore come back to cryo to be reaped */
	prctl(PR_SET_CHILD_SUBREAPER, 1);
	t = now_us();
	/* the checksums are checked meanwhile: after the root's clone3, which
	 * copies cryo's memory but not its threads */
	if (create_root(tree) || pages_verify_start(tree, true) || wait_reports(tree))
		return -1;
	pr_debug("%zu process%s created and set up", tree->nr_procs,
		 tree->nr_procs > 1 ? "es" : "");
	tree->stats.fork_time_us = now_us() - t;
	if (rebuild_all(tree))
		return -1;
	prctl(PR_SET_CHILD_SUBREAPER, 0);
	tree->stats.restore_time_us = now_us() - tree->t_start;
	pr_info("restored pid %d in %llu us", tree->procs[0]->child,
		(unsigned long long)tree->stats.restore_time_us);
	write_stats(tree);
	return write_pidfile(tree);
}

static void free_list(void **msgs, size_t n)
{
	for (size_t i = 0; i < n; i++)
		protobuf_c_message_free_unpacked(msgs[i], NULL);
	free(msgs);
}

static void free_proc(struct restore_ctx *ctx)
{
	if (ctx->core)
		core_entry__free_unpacked(ctx->core, NULL);
	if (ctx->mm)
		mm_entry__free_unpacked(ctx->mm, NULL);
	if (ctx->fs)
		fs_entry__free_unpacked(ctx->fs, NULL);
	free_list((void **)ctx->runs, ctx->nr_runs);
	free_list((void **)ctx->fds, ctx->nr_fds); /* files and pipes: the tree's */
	ghost_restore_free(ctx);
	locks_restore_free(ctx);
	free(ctx->vma_fd);
	cow_free(ctx);
	free(ctx->kids);
	free(ctx->helpers);
	free(ctx->sessions);
	pages_restore_free(ctx);
	threads_restore_free(ctx);
	free(ctx);
}

static void free_tree(struct restore_tree *tree)
{
	pages_verify_stop(tree); /* its threads read the mapped images */
	if (tree->nr_procs && tree->procs[0]->tty_fd >= 0)
		close(tree->procs[0]->tty_fd);
	for (size_t i = 0; i < tree->nr_procs; i++)
		free_proc(tree->procs[i]);
	free(tree->procs);
	free(tree->by_pid);
	free_list((void **)tree->files, tree->nr_files);
	free_list((void **)tree->pipes, tree->nr_pipes);
	free(tree->inherit_ids);
	sysvshm_restore_free(tree);
	free(tree->shmem);
	for (int i = 0; i < 2; i++) {
		if (tree->report[i] >= 0)
			close(tree->report[i]);
		if (tree->hold[i] >= 0)
			close(tree->hold[i]);
	}
	img_dir_close(&tree->dir);
}

static void init_tree(struct restore_tree *tree, const struct cryo_opts *opts)
{
	memset(tree, 0, sizeof(*tree));
	tree->opts = opts;
	tree->dir.dirfd = -1;
	tree->report[0] = tree->report[1] = tree->hold[0] = tree->hold[1] = -1;
	tree->t_start = now_us();
	restore_stats__init(&tree->stats);
}

int restore_verify_images(const struct cryo_opts *opts)
{
	struct restore_tree tree;
	int ret;

	init_tree(&tree, opts);
	ret = img_dir_open(&tree.dir, opts->images_dir) || load_tree(&tree) ||
	      sysvshm_validate(&tree);
	for (size_t i = 0; !ret && i < tree.nr_procs; i++)
		if (!tree.procs[i]->zombie)
			ret = pages_validate(tree.procs[i]);
	if (!ret)
		ret = pages_verify_start(&tree, false) || pages_verify_finish(&tree);
	free_tree(&tree);
	return ret ? -1 : 0;
}

int cryo_restore(const struct cryo_opts *opts)
{
	struct restore_tree tree;
	int ret;

	init_tree(&tree, opts);
	ret = restore_steps(&tree);
	if (ret) {
		kill_all(&tree);
		sysvshm_restore_undo(&tree);
		prctl(PR_SET_CHILD_SUBREAPER, 0);
		ret = 1;
	} else if (!opts->detach) {
		ret = wait_restored(&tree);
	}
	free_tree(&tree);
	return ret;
}
