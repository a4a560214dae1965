/*
 * tree: the processes of a checkpoint and how they hang together: parent
 * and child, process group, session, and zombies.
 *
 * Dump: the root is frozen first, then its children, then theirs (breadth
 * first): a frozen process cannot fork, so once a process is frozen its
 * list of children is final, and every process born while the freeze runs
 * is caught. A zombie child cannot be seized; only its ids and its wait
 * status are kept, so that its parent can still wait for it.
 *
 * Restore: every process is created by its own parent, with clone3 and
 * set_tid, so parent links and exit signals are the original ones (the
 * root is created by cryo); each new process runs the tree's child_main
 * (child.c), which calls back here to create its own kids. Before creating its children a process
 * takes its session and process group, so that children inherit them as they did; a process whose
 * group is led by a sibling joins it after the leader exists (leaders are created first). A group
 * whose leader has exited is made by a helper: the parent creates a process with the leader's pid
 * that makes the group, puts the members in it, then kills and reaps the helper. A zombie is
 * re-created as a child that exits at once with the saved status, and its parent swallows the
 * SIGCHLD these cause. A session whose leader has exited is made by a helper too: the parent (a
 * subreaper, or the kids would not be its own) creates a process with the leader's pid that calls
 * setsid(), creates the kids of that session and exits; the kids come back to the parent as the
 * originals once did.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <linux/sched.h>

#include "infra/log.h"
#include "task.h"
#include "threads.h"
#include "tree.h"

/* ---- dump ---- */

static struct dump_ctx *new_proc(struct dump_tree *tree, pid_t pid)
{
	struct dump_ctx **grown, *ctx;

	grown = realloc(tree->procs, (tree->nr_procs + 1) * sizeof(*grown));
	if (!grown)
		return NULL;
	tree->procs = grown;
	ctx = calloc(1, sizeof(*ctx));
	if (!ctx)
		return NULL;
	ctx->core = calloc(1, sizeof(*ctx->core));
	ctx->mm = calloc(1, sizeof(*ctx->mm));
	if (!ctx->core || !ctx->mm) {
		free(ctx->core);
		free(ctx->mm);
		free(ctx);
		return NULL;
	}
	core_entry__init(ctx->core);
	mm_entry__init(ctx->mm);
	ctx->opts = tree->opts;
	ctx->tree = tree;
	ctx->pid = pid;
	ctx->pidfd = -1;
	ctx->track_uffd = -1;
	tree->procs[tree->nr_procs++] = ctx;
	return ctx;
}

static bool is_zombie(pid_t pid, struct proc_stat *st)
{
	return !proc_read_stat(pid, st) && (st->state == 'Z' || st->state == 'X');
}

/* Checks that need nothing frozen. */
static int check_proc(struct dump_ctx *ctx)
{
	if (proc_read_status(ctx->pid, &ctx->status))
		return -1;
	if (ctx->status.tracer_pid && ctx->status.tracer_pid != getpid())
		return err_set("pid %d is already traced by pid %d", ctx->pid,
			       ctx->status.tracer_pid);
	if (ctx->status.nr_nspid > 1)
		return err_set("pid %d lives in a nested pid namespace: not supported yet",
			       ctx->pid);
	return 0;
}

static int freeze_proc(struct dump_ctx *ctx)
{
	ctx->pidfd = syscall(SYS_pidfd_open, ctx->pid, 0);
	if (ctx->pidfd < 0) {
		if (errno == ESRCH)
			return err_set("no process with pid %d", ctx->pid);
		return err_errno("cannot open pid %d", ctx->pid);
	}
	if (proc_read_stat(ctx->pid, &ctx->stat))
		return -1;
	ctx->state = ctx->stat.state;
	if (ctx->state == 'Z' || ctx->state == 'X') {
		if (ctx == ctx->tree->procs[0])
			return err_set("pid %d is a zombie: nothing to checkpoint", ctx->pid);
		ctx->zombie = true;
		return proc_read_status(ctx->pid, &ctx->status);
	}
	if (ctx->state == 't')
		return err_set("pid %d is stopped by its tracer: cannot be checkpointed", ctx->pid);
	if (check_proc(ctx))
		return -1;
	if (threads_freeze(ctx)) {
		/* it exited while being frozen: a zombie now, kept as one */
		if (ctx != ctx->tree->procs[0] && ctx->nr_threads == 0 &&
		    is_zombie(ctx->pid, &ctx->stat)) {
			err_clear();
			ctx->zombie = true;
			return proc_read_status(ctx->pid, &ctx->status);
		}
		return -1;
	}
	return 0;
}

