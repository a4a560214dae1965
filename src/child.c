/*
 * child: what each new process of a restore does itself, in ordinary C,
 * between its creation (clone3 with its pid, by its parent) and the moment
 * cryo seizes it to rebuild its memory:
 *
 *   1. wait until its parent took it in (a kid made by its session's
 *      helper), die with its parent, block every signal and reset every
 *      disposition cryo had;
 *   2. the root: make every description shared between processes and the
 *      shared memory objects, before it forks (tree_restore_kids inherits
 *      them to every process);
 *   3. stage copy-on-write memory (cow.c), create the kids it made before
 *      its setsid(), take the session or group it leads, create its other
 *      kids (each of which runs this again; tree.c), join its group;
 *   4. move the service fds in place, open what its mappings need, place
 *      its fds, set cwd, root and the rest of the task, take its locks;
 *   5. report to cryo, and wait; when some description is opened late
 *      (it names another process), wait for every process to be there,
 *      open those, report again; then wait in read() to be seized.
 * A failure at any step reports the error line to cryo and exits.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "child.h"
#include "creds.h"
#include "cow.h"
#include "files.h"
#include "fs.h"
#include "infra/log.h"
#include "locks.h"
#include "mm.h"
#include "share.h"
#include "shmem.h"
#include "task.h"
#include "tree.h"

#define REPORT_MAX 1024

void child_report(struct restore_tree *tree, pid_t pid, const char *msg)
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

static void child_fail(struct restore_ctx *ctx)
{
	child_report(ctx->tree, ctx->pid, err_text());
	_exit(1);
}

/* Moves cryo's fds that the new process needs to the service slots and
 * closes all the others, except the descriptions shared between processes,
 * which are still to be placed. */
static int setup_service_fds(struct restore_ctx *ctx)
{
	struct restore_tree *tree = ctx->tree;
	/* the executable: mm.c opens it there */
	int src[SVC_VMA_FIRST] = {-1, tree->report[1], tree->tty_fd, tree->hold[0], tree->late[0]};
	unsigned inherit_end = tree->inherit_base + tree->nr_inherit + shmem_nr_slots(tree);

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
	/* a kid forked from here later (a sharer's own kid) finds them there */
	tree->report[1] = ctx->svc_base + SVC_REPORT;
	if (tree->tty_fd >= 0)
		tree->tty_fd = ctx->svc_base + SVC_TTY;
	tree->hold[0] = ctx->svc_base + SVC_HOLD;
	tree->late[0] = ctx->svc_base + SVC_LATE;
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

/* 2: in the root, before it forks. */
static int make_inherited(struct restore_ctx *ctx)
{
	if (ctx->parent)
		return 0;
	return files_restore_inherited(ctx) || shmem_make_all(ctx->tree) ? -1 : 0;
}

/* 4: its own state, once its children exist. */
static int own_steps(struct restore_ctx *ctx)
{
	/* mm first: the shared memory it maps sits with the inherited fds,
	 * which placing the fds closes; locks once the temporary fds are
	 * closed: a close drops POSIX locks */
	bool own_fds = !share_files(ctx);

	/* a kid sharing this fd table is made once its mapped files are open,
	 * and opens its own before the fds are placed (share.c); it places
	 * none, and leaves shared cwd/root/umask to its parent */
	return (own_fds && setup_service_fds(ctx)) || mm_restore_child(ctx) ||
		       tree_restore_sharers(ctx) || share_ready(ctx) ||
		       (own_fds && (files_restore_child(ctx) || locks_restore_child(ctx))) ||
		       share_placed(ctx) || (!share_fs(ctx) && fs_restore_child(ctx)) ||
		       task_restore_child(ctx) || creds_restore_loginuid(ctx)
		   ? -1
		   : 0;
}

static void wait_on(int fd)
{
	char byte;

	while (read(fd, &byte, 1) < 0 && errno == EINTR)
		;
}

/* 5: the descriptions that name other processes, once they all exist. */
static void open_late(struct restore_ctx *ctx)
{
	if (!ctx->tree->has_late)
		return;
	wait_on(ctx->svc_base + SVC_LATE);
	if (!share_files(ctx) && files_restore_late(ctx))
		child_fail(ctx);
	child_report(ctx->tree, ctx->pid, "");
}

static void child_main(struct restore_ctx *ctx, pid_t parent)
{
	sigset_t all;

	tree_wait_adopted(parent);
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (getppid() != parent)
		_exit(1);
	sigfillset(&all);
	sigprocmask(SIG_SETMASK, &all, NULL);
	reset_dispositions();
	log_child(ctx->opts->log_pid ? ctx->pid : 0);
	if (make_inherited(ctx) || cow_stage(ctx) || tree_restore_early(ctx) ||
	    task_restore_session(ctx) || tree_restore_kids(ctx) || tree_join_group(ctx) ||
	    own_steps(ctx) || tree_restore_finish(ctx))
		child_fail(ctx);
	child_report(ctx->tree, ctx->pid, "");
	open_late(ctx);
	wait_on(ctx->svc_base + SVC_HOLD);
	_exit(1); /* cryo gave up on the restore (or the wait failed) */
}

void child_setup(struct restore_tree *tree)
{
	tree->child_main = child_main;
	tree->child_fail = child_fail;
}
