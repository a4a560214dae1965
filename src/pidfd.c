/*
 * pidfd: descriptions that name a process (pidfd_open, clone CLONE_PIDFD):
 * of a process of the tree (a child, the process itself, any other), or of
 * one that has exited and been reaped.
 *
 * Dump: fdinfo's "Pid:" gives the process (-1: exited and reaped); one
 * outside the tree stops the dump, naming it. A thread pidfd (pidfd_open
 * with PIDFD_THREAD: O_EXCL in its flags) names a thread by its tid; one of
 * a thread that is not its process's leader also saves that process.
 *
 * Restore: opened late (open_late), once every process of the tree exists:
 * pidfd_open(PID) in the process that holds it, so that waiting on it,
 * signalling and pidfd_getfd work on the restored process. One of an
 * exited process is made by starting a process that exits at once (clone3
 * with CLONE_PIDFD and no exit signal, so nothing is queued to the holder),
 * and reaping it: the pidfd then reads "Pid: -1" and polls readable as
 * before. O_NONBLOCK (PIDFD_NONBLOCK) is restored by anonfd.c.
 *
 * A thread pidfd is opened with PIDFD_THREAD. A thread other than a leader
 * does not exist yet when descriptions are opened late (cryo makes threads
 * while it rebuilds each process), so its holder first gets a thread pidfd
 * of the leader of that thread's process on its fds, and once the whole
 * tree is rebuilt (release) cryo replaces it by injection: pidfd_open of
 * the tid, dup3 onto each fd (FD_CLOEXEC kept), close. An exited thread's
 * is made from a thread started and joined (it then polls readable and
 * reads "Pid: -1").
 */
#include <errno.h>
#include <pthread.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>
#include <linux/sched.h>

#include "anonfd.h"
#include "infra/inject.h"
#include "infra/log.h"
#include "infra/proc.h"

#ifndef PIDFD_THREAD
#define PIDFD_THREAD O_EXCL
#endif

static bool in_tree(const struct dump_tree *tree, pid_t pid)
{
	for (int i = 0; i < tree->nr_procs; i++)
		if (tree->procs[i]->pid == pid)
			return true;
	return false;
}

/* The process of the tree whose thread (not its leader) tid is, or 0. */
static pid_t thread_of(const struct dump_tree *tree, pid_t tid)
{
	for (int i = 0; i < tree->nr_procs; i++)
		for (int t = 1; t < tree->procs[i]->nr_threads; t++)
			if (tree->procs[i]->threads[t].tid == tid)
				return tree->procs[i]->pid;
	return 0;
}

static int dump_state(struct dump_ctx *ctx, struct dump_file *f, int fd, const char *info)
{
	const char *pid = anonfd_field(info, "Pid:");
	PidfdEntry *e;

	if (!pid)
		return err_set("fd %d of pid %d (pidfd): cannot parse its fdinfo (no Pid)", fd,
			       ctx->pid);
	e = malloc(sizeof(*e));
	if (!e)
		return err_set("out of memory");
	pidfd_entry__init(e);
	e->pid = strtol(pid, NULL, 10);
	f->entry.pidfd = e;
	/* files.c drops O_EXCL with the flags that only matter at open: here it
	 * is PIDFD_THREAD, which fdinfo's flags show */
	const char *fl = anonfd_field(info, "flags:");
	if (fl && (strtoul(fl, NULL, 8) & PIDFD_THREAD))
		f->entry.flags |= PIDFD_THREAD;
	if (e->pid != -1 && (f->entry.flags & PIDFD_THREAD) && !in_tree(ctx->tree, e->pid)) {
		e->tgid = thread_of(ctx->tree, e->pid);
		e->has_tgid = e->tgid != 0;
	}
	if (e->pid != -1 && !in_tree(ctx->tree, e->pid) && !e->has_tgid)
		return err_set("fd %d of pid %d is a pidfd of pid %d, which is outside the "
			       "checkpoint: not supported",
			       fd, ctx->pid, e->pid);
	return 0;
}

static void pidfd_free(FileEntry *fe)
{
	free(fe->pidfd);
	fe->pidfd = NULL;
}

static bool has_thread(const struct restore_ctx *p, pid_t tid)
{
	for (size_t i = 1; p && !p->zombie && i < p->core->n_threads; i++)
		if (p->core->threads[i]->tid == tid)
			return true;
	return false;
}

static int check_state(const struct restore_tree *tree, const FileEntry *fe)
{
	const PidfdEntry *e = fe->pidfd;

	if (!e)
		return err_set("pidfd without its state");
	if (e->has_tgid &&
	    (!(fe->flags & PIDFD_THREAD) || !has_thread(ctx_proc(tree, e->tgid), e->pid)))
		return err_set("pidfd of thread %d of pid %d, which is not in the checkpoint",
			       e->pid, e->tgid);
	if (e->pid != -1 && !e->has_tgid && !ctx_proc(tree, e->pid))
		return err_set("pidfd of pid %d, which is not in the checkpoint", e->pid);
	return 0;
}

/* A pidfd of a process that has exited and been reaped. */
static int exited_pidfd(int *fd)
{
	struct clone_args args = {.flags = CLONE_PIDFD, .pidfd = (uintptr_t)fd};
	siginfo_t si;
	long pid = syscall(SYS_clone3, &args, sizeof(args));

	if (pid == 0)
		syscall(SYS_exit_group, 0);
	if (pid < 0)
		return err_errno("cannot start a process to make a pidfd of an exited one");
	if (waitid(P_PIDFD, *fd, &si, WEXITED | __WALL))
		return err_errno("cannot reap the process made for a pidfd");
	return 0;
}

