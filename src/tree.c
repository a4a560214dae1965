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
 * (child.c), which calls back here to create its own kids. Before creating
 * its children a process takes its session and, as a leader, its group,
 * so that children inherit them as they did. A zombie is re-created as a
 * child that exits at once with the saved status, and its parent swallows
 * the SIGCHLD these cause. Which process makes which, and when, is planned
 * by treeplan.c: a leader first makes the kids it made before its
 * setsid(); a session whose leader has exited is made by a helper with the
 * leader's pid, which makes one parent's kids of that session with
 * CLONE_PARENT and stays, leading the session's group, until a member is
 * in it; a kid whose session lives elsewhere below its parent is made
 * there (by a sibling with CLONE_PARENT, or through a helper that exits,
 * its parent a subreaper meanwhile) and adopted. Each process joins its
 * group itself once it exists: the first member of a group whose leader
 * has exited makes it with a helper of the leader's pid, and a leader that
 * moved to another group leaves a helper in its own until a member is in.
 * Subreapers become ones again only once the whole tree is made (task.c),
 * so that no orphan of the restore goes astray.
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
#include "treeplan.h"

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

/* Every process must be restorable in its session and group (treeplan.c). */
int tree_check_ids(struct dump_tree *tree)
{
	struct tp_node *n = calloc(tree->nr_procs, sizeof(*n));
	int ret = 0;

	if (!n)
		return err_set("out of memory");
	for (int i = 0; i < tree->nr_procs && !ret; i++) {
		struct dump_ctx *ctx = tree->procs[i];
		if (!ctx->zombie && proc_read_stat(ctx->pid, &ctx->stat))
			ret = -1;
		n[i].pid = ctx->pid;
		n[i].ppid = ctx->stat.ppid;
		n[i].sid = ctx->stat.session;
		n[i].pgid = ctx->stat.pgrp;
		n[i].zombie = ctx->zombie;
		n[i].exit_signal = ctx->stat.exit_signal;
	}
	if (!ret)
		ret = tp_plan(n, tree->nr_procs);
	free(n);
	return ret;
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
		if (ctx->fs)
			protobuf_c_message_free_unpacked(&ctx->fs->base, NULL);
		free(ctx->fd_list);
		free(ctx->fd_cloexec);
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

static int add_foster(struct restore_ctx *maker, struct restore_ctx *kid)
{
	struct restore_ctx **grown =
	    realloc(maker->fosters, (maker->nr_fosters + 1) * sizeof(*grown));

	if (!grown)
		return err_set("out of memory");
	maker->fosters = grown;
	maker->fosters[maker->nr_fosters++] = kid;
	return 0;
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

/* The ids of the tree, as treeplan.c takes them. */
static struct tp_node *plan_nodes(const struct restore_tree *tree)
{
	struct tp_node *n = calloc(tree->nr_procs, sizeof(*n));

	for (size_t i = 0; n && i < tree->nr_procs; i++) {
		const CoreEntry *c = tree->procs[i]->core;
		n[i].pid = tree->procs[i]->pid;
		n[i].ppid = c->ppid;
		n[i].sid = c->sid;
		n[i].pgid = c->pgid;
		n[i].zombie = tree->procs[i]->zombie;
		n[i].shares = c->has_files_shared_with || c->has_fs_shared_with;
		n[i].exit_signal = c->exit_signal;
	}
	return n;
}

static void log_birth(const struct tp_node *n, int i)
{
	static const char *how[] = {
	    [TP_EARLY] = "by its parent before the parent's setsid()",
	    [TP_GONE_SESSION] = "by the helper of its session, whose leader has exited",
	    [TP_ADOPTED] = "by pid",
	};

	if (n[i].birth == TP_DIRECT)
		return;
	if (n[i].birth != TP_ADOPTED)
		pr_debug("pid %d (parent %d) is made in session %d %s", n[i].pid, n[i].ppid,
			 n[i].start_sid, how[n[i].birth]);
	else
		pr_debug("pid %d (parent %d) is made in session %d %s %d%s%s", n[i].pid, n[i].ppid,
			 n[i].start_sid, how[TP_ADOPTED], n[n[i].maker].pid,
			 n[i].maker_sibling ? " with CLONE_PARENT" : " through a helper",
			 n[i].maker_early ? ", before its own setsid()" : "");
}

static int depth(const struct restore_ctx *ctx)
{
	int d = 0;

	for (; ctx->parent; ctx = ctx->parent)
		d++;
	return d;
}

static int deeper_parent_first(const void *a, const void *b)
{
	const struct restore_ctx *x = *(struct restore_ctx *const *)a;
	const struct restore_ctx *y = *(struct restore_ctx *const *)b;

	return depth(y->parent) - depth(x->parent);
}

/* A maker whose helper waits for a subreaper on its way up (make_foster)
 * waits only for ones deeper than the kid's parent, whose adopted kids it
 * may make itself: so it makes the kids of the deepest parents first. */
static void order_fosters(struct restore_tree *tree)
{
	for (size_t i = 0; i < tree->nr_procs; i++)
		if (tree->procs[i]->nr_fosters > 1)
			qsort(tree->procs[i]->fosters, tree->procs[i]->nr_fosters,
			      sizeof(*tree->procs[i]->fosters), deeper_parent_first);
}

/* The page where subreapers say they have all their adopted kids. */
static int map_adopted_all(struct restore_tree *tree)
{
	bool any = false;

	for (size_t i = 0; i < tree->nr_procs; i++)
		any |= tree->procs[i]->adoptive;
	if (!any)
		return 0;
	tree->adopted_all =
	    mmap(NULL, tree->nr_procs, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (tree->adopted_all == MAP_FAILED) {
		tree->adopted_all = NULL;
		return err_errno("cannot map the page the new processes share");
	}
	return 0;
}

void tree_restore_free(struct restore_tree *tree)
{
	if (tree->adopted_all)
		munmap(tree->adopted_all, tree->nr_procs);
	tree->adopted_all = NULL;
}

static int apply_plan(struct restore_tree *tree, const struct tp_node *n)
{
	for (size_t i = 0; i < tree->nr_procs; i++) {
		struct restore_ctx *ctx = tree->procs[i];
		ctx->index = i;
		ctx->birth = n[i].birth;
		ctx->adoptive = n[i].adoptive;
		ctx->maker_early = n[i].maker_early;
		ctx->start_sid = n[i].start_sid;
		ctx->maker_sibling = n[i].maker_sibling;
		ctx->opens_group = n[i].opens_group;
		ctx->keeps_group = n[i].keeps_group;
		if (i == 0)
			continue;
		ctx->memory_from = tree->procs[n[i].birth == TP_ADOPTED ? n[i].maker : n[i].parent];
		log_birth(n, (int)i);
		if (add_kid(tree->procs[n[i].parent], ctx) ||
		    (n[i].birth == TP_ADOPTED && add_foster(tree->procs[n[i].maker], ctx)) ||
		    (n[i].birth == TP_GONE_SESSION &&
		     add_helper(&ctx->parent->sessions, &ctx->parent->nr_sessions, ctx->start_sid,
				"session")))
			return -1;
	}
	/* a zombie never stages its own: what it makes has the memory it had */
	for (size_t i = 1; i < tree->nr_procs; i++)
		while (tree->procs[i]->memory_from->zombie)
			tree->procs[i]->memory_from = tree->procs[i]->memory_from->memory_from;
	order_fosters(tree);
	return map_adopted_all(tree);
}

/* Links every process to its parent and plans how each is made again
 * (treeplan.c): the helpers of groups and sessions whose leader has gone,
 * and the processes that come to their parent from elsewhere. */
int tree_restore_plan(struct restore_tree *tree)
{
	struct tp_node *n;
	int ret;

	if (ctx_index_by_pid(tree))
		return -1;
	n = plan_nodes(tree);
	if (!n)
		return err_set("out of memory");
	ret = tp_plan(n, tree->nr_procs);
	if (ret)
		err_set("checkpoint %s: %s", tree->dir.path, err_text());
	else
		ret = apply_plan(tree, n);
	free(n);
	return ret;
}

static int make_fosters(struct restore_ctx *ctx, bool early);

/* A zombie takes its session and group, makes the processes of its
 * session it makes for others, then exits with its saved status. */
static void exit_as_zombie(struct restore_ctx *ctx)
{
	int status = ctx->core->exit_status;
	sigset_t one;

	if (task_make_ids(ctx) || make_fosters(ctx, false) || tree_join_group(ctx))
		ctx->tree->child_fail(ctx);
	if (WIFSIGNALED(status)) {
		sigemptyset(&one);
		sigaddset(&one, WTERMSIG(status));
		sigprocmask(SIG_UNBLOCK, &one, NULL);
		raise(WTERMSIG(status));
	}
	_exit(WEXITSTATUS(status));
}

/* With CLONE_PARENT (sibling), this process makes a kid of its parent. */
static int clone_kid(struct restore_ctx *ctx, struct restore_ctx *kid, bool sibling)
{
	const CoreEntry *core = kid->core;
	pid_t tid = kid->pid;
	struct clone_args args = {
	    /* what it shared with this process at the dump (share.c) */
	    .flags = (core->has_files_shared_with ? CLONE_FILES : 0) |
		     (core->has_fs_shared_with ? CLONE_FS : 0) | (sibling ? CLONE_PARENT : 0),
	    /* a sibling gets this process's (the plan checked they are the same) */
	    .exit_signal = sibling ? 0 : kid->core->exit_signal,
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
		ctx->tree->child_main(kid, kid->parent->pid);
	}
	return 0;
}

int tree_create_kid(struct restore_ctx *ctx, struct restore_ctx *kid)
{
	return clone_kid(ctx, kid, false);
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

static void tick(void)
{
	struct timespec t = {0, 200 * 1000};

	nanosleep(&t, NULL);
}

/* The helpers' deaths are not the process's to see. */
static void drop_signal(int sig)
{
	struct timespec now = {0, 0};
	sigset_t one;

	sigemptyset(&one);
	sigaddset(&one, sig);
	while (sig && sigtimedwait(&one, NULL, &now) > 0)
		;
}

static int reap_helper(pid_t pid, const char *what, pid_t id)
{
	int status;

	while (waitpid(pid, &status, __WALL) < 0)
		if (errno != EINTR)
			return err_errno("cannot reap the helper making %s %d again", what, id);
	if (!WIFEXITED(status) || WEXITSTATUS(status))
		return err_set("the helper making %s %d again failed", what, id);
	return 0;
}

static void kill_helper(pid_t pid)
{
	kill(pid, SIGKILL);
	while (waitpid(pid, NULL, __WALL) < 0 && errno == EINTR)
		;
}

static long clone_with_pid(pid_t tid, int exit_signal)
{
	struct clone_args args = {
	    .exit_signal = (unsigned)exit_signal, .set_tid = (uintptr_t)&tid, .set_tid_size = 1};

	return syscall(SYS_clone3, &args, sizeof(args));
}

/* A pid for a short-lived helper: free, and none the checkpoint needs
 * (as a process, a session or a group). */
static bool needed_pid(const struct restore_tree *tree, pid_t pid)
{
	for (size_t i = 0; i < tree->nr_procs; i++) {
		const CoreEntry *c = tree->procs[i]->core;
		if (tree->procs[i]->pid == pid || c->sid == pid || c->pgid == pid)
			return true;
	}
	return false;
}

/* From the top of the pid range, where the checkpoint's pids rarely are. */
static long clone_helper(const struct restore_tree *tree, int exit_signal)
{
	for (pid_t tid = (pid_t)tree->kd.pid_max - 1; tid > 300; tid--) {
		if (needed_pid(tree, tid) || kill(tid, 0) == 0 || errno != ESRCH)
			continue;
		long pid = clone_with_pid(tid, exit_signal);
		if (pid >= 0 || errno != EEXIST)
			return pid;
	}
	errno = EAGAIN;
	return -1;
}

/* Whether group pgid has (in the checkpoint) members besides its leader,
 * and whether one of them is in it now (a zombie's group counts too). */
static bool group_has_members(const struct restore_tree *tree, pid_t pgid, bool now)
{
	for (size_t i = 0; i < tree->nr_procs; i++) {
		const struct restore_ctx *p = tree->procs[i];
		if (p->core->pgid == pgid && p->pid != pgid && (!now || getpgid(p->pid) == pgid))
			return true;
	}
	return false;
}

/* Waits (10 s at most) until a member of group pgid is in it, if it has any. */
static int wait_member(const struct restore_tree *tree, pid_t pgid)
{
	for (int n = 0;
	     group_has_members(tree, pgid, false) && !group_has_members(tree, pgid, true); n++)
		if (n > 50000)
			return err_set("no process came into process group %d", pgid);
		else
			tick();
	return 0;
}

/* The exit signal the kids of a gone session take from its helper (the
 * plan checked it is the same for all). */
static int session_signal(const struct restore_ctx *ctx, pid_t sid)
{
	for (size_t i = 0; i < ctx->nr_kids; i++)
		if (ctx->kids[i]->birth == TP_GONE_SESSION && ctx->kids[i]->start_sid == sid)
			return ctx->kids[i]->core->exit_signal;
	return SIGCHLD;
}

/* The helper of session sid: it leads the session and makes the kids in
 * it with CLONE_PARENT, so they are this process's at once; it stays, the
 * leader of the session's group, until a member of that group is in it
 * (tree_restore_finish). */
static int make_session(struct restore_ctx *ctx, pid_t sid)
{
	long pid = clone_with_pid(sid, session_signal(ctx, sid));

	if (pid < 0)
		return err_errno("cannot create pid %d to make its session again", sid);
	if (pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (setsid() < 0)
			ctx->tree->child_fail(ctx);
		for (size_t i = 0; i < ctx->nr_kids; i++)
			if (ctx->kids[i]->birth == TP_GONE_SESSION &&
			    ctx->kids[i]->start_sid == sid && clone_kid(ctx, ctx->kids[i], true))
				ctx->tree->child_fail(ctx->kids[i]);
		for (;;)
			pause(); /* every signal is blocked: only SIGKILL ends it */
	}
	return 0;
}

static int stop_sessions(struct restore_ctx *ctx)
{
	for (size_t i = 0; i < ctx->nr_sessions; i++) {
		pid_t sid = ctx->sessions[i];
		if (wait_member(ctx->tree, sid))
			return -1;
		kill_helper(sid);
		drop_signal(session_signal(ctx, sid));
	}
	return 0;
}

/* A leader that has left its group for another keeps its own with a
 * helper until a member is in it (the helper waits for that, then exits);
 * a zombie, which cannot wait for a helper, waits itself. */
static int keep_group(struct restore_ctx *ctx)
{
	long pid;

	if (!ctx->keeps_group || group_has_members(ctx->tree, ctx->pid, true))
		return 0;
	if (ctx->zombie)
		return wait_member(ctx->tree, ctx->pid);
	pid = clone_helper(ctx->tree, 0);
	if (pid < 0)
		return err_errno("pid %d cannot create a helper to keep its process group",
				 ctx->pid);
	if (pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		_exit(wait_member(ctx->tree, ctx->pid) ? 1 : 0);
	}
	ctx->keeper = (pid_t)pid;
	return 0;
}

/* The first member of a group whose leader has exited makes it again: a
 * helper with the leader's pid leads it until this process is in. */
static int open_group(struct restore_ctx *ctx)
{
	pid_t pgid = ctx->core->pgid;
	long pid = clone_with_pid(pgid, 0);
	int ret;

	if (pid < 0)
		return err_errno("cannot create pid %d to make its process group again", pgid);
	if (pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		for (;;)
			pause();
	}
	ret = setpgid(pgid, pgid) ? err_errno("cannot make process group %d again", pgid)
				  : task_join_group(ctx);
	kill_helper(pgid);
	return ret;
}

int tree_join_group(struct restore_ctx *ctx)
{
	if (keep_group(ctx))
		return -1;
	return ctx->opens_group ? open_group(ctx) : task_join_group(ctx);
}

int tree_restore_finish(struct restore_ctx *ctx)
{
	/* zombies may wait for this process to join a group before they exit */
	if (settle_zombies(ctx) || stop_sessions(ctx))
		return -1;
	if (ctx->keeper && reap_helper(ctx->keeper, "process group", ctx->pid))
		return -1;
	ctx->keeper = 0;
	return 0;
}

/* Waits (10 s at most) until every subreaper between this process and
 * kid's parent has all its own adopted kids and is one no more: an orphan
 * goes to the nearest subreaper. */
static int wait_way_up(const struct restore_ctx *ctx, const struct restore_ctx *kid)
{
	for (const struct restore_ctx *y = ctx->parent; y && y != kid->parent; y = y->parent) {
		if (y->adoptive)
			pr_debug("pid %d waits for pid %d to take its adopted kids before it makes "
				 "pid %d",
				 ctx->pid, y->pid, kid->pid);
		for (int n = 0; y->adoptive && !__atomic_load_n(&ctx->tree->adopted_all[y->index],
								__ATOMIC_ACQUIRE);
		     n++)
			if (n > 50000)
				return err_set(
				    "pid %d, to make pid %d, waited for pid %d to take its "
				    "adopted kids in vain",
				    ctx->pid, kid->pid, y->pid);
			else
				tick();
	}
	return 0;
}

/* A process of kid's session makes it through a helper that exits at once:
 * kid comes to its parent, a subreaper meanwhile, and waits for that. */
static int make_foster(struct restore_ctx *ctx, struct restore_ctx *kid)
{
	if (kid->maker_sibling)
		return clone_kid(ctx, kid, true);
	if (wait_way_up(ctx, kid))
		return -1;
	long pid = clone_helper(ctx->tree, SIGCHLD);

	if (pid < 0)
		return err_errno("pid %d cannot create a helper to make pid %d", ctx->pid,
				 kid->pid);
	if (pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (tree_create_kid(kid->parent, kid))
			ctx->tree->child_fail(kid);
		_exit(0);
	}
	return reap_helper(pid, "pid", kid->pid);
}

static int make_fosters(struct restore_ctx *ctx, bool early)
{
	for (size_t i = 0; i < ctx->nr_fosters; i++)
		if (ctx->fosters[i]->maker_early == early && make_foster(ctx, ctx->fosters[i]))
			return -1;
	return 0;
}

/* Waits (10 s at most) until each kid made elsewhere is this process's. */
static int wait_adopted(const struct restore_ctx *ctx)
{
	for (size_t i = 0; i < ctx->nr_kids; i++) {
		const struct restore_ctx *kid = ctx->kids[i];
		siginfo_t si;
		int n = 0;
		if (kid->birth != TP_ADOPTED && kid->birth != TP_GONE_SESSION)
			continue;
		while (waitid(P_PID, kid->pid, &si, WEXITED | WSTOPPED | WNOHANG | WNOWAIT) &&
		       errno == ECHILD)
			if (n++ > 50000)
				return err_set("pid %d, made in session %d, did not come to its "
					       "parent %d",
					       kid->pid, kid->core->sid, ctx->pid);
			else
				tick();
	}
	return 0;
}

int tree_restore_early(struct restore_ctx *ctx)
{
	if (ctx->adoptive && prctl(PR_SET_CHILD_SUBREAPER, 1))
		return err_errno("pid %d cannot become a child subreaper", ctx->pid);
	for (size_t i = 0; i < ctx->nr_kids; i++)
		if (ctx->kids[i]->birth == TP_EARLY && tree_create_kid(ctx, ctx->kids[i]))
			return -1;
	return make_fosters(ctx, true);
}

int tree_restore_kids(struct restore_ctx *ctx)
{
	for (size_t i = 0; i < ctx->nr_kids; i++)
		/* one sharing this fd table is made later (share.c) */
		if (ctx->kids[i]->birth == TP_DIRECT &&
		    !ctx->kids[i]->core->has_files_shared_with &&
		    tree_create_kid(ctx, ctx->kids[i]))
			return -1;
	for (size_t i = 0; i < ctx->nr_sessions; i++)
		if (make_session(ctx, ctx->sessions[i]))
			return -1;
	if (make_fosters(ctx, false) || wait_adopted(ctx))
		return -1;
	if (ctx->nr_fosters)
		drop_signal(SIGCHLD);
	/* its own flag comes back with the rest of the task (task.c) */
	if (ctx->adoptive && prctl(PR_SET_CHILD_SUBREAPER, 0))
		return err_errno("pid %d cannot stop being a child subreaper", ctx->pid);
	if (ctx->adoptive)
		__atomic_store_n(&ctx->tree->adopted_all[ctx->index], 1, __ATOMIC_RELEASE);
	return 0;
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

/* A kid made by a helper (of its session, or the gone leader's) waits
 * (5 s at most) until that helper has exited and its parent took it in. */
void tree_wait_adopted(pid_t parent)
{
	for (int i = 0; getppid() != parent && i < 25000; i++)
		tick();
}