int tree_freeze(struct dump_tree *tree)
{
	if (!new_proc(tree, tree->opts->pid))
		return err_set("out of memory");
	for (int i = 0; i < tree->nr_procs; i++) {
		struct dump_ctx *ctx = tree->procs[i];
		pid_t *kids;
		int n;
		if (freeze_proc(ctx))
			return -1;
		if (ctx->zombie)
			continue;
		n = proc_list_children(ctx->pid, &kids);
		if (n < 0)
			return -1;
		for (int k = 0; k < n; k++)
			if (!new_proc(tree, kids[k])) {
				free(kids);
				return err_set("out of memory");
			}
		free(kids);
	}
	return tree_check_ids(tree);
}

static bool in_tree(const struct dump_tree *tree, pid_t pid)
{
	for (int i = 0; i < tree->nr_procs; i++)
		if (tree->procs[i]->pid == pid)
			return true;
	return false;
}

static pid_t parent_session(const struct dump_tree *tree, const struct proc_stat *st)
{
	for (int i = 0; i < tree->nr_procs; i++)
		if (tree->procs[i]->pid == st->ppid)
			return tree->procs[i]->stat.session;
	return 0;
}

/* Every group and session must be restorable: led by a process of the
 * tree, or the root's own (which the restored root joins from cryo). */
int tree_check_ids(struct dump_tree *tree)
{
	const struct proc_stat *root = &tree->procs[0]->stat;

	for (int i = 0; i < tree->nr_procs; i++) {
		struct dump_ctx *ctx = tree->procs[i];
		if (!ctx->zombie && proc_read_stat(ctx->pid, &ctx->stat))
			return -1;
		const struct proc_stat *st = &ctx->stat;
		if (i == 0)
			continue;
		/* groups and sessions whose leader is gone are made again by a
		 * helper; a live leader must be where the process can join it */
		if (st->session != root->session && st->session != ctx->pid &&
		    in_tree(tree, st->session) && st->session != parent_session(tree, st))
			return err_set("pid %d is in session %d, but its parent %d is not: it "
				       "cannot be made again in that session",
				       ctx->pid, st->session, st->ppid);
	}
	return 0;
}

/* A zombie: ids, name and wait status; nothing else is left of it. */
int tree_dump_zombie(struct dump_ctx *ctx)
{
	CoreEntry *core = ctx->core;
	CredsEntry *c = malloc(sizeof(*c));

	if (!c)
		return err_set("out of memory");
	creds_entry__init(c);
	core->creds = c;
	core->pid = ctx->pid;
	core->ppid = ctx->stat.ppid;
	core->pgid = ctx->stat.pgrp;
	core->sid = ctx->stat.session;
	core->comm = strdup(ctx->stat.comm);
	core->state = strdup("Z");
	if (!core->comm || !core->state)
		return err_set("out of memory");
	core->exit_signal = ctx->stat.exit_signal;
	core->has_exit_status = true;
	core->exit_status = ctx->stat.exit_code;
	return 0;
}

void tree_dump_free(struct dump_tree *tree)
{
	for (int i = 0; i < tree->nr_procs; i++) {
		struct dump_ctx *ctx = tree->procs[i];
		threads_dump_free(ctx);
		protobuf_c_message_free_unpacked(&ctx->mm->base, NULL);
		protobuf_c_message_free_unpacked(&ctx->core->base, NULL);
		proc_vmas_free(&ctx->vmas);
		if (ctx->pidfd >= 0)
			close(ctx->pidfd);
		free(ctx);
	}
	free(tree->procs);
	tree->procs = NULL;
	tree->nr_procs = 0;
}

/* ---- restore ---- */

