/*
 * share: what a process made by clone(2) without CLONE_THREAD shares with
 * its parent, and how the restore makes it shared again: the fd table
 * (CLONE_FILES) and the filesystem information, cwd, root and umask
 * (CLONE_FS).
 *
 * Dump: kcmp(KCMP_FILES / KCMP_FS) against the parent; a match is recorded
 * in the core (files_shared_with, fs_shared_with: the parent's pid). A
 * process sharing one with a process of the tree that is not its parent
 * (a sibling made with CLONE_PARENT, say) is refused by name, as is the
 * address space (KCMP_VM) and the signal handlers (KCMP_SIGHAND, which the
 * kernel gives only with CLONE_VM): a vfork-like child would have to be
 * made in the parent's address space once cryo has rebuilt it, and its
 * stack is the parent's. KCMP_SYSVSEM is not compared: two processes
 * without an undo list compare equal.
 *
 * Restore, CLONE_FS: the kid is created with the flag with its siblings
 * and leaves cwd, root and umask to its parent (the dump refuses a shared
 * root other than "/": the parent's chroot would move the kid's opens).
 *
 * Restore, CLONE_FILES: one table for two processes, so the order matters.
 * The parent sets up its service fds and opens its mapped files first;
 * only then does it create the kid (clone3 with CLONE_FILES), which opens
 * its own mapped files on slots planned after the parent's (share_slots)
 * and tells the parent so over a pipe (tree_restore_sharers); the parent
 * then places the fds, and the kid places none, nor takes locks: the
 * table owns POSIX locks, which fdinfo shows in both and the parent takes
 * (/proc/locks then names the parent). The service fds of the table are
 * closed once, by the last process of the table cryo rebuilds. A sharer
 * may have kids of its own: one sharing the table again (its slots come
 * after all planned before it in the table, and it says it is ready to
 * the sharer, which only then tells its own parent; "placed" is passed
 * down the same way), or one with a copy of the table, made while the
 * descriptions the root opened for all are still in it.
 */
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <linux/kcmp.h>

#include "infra/log.h"
#include "share.h"

/* ---- dump ---- */

static bool same(pid_t a, pid_t b, int type)
{
	return syscall(SYS_kcmp, a, b, type, 0, 0) == 0;
}

/* An earlier process of the tree, other than the parent, sharing it; 0 if none. */
static pid_t shared_elsewhere(const struct dump_ctx *ctx, int type, bool parent_ok)
{
	for (int i = 0; i < ctx->tree->nr_procs && ctx->tree->procs[i] != ctx; i++) {
		const struct dump_ctx *o = ctx->tree->procs[i];
		if (o->zombie || (parent_ok && o->pid == ctx->stat.ppid))
			continue;
		if (same(ctx->pid, o->pid, type))
			return o->pid;
	}
	return 0;
}

static bool root_is_slash(pid_t pid)
{
	char link[64], root[PATH_MAX];
	ssize_t n;

	snprintf(link, sizeof(link), "/proc/%d/root", pid);
	n = readlink(link, root, sizeof(root) - 1);
	return n == 1 && root[0] == '/';
}

static int refuse_vm(const struct dump_ctx *ctx)
{
	pid_t with = same(ctx->pid, ctx->stat.ppid, KCMP_VM)
			 ? ctx->stat.ppid
			 : shared_elsewhere(ctx, KCMP_VM, false);
	bool sighand = !with && same(ctx->pid, ctx->stat.ppid, KCMP_SIGHAND);

	if (!with && !sighand)
		return 0;
	return err_set("pid %d shares %s with pid %d (clone %s without CLONE_THREAD): not "
		       "supported (a vfork-like child lives on its parent's stack and memory)",
		       ctx->pid, sighand ? "its signal handlers" : "its address space",
		       with ? with : ctx->stat.ppid, sighand ? "CLONE_SIGHAND" : "CLONE_VM");
}

/* Records sharing of one kind with the parent; refuses it with another. */
static int record(struct dump_ctx *ctx, int type, const char *what, protobuf_c_boolean *has,
		  int32_t *with)
{
	pid_t other;

	if (same(ctx->pid, ctx->stat.ppid, type)) {
		*has = true;
		*with = ctx->stat.ppid;
		return 0;
	}
	other = shared_elsewhere(ctx, type, true);
	if (other)
		return err_set("pid %d shares %s with pid %d, which is not its parent: not "
			       "supported yet",
			       ctx->pid, what, other);
	return 0;
}

int share_dump(struct dump_ctx *ctx)
{
	CoreEntry *core = ctx->core;

	if (ctx == ctx->tree->procs[0])
		return 0; /* its parent is not checkpointed */
	if (refuse_vm(ctx) ||
	    record(ctx, KCMP_FILES, "its file descriptor table", &core->has_files_shared_with,
		   &core->files_shared_with) ||
	    record(ctx, KCMP_FS, "its filesystem information (cwd, root, umask)",
		   &core->has_fs_shared_with, &core->fs_shared_with))
		return -1;
	if (core->has_fs_shared_with && !root_is_slash(ctx->pid))
		return err_set("pid %d shares its filesystem information with its parent %d "
			       "(clone CLONE_FS) and its root is not /: not supported yet",
			       ctx->pid, ctx->stat.ppid);
	return 0;
}