/* What the fdinfo of cryo's own pidfd fd names (-2 if unreadable). */
static long fdinfo_pid(int fd)
{
	char name[32], *info;
	long pid = -2;

	snprintf(name, sizeof(name), "fdinfo/%d", fd);
	if (proc_read(0, name, &info, NULL))
		return -2;
	const char *v = anonfd_field(info, "Pid:");
	if (v)
		pid = strtol(v, NULL, 10);
	free(info);
	return pid;
}

/* The thread: sends its tid on p[1], exits once p[0] gives a byte. */
static void *wait_to_exit(void *arg)
{
	const int *p = arg;
	pid_t tid = gettid();
	char c;

	if (write(p[1], &tid, sizeof(tid)) == sizeof(tid))
		(void)!read(p[0], &c, 1);
	return NULL;
}

/* A pidfd of a thread that has exited: of one started for it and joined. */
static int exited_thread_pidfd(int *fd)
{
	int to[2], from[2], p[2];
	pthread_t t;
	pid_t tid = -1;

	if (pipe(to) || pipe(from))
		return err_errno("cannot make pipes for a thread");
	p[0] = to[0];
	p[1] = from[1];
	*fd = -1;
	if (!pthread_create(&t, NULL, wait_to_exit, p)) {
		if (read(from[0], &tid, sizeof(tid)) == sizeof(tid))
			*fd = syscall(SYS_pidfd_open, tid, PIDFD_THREAD);
		(void)!write(to[1], "x", 1);
		pthread_join(t, NULL);
	}
	close(to[0]);
	close(to[1]);
	close(from[0]);
	close(from[1]);
	if (*fd < 0)
		return err_set("cannot make a pidfd of an exited thread");
	for (int i = 0; i < 1000 && fdinfo_pid(*fd) != -1; i++)
		usleep(1000); /* it has exited: the kernel lets its pid go soon */
	return 0;
}

static int make(struct restore_ctx *ctx, const FileEntry *fe, int *fd)
{
	const PidfdEntry *e = fe->pidfd;
	bool thread = fe->flags & PIDFD_THREAD;

	(void)ctx;
	if (e->pid == -1)
		return thread ? exited_thread_pidfd(fd) : exited_pidfd(fd);
	/* a thread not made yet: its leader's for now (see release_threads) */
	*fd = syscall(SYS_pidfd_open, e->has_tgid ? e->tgid : e->pid, thread ? PIDFD_THREAD : 0);
	if (*fd < 0)
		return err_errno("cannot open a pidfd of pid %d", e->has_tgid ? e->tgid : e->pid);
	return 0;
}

/* ---- thread pidfds, once every thread exists ---- */

/* The first fd of ctx before fds[n] that holds the same description, or -1. */
static int done_before(const struct restore_ctx *ctx, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (ctx->fds[i]->file_id == ctx->fds[n]->file_id)
			return ctx->fds[i]->fd;
	return -1;
}

/* fd of ctx becomes a pidfd of thread tid (the description of fd `from`, if
 * one was made already). */
static int replace_fd(struct restore_ctx *ctx, const FdEntry *fd, const FileEntry *fe, int from)
{
	long nfd = from;

	if (from < 0 &&
	    inject_call(&ctx->inj, "opening a thread pidfd", SYS_pidfd_open, fe->pidfd->pid,
			PIDFD_THREAD | (fe->flags & O_NONBLOCK), 0, 0, 0, 0, &nfd))
		return err_wrap("pidfd of thread %d on fd %u", fe->pidfd->pid, fd->fd);
	if (inject_call(&ctx->inj, "placing a thread pidfd", SYS_dup3, nfd, fd->fd,
			fd->cloexec ? O_CLOEXEC : 0, 0, 0, 0, NULL) ||
	    (from < 0 &&
	     inject_call(&ctx->inj, "closing a thread pidfd", SYS_close, nfd, 0, 0, 0, 0, 0, NULL)))
		return err_wrap("pidfd of thread %d on fd %u", fe->pidfd->pid, fd->fd);
	return 0;
}

static int release_threads(struct restore_tree *tree)
{
	for (size_t p = 0; p < tree->nr_procs; p++) {
		struct restore_ctx *ctx = tree->procs[p];
		for (size_t i = 0; !ctx->zombie && i < ctx->nr_fds; i++) {
			const FileEntry *fe = ctx_file(tree, ctx->fds[i]->file_id);
			if (fe->kind == FILE_KIND__PIDFD && fe->pidfd->has_tgid &&
			    replace_fd(ctx, ctx->fds[i], fe, done_before(ctx, i)))
				return -1;
		}
	}
	return 0;
}

static const struct anonfd_type type = {"anon_inode:[pidfd]", "pidfd", O_RDWR, PIDFD_THREAD};

ANONFD_OPS(type, dump_state, check_state, make)

static void describe(const FileEntry *fe, char *buf, size_t len)
{
	const char *what = fe->flags & PIDFD_THREAD ? "thread" : "process";

	if (fe->pidfd && fe->pidfd->pid == -1)
		snprintf(buf, len, "pidfd of an exited %s", what);
	else if (fe->pidfd && fe->pidfd->has_tgid)
		snprintf(buf, len, "pidfd of thread %d of pid %d", fe->pidfd->pid, fe->pidfd->tgid);
	else
		snprintf(buf, len, "pidfd of %s %d", what, fe->pidfd ? fe->pidfd->pid : 0);
}

const struct fd_kind pidfd_kind = {
    .name = "pidfd",
    .kind = FILE_KIND__PIDFD,
    .recognise = anon_recognise,
    .dump = anon_dump,
    .free_entry = pidfd_free,
    .validate = anon_validate,
    .release = release_threads,
    .open_late = anon_open,
    .describe = describe,
};