static int add_kid(struct restore_ctx *parent, struct restore_ctx *kid)
{
	struct restore_ctx **grown = realloc(parent->kids, (parent->nr_kids + 1) * sizeof(*grown));

	if (!grown)
		return err_set("out of memory");
	parent->kids = grown;
	/* group leaders first: their siblings may join their groups */
	size_t at = parent->nr_kids;
	if (kid->core->pgid == kid->pid)
		while (at > 0 && parent->kids[at - 1]->core->pgid != parent->kids[at - 1]->pid)
			at--;
	memmove(parent->kids + at + 1, parent->kids + at, (parent->nr_kids - at) * sizeof(*grown));
	parent->kids[at] = kid;
	parent->nr_kids++;
	kid->parent = parent;
	return 0;
}

/* A kid in another session than its parent's, not its own: the session's
 * leader has exited (the kid came to this parent, a subreaper, from it). */
static bool in_gone_session(const struct restore_ctx *parent, const struct restore_ctx *kid)
{
	return kid->core->sid != kid->pid && kid->core->sid != parent->core->sid;
}

/* Adds leader to a parent's list of helpers (of one kind), once; its pid
 * must be free. */
static int add_helper(pid_t **list, size_t *n, pid_t leader, const char *what)
{
	pid_t *grown;

	for (size_t i = 0; i < *n; i++)
		if ((*list)[i] == leader)
			return 0;
	if (leader <= 1 || kill(leader, 0) == 0 || errno != ESRCH)
		return err_set("pid %d, needed to make %s %d again, is in use: cannot restore the "
			       "checkpoint",
			       leader, what, leader);
	grown = realloc(*list, (*n + 1) * sizeof(*grown));
	if (!grown)
		return err_set("out of memory");
	*list = grown;
	(*list)[(*n)++] = leader;
	return 0;
}

/* A session whose leader has exited is made by a helper with the leader's
 * pid, which creates the kids of that session and exits; they come back to
 * their parent, a subreaper, as they had. */
static int plan_session(const struct restore_tree *tree, struct restore_ctx *parent,
			const struct restore_ctx *kid)
{
	const CoreEntry *core = kid->core;

	if (!in_gone_session(parent, kid))
		return 0;
	if (ctx_proc(tree, core->sid))
		return err_set("pid %d is in session %d but its parent %d is in %d: cannot be "
			       "recreated",
			       kid->pid, core->sid, parent->pid, parent->core->sid);
	if (core->pgid != core->sid && core->pgid != kid->pid && !ctx_proc(tree, core->pgid))
		return err_set("pid %d is in process group %d of session %d, both of whose "
			       "leaders have exited: not supported yet",
			       kid->pid, core->pgid, core->sid);
	return add_helper(&parent->sessions, &parent->nr_sessions, core->sid, "session");
}

/* A group led by a process that is not in the tree (nor the root's own)
 * lost its leader: the parent of its members makes it with a helper. */
static int plan_helper(const struct restore_tree *tree, struct restore_ctx *parent,
		       const struct restore_ctx *kid)
{
	pid_t pgid = kid->core->pgid;

	if (kid->zombie || pgid == tree->procs[0]->core->pgid || ctx_proc(tree, pgid) ||
	    (in_gone_session(parent, kid) && pgid == kid->core->sid))
		return 0;
	return add_helper(&parent->helpers, &parent->nr_helpers, pgid, "process group");
}

/* Links every process to its parent and checks that its session can be
 * had: its own (setsid) or its parent's (inherited). */
int tree_restore_plan(struct restore_tree *tree)
{
	if (ctx_index_by_pid(tree))
		return -1;
	for (size_t i = 1; i < tree->nr_procs; i++) {
		struct restore_ctx *ctx = tree->procs[i], *parent;
		const CoreEntry *core = ctx->core;
		parent = ctx_proc(tree, core->ppid);
		if (!parent || parent == ctx || parent->zombie)
			return err_set("checkpoint %s: the parent %d of pid %d is not in it",
				       tree->dir.path, core->ppid, ctx->pid);
		for (size_t j = i; j < tree->nr_procs; j++)
			if (tree->procs[j] == parent)
				return err_set("checkpoint %s: pid %d is listed before its "
					       "parent %d",
					       tree->dir.path, ctx->pid, parent->pid);
		if (add_kid(parent, ctx) || plan_session(tree, parent, ctx) ||
		    plan_helper(tree, parent, ctx))
			return -1;
	}
	return 0;
}