/* ---- restore ---- */

bool share_files(const struct restore_ctx *ctx)
{
	return ctx->core->has_files_shared_with;
}

bool share_fs(const struct restore_ctx *ctx)
{
	return ctx->core->has_fs_shared_with;
}

/* The process whose fd table this one shares, up a chain of sharers (a
 * kid sharing its parent's, which shares its own parent's...); itself if
 * it shares none. */
static struct restore_ctx *table_owner(const struct restore_ctx *ctx)
{
	while (ctx->parent && share_files(ctx))
		ctx = ctx->parent;
	return (struct restore_ctx *)ctx;
}

static int check_files_sharer(const struct restore_ctx *ctx)
{
	const struct restore_ctx *p = ctx->parent;
	const CoreEntry *core = ctx->core;

	if (core->files_shared_with != core->ppid || !p)
		return err_set("checkpoint %s: pid %d shares the fd table of pid %d, which is not "
			       "its parent: cannot be restored",
			       ctx->tree->dir.path, ctx->pid, core->files_shared_with);
	if (core->sid != ctx->pid && core->sid != p->core->sid)
		return err_set("checkpoint %s: pid %d shares its parent's fd table and is in "
			       "a session whose leader has exited: not supported yet",
			       ctx->tree->dir.path, ctx->pid);
	/* the same table at the dump: its fds are under the parent's service fds */
	if (ctx->svc_base > p->svc_base)
		return err_set("checkpoint %s: pid %d shares the fd table of pid %d but has "
			       "more fds",
			       ctx->tree->dir.path, ctx->pid, p->pid);
	return 0;
}

int share_slots(struct restore_ctx *ctx, int *next)
{
	struct restore_ctx *p = ctx->parent;

	if (share_fs(ctx) && ctx->core->fs_shared_with != ctx->core->ppid)
		return err_set("checkpoint %s: pid %d shares the cwd of pid %d, which is not "
			       "its parent: cannot be restored",
			       ctx->tree->dir.path, ctx->pid, ctx->core->fs_shared_with);
	ctx->exe_fd = ctx->svc_base + SVC_EXE;
	*next = ctx->svc_base + SVC_VMA_FIRST;
	if (!share_files(ctx))
		return 0;
	if (check_files_sharer(ctx))
		return -1;
	/* the owner's service fds serve it; its own slots come after those
	 * of every process of the table planned before it, and the owner's
	 * temporaries after all of them */
	ctx->svc_base = p->svc_base;
	ctx->exe_fd = table_owner(ctx)->stage_base;
	*next = ctx->exe_fd + 1;
	return 0;
}

void share_reserve(struct restore_ctx *ctx)
{
	struct restore_ctx *owner = table_owner(ctx);

	if (owner->stage_base < ctx->stage_base)
		owner->stage_base = ctx->stage_base;
}

void share_plan_done(struct restore_tree *tree)
{
	for (size_t i = 0; i < tree->nr_procs; i++)
		if (!tree->procs[i]->zombie && share_files(tree->procs[i]))
			tree->procs[i]->stage_base = table_owner(tree->procs[i])->stage_base;
}

/* The kid then waits until its parent has placed the table's fds
 * (share_placed): any open of its own meanwhile would take the lowest free
 * slot of the shared table, one the parent is about to place (dup2 gives
 * EBUSY, or closes the kid's file under it). The parent's word is a
 * SIGUSR2, blocked in every new process: no fd of the table is involved. */
int share_ready(struct restore_ctx *ctx)
{
	struct timespec limit = {60, 0};
	char byte = 'r';
	sigset_t s;

	if (!share_files(ctx))
		return 0;
	if (write(ctx->share_ready_fd, &byte, 1) != 1)
		return err_errno("pid %d cannot tell its parent its mapped files are open",
				 ctx->pid);
	sigemptyset(&s);
	sigaddset(&s, SIGUSR2);
	if (sigtimedwait(&s, NULL, &limit) != SIGUSR2)
		return err_errno("pid %d: waiting for its parent to place the fds it shares",
				 ctx->pid);
	return 0;
}

int share_placed(struct restore_ctx *ctx)
{
	for (size_t k = 0; k < ctx->nr_kids; k++)
		if (!ctx->kids[k]->zombie && share_files(ctx->kids[k]) &&
		    kill(ctx->kids[k]->pid, SIGUSR2))
			return err_errno("pid %d cannot tell kid %d its fds are placed", ctx->pid,
					 ctx->kids[k]->pid);
	return 0;
}

bool share_closes_service_fds(const struct restore_ctx *ctx)
{
	const struct restore_ctx *owner = table_owner(ctx);
	size_t i = 0;

	while (i < ctx->tree->nr_procs && ctx->tree->procs[i] != ctx)
		i++;
	for (i++; i < ctx->tree->nr_procs; i++) {
		const struct restore_ctx *o = ctx->tree->procs[i];
		if (!o->zombie && share_files(o) && table_owner(o) == owner)
			return false; /* a later one of the same table closes them */
	}
	return true;
}
