/*
 * tty: the controlling terminal of a shell job (--shell-job).
 *
 * A process started from an interactive shell has its terminal on fds 0-2.
 * A terminal belongs to its session and cannot be carried into a checkpoint,
 * so, like CRIU's --shell-job, the dump records only which fds were the
 * terminal (path and flags), and the restore hands them the terminal of
 * whoever runs `cryo restore`: the restored process joins that session in
 * a process group of its own, which becomes the terminal's foreground group,
 * as a shell would do for a job. Without --shell-job a terminal fd stops
 * the dump with an error naming it.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#include "context.h"
#include "infra/log.h"

bool tty_is_terminal(unsigned major)
{
	/* 4: virtual consoles and serial lines, 5: /dev/tty and the console,
	 * 136-143: pseudo-terminal slaves */
	return major == 4 || major == 5 || (major >= 136 && major <= 143);
}

int tty_dump_file(struct dump_ctx *ctx, struct dump_file *f, int fd)
{
	char name[32];

	snprintf(name, sizeof(name), "fd/%d", fd);
	if (proc_readlink(ctx->pid, name, f->path, sizeof(f->path)))
		return -1;
	if (!strcmp(f->path, "/dev/ptmx") || !strncmp(f->path, "/dev/pts/ptmx", 13))
		return err_set(
		    "fd %d of pid %d is a pseudo-terminal master (%s): not supported yet", fd,
		    ctx->pid, f->path);
	if (!ctx->opts->shell_job)
		return err_set("fd %d of pid %d is a terminal (%s): dump it as a shell job "
			       "with --shell-job",
			       fd, ctx->pid, f->path);
	f->entry.kind = FILE_KIND__TTY;
	f->entry.path = f->path;
	return 0;
}

static bool needs_terminal(const struct restore_ctx *ctx)
{
	for (size_t i = 0; i < ctx->nr_files; i++)
		if (ctx->files[i]->kind == FILE_KIND__TTY)
			return true;
	return false;
}

/* In cryo, before the new process exists: find the terminal to hand over. */
int tty_restore_prepare(struct restore_ctx *ctx)
{
	ctx->tty_fd = -1;
	if (!ctx->opts->shell_job)
		return 0;
	ctx->tty_fd = open("/dev/tty", O_RDWR | O_NOCTTY | O_CLOEXEC);
	if (ctx->tty_fd < 0)
		return err_errno("--shell-job: cryo has no controlling terminal to give the "
				 "restored process (/dev/tty)");
	if (!needs_terminal(ctx))
		pr_info("--shell-job: the checkpoint has no terminal fds");
	return 0;
}

/* In the new process: a fresh open of the same terminal, with the old flags. */
int tty_restore_child(struct restore_ctx *ctx, const FileEntry *fe, int *fd)
{
	char path[64];

	snprintf(path, sizeof(path), "/proc/self/fd/%d", ctx->svc_base + SVC_TTY);
	*fd = open(path, (fe->flags & (O_ACCMODE | O_APPEND | O_NONBLOCK)) | O_NOCTTY);
	if (*fd < 0)
		return err_errno("cannot open the terminal for fd of %s", fe->path);
	return 0;
}

/* In the new process: a group of its own, in the foreground of the terminal. */
int tty_restore_session(struct restore_ctx *ctx)
{
	if (setpgid(0, 0))
		return err_errno("cannot create a process group for pid %d", ctx->pid);
	/* SIGTTOU is blocked here, so a background group may take the terminal */
	if (tcsetpgrp(ctx->tty_fd, getpid()))
		return err_errno("cannot move pid %d to the terminal's foreground", ctx->pid);
	return 0;
}

/* In cryo, once the restored job has ended: take the foreground back. */
void tty_restore_return(struct restore_ctx *ctx)
{
	sigset_t ttou, old;

	if (ctx->tty_fd < 0)
		return;
	sigemptyset(&ttou);
	sigaddset(&ttou, SIGTTOU);
	sigprocmask(SIG_BLOCK, &ttou, &old);
	if (tcsetpgrp(ctx->tty_fd, getpgrp()))
		pr_warn("cannot take the terminal's foreground back: %s", strerror(errno));
	sigprocmask(SIG_SETMASK, &old, NULL);
}