static void exit_as_zombie(const struct restore_ctx *ctx)
{
	int status = ctx->core->exit_status;
	sigset_t one;

	if (WIFSIGNALED(status)) {
		sigemptyset(&one);
		sigaddset(&one, WTERMSIG(status));
		sigprocmask(SIG_UNBLOCK, &one, NULL);
		raise(WTERMSIG(status));
	}
	_exit(WEXITSTATUS(status));
}

/* As a shell does, the parent puts the new child in its group too, so that
 * the group exists before a later sibling joins it; a session leader makes
 * its own group with setsid(). */
static int place_in_group(struct restore_ctx *ctx, struct restore_ctx *kid)
{
	const CoreEntry *core = kid->core;

	if (kid->zombie || core->sid == kid->pid || core->pgid == ctx->core->pgid)
		return 0;
	if (setpgid(kid->pid, task_actual_group(kid, core->pgid)) && errno != EACCES)
		return err_errno("pid %d cannot join process group %d", kid->pid, core->pgid);
	return 0;
}

int tree_create_kid(struct restore_ctx *ctx, struct restore_ctx *kid)
{
	const CoreEntry *core = kid->core;
	pid_t tid = kid->pid;
	struct clone_args args = {
	    /* what it shared with this process at the dump (share.c) */
	    .flags = (core->has_files_shared_with ? CLONE_FILES : 0) |
		     (core->has_fs_shared_with ? CLONE_FS : 0),
	    .exit_signal = kid->core->exit_signal,
	    .set_tid = (uintptr_t)&tid,
	    .set_tid_size = 1,
	};
	long pid = syscall(SYS_clone3, &args, sizeof(args));

	if (pid < 0) {
		if (errno == EEXIST)
			return err_set("pid %d is already in use: cannot restore the checkpoint "
				       "with its original pid",
				       kid->pid);
		return err_errno("cannot create pid %d (clone3 with set_tid)", kid->pid);
	}
	if (pid == 0) {
		if (kid->zombie)
			exit_as_zombie(kid);
		ctx->tree->child_main(kid, ctx->pid);
	}
	return place_in_group(ctx, kid);
}

/* A zombie's death sends its parent a signal the original had already
 * taken: wait for each zombie (without reaping it) and drop that signal. */
static int settle_zombies(struct restore_ctx *ctx)
{
	struct timespec now = {0, 0};
	sigset_t sent;
	bool any = false;

	sigemptyset(&sent);
	for (size_t i = 0; i < ctx->nr_kids; i++) {
		struct restore_ctx *kid = ctx->kids[i];
		siginfo_t si;
		if (!kid->zombie)
			continue;
		if (waitid(P_PID, kid->pid, &si, WEXITED | WNOWAIT))
			return err_errno("waiting for zombie %d", kid->pid);
		if (kid->core->exit_signal) {
			sigaddset(&sent, kid->core->exit_signal);
			any = true;
		}
	}
	while (any && sigtimedwait(&sent, NULL, &now) > 0)
		;
	return 0;
}

/* A process with a gone leader's pid, making its group and waiting to be
 * killed once the members have joined. */
static int start_helper(pid_t pgid)
{
	pid_t tid = pgid;
	struct clone_args args = {
	    .exit_signal = SIGCHLD, .set_tid = (uintptr_t)&tid, .set_tid_size = 1};
	long pid = syscall(SYS_clone3, &args, sizeof(args));

	if (pid < 0)
		return err_errno("cannot create pid %d to make its process group again", pgid);
	if (pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		setpgid(0, 0);
		for (;;)
			pause(); /* every signal is blocked: only SIGKILL ends it */
	}
	if (setpgid(pgid, pgid) && errno != EACCES)
		return err_errno("cannot make process group %d", pgid);
	return 0;
}

static int stop_helpers(struct restore_ctx *ctx)
{
	struct timespec now = {0, 0};
	sigset_t chld;

	for (size_t i = 0; i < ctx->nr_helpers; i++) {
		kill(ctx->helpers[i], SIGKILL);
		while (waitpid(ctx->helpers[i], NULL, 0) < 0)
			if (errno != EINTR)
				return err_errno("cannot reap helper %d", ctx->helpers[i]);
	}
	/* the helpers' deaths are not the process's to see */
	sigemptyset(&chld);
	sigaddset(&chld, SIGCHLD);
	while ((ctx->nr_helpers || ctx->nr_sessions) && sigtimedwait(&chld, NULL, &now) > 0)
		;
	return 0;
}

