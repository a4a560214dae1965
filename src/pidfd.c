/*
 * pidfd: descriptions that name a process (pidfd_open, clone CLONE_PIDFD):
 * of a process of the tree (a child, the process itself, any other), or of
 * one that has exited and been reaped.
 *
 * Dump: fdinfo's "Pid:" gives the process (-1: exited and reaped); one
 * outside the tree stops the dump, naming it. Thread pidfds (PIDFD_THREAD,
 * O_EXCL in the flags) are refused by anonfd.c's flag check.
 *
 * Restore: opened late (open_late), once every process of the tree exists:
 * pidfd_open(PID) in the process that holds it, so that waiting on it,
 * signalling and pidfd_getfd work on the restored process. One of an
 * exited process is made by starting a process that exits at once (clone3
 * with CLONE_PIDFD and no exit signal, so nothing is queued to the holder),
 * and reaping it: the pidfd then reads "Pid: -1" and polls readable as
 * before. O_NONBLOCK (PIDFD_NONBLOCK) is restored by anonfd.c.
 */
#include <errno.h>
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
#include "infra/log.h"

static bool in_tree(const struct dump_tree *tree, pid_t pid)
{
	for (int i = 0; i < tree->nr_procs; i++)
		if (tree->procs[i]->pid == pid)
			return true;
	return false;
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
	if (e->pid != -1 && !in_tree(ctx->tree, e->pid))
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

static int check_state(const struct restore_tree *tree, const FileEntry *fe)
{
	if (!fe->pidfd)
		return err_set("pidfd without its state");
	if (fe->pidfd->pid != -1 && !ctx_proc(tree, fe->pidfd->pid))
		return err_set("pidfd of pid %d, which is not in the checkpoint", fe->pidfd->pid);
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

static int make(struct restore_ctx *ctx, const FileEntry *fe, int *fd)
{
	(void)ctx;
	if (fe->pidfd->pid == -1)
		return exited_pidfd(fd);
	*fd = syscall(SYS_pidfd_open, fe->pidfd->pid, 0);
	if (*fd < 0)
		return err_errno("cannot open a pidfd of pid %d", fe->pidfd->pid);
	return 0;
}

static const struct anonfd_type type = {"anon_inode:[pidfd]", "pidfd", O_RDWR};

ANONFD_OPS(type, dump_state, check_state, make)

static void describe(const FileEntry *fe, char *buf, size_t len)
{
	if (fe->pidfd && fe->pidfd->pid == -1)
		snprintf(buf, len, "pidfd of an exited process");
	else
		snprintf(buf, len, "pidfd of pid %d", fe->pidfd ? fe->pidfd->pid : 0);
}

const struct fd_kind pidfd_kind = {
    .name = "pidfd",
    .kind = FILE_KIND__PIDFD,
    .recognise = anon_recognise,
    .dump = anon_dump,
    .free_entry = pidfd_free,
    .validate = anon_validate,
    .open_late = anon_open,
    .describe = describe,
};