/* The helper of session sid: it leads the session, creates the kids in it
 * and exits at once. This process is their subreaper meanwhile, so that
 * they come back to it; each waits for that before it goes on. */
static int make_session(struct restore_ctx *ctx, pid_t sid)
{
	pid_t tid = sid;
	struct clone_args args = {
	    .exit_signal = SIGCHLD, .set_tid = (uintptr_t)&tid, .set_tid_size = 1};
	int status;
	long pid;

	if (prctl(PR_SET_CHILD_SUBREAPER, 1))
		return err_errno("pid %d cannot become a child subreaper", ctx->pid);
	pid = syscall(SYS_clone3, &args, sizeof(args));
	if (pid < 0)
		return err_errno("cannot create pid %d to make its session again", sid);
	if (pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (setsid() < 0)
			ctx->tree->child_fail(ctx);
		for (size_t i = 0; i < ctx->nr_kids; i++)
			if (ctx->kids[i]->core->sid == sid && tree_create_kid(ctx, ctx->kids[i]))
				ctx->tree->child_fail(ctx->kids[i]);
		_exit(0);
	}
	while (waitpid(sid, &status, 0) < 0)
		if (errno != EINTR)
			return err_errno("cannot reap the helper of session %d", sid);
	if (!WIFEXITED(status) || WEXITSTATUS(status))
		return err_set("the helper making session %d again failed", sid);
	if (!ctx->core->child_subreaper && prctl(PR_SET_CHILD_SUBREAPER, 0))
		return err_errno("pid %d cannot stop being a child subreaper", ctx->pid);
	return 0;
}

int tree_restore_kids(struct restore_ctx *ctx)
{
	for (size_t i = 0; i < ctx->nr_helpers; i++)
		if (start_helper(ctx->helpers[i]))
			return -1;
	for (size_t i = 0; i < ctx->nr_kids; i++)
		/* one sharing this fd table is made later (share.c) */
		if (!in_gone_session(ctx, ctx->kids[i]) &&
		    !ctx->kids[i]->core->has_files_shared_with &&
		    tree_create_kid(ctx, ctx->kids[i]))
			return -1;
	for (size_t i = 0; i < ctx->nr_sessions; i++)
		if (make_session(ctx, ctx->sessions[i]))
			return -1;
	return stop_helpers(ctx) || settle_zombies(ctx) ? -1 : 0;
}

/* In the parent, once its service fds are set and its mapped files open:
 * the kids sharing its fd table (share.c), each of which says on a pipe
 * when it has opened its own mapped files; the fds are placed after. */
int tree_restore_sharers(struct restore_ctx *ctx)
{
	size_t n = 0;
	int ready[2];
	char byte;

	for (size_t k = 0; k < ctx->nr_kids; k++)
		n += ctx->kids[k]->core->has_files_shared_with;
	if (!n)
		return 0;
	if (pipe2(ready, O_CLOEXEC))
		return err_errno("pid %d: cannot make the pipe its fd-sharing kids report on",
				 ctx->pid);
	for (size_t k = 0; k < ctx->nr_kids; k++) {
		if (!ctx->kids[k]->core->has_files_shared_with)
			continue;
		ctx->kids[k]->share_ready_fd = ready[1];
		if (tree_create_kid(ctx, ctx->kids[k]))
			return -1;
	}
	/* a kid that fails reports it to cryo, which kills the tree */
	while (n) {
		ssize_t r = read(ready[0], &byte, 1);
		if (r < 0 && errno == EINTR)
			continue;
		if (r != 1)
			return err_errno("pid %d: waiting for its fd-sharing kids", ctx->pid);
		n--;
	}
	close(ready[0]);
	close(ready[1]);
	return 0;
}

/* A kid made by its session's helper (which has the session's pid) waits
 * until that helper has exited and its parent has taken it in. */
void tree_wait_adopted(const struct restore_ctx *ctx, pid_t parent)
{
	struct timespec tick = {0, 20 * 1000};

	for (int i = 0; getppid() == ctx->core->sid && getppid() != parent && i < 250000; i++)
		nanosleep(&tick, NULL);
}
