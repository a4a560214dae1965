/*
 * tty: the controlling terminal of a shell job (--shell-job).
 *
 * A process started from an interactive shell has its terminal on fds 0-2.
 * A terminal belongs to its session and cannot be carried into a checkpoint,
 * so, like CRIU's --shell-job, the dump records only which fds were the
 * terminal (path and flags), and the restore hands them the terminal of
 * whoever runs `cryo restore`: the restored process joins that session in
 * a process group of its own, which becomes the terminal's foreground group,
 * as a shell would do for a job. Without --shell-job the process's
 * controlling terminal stops the dump with an error naming it.
 *
 * A terminal device of the machine that is not the process's controlling
 * terminal (a virtual console, a serial line, /dev/console, held open
 * without --shell-job) is the machine's, not the process's: its settings and
 * queues live in the device and outlast the process. It is saved as its
 * path and device number (file_entry.rdev) and opened again by that path
 * (O_NOCTTY; O_NONBLOCK only as it was, so that a serial line without
 * carrier does not block the open), which must still be that device.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "fdkind.h"
#include "infra/log.h"
#include "tty.h"

static bool is_terminal(dev_t rdev)
{
	/* 4: virtual consoles and serial lines, 5: /dev/tty and the console
	 * (5:0, /dev/tty, 5:2, /dev/ptmx, and the slaves, 136-143, are
	 * pty.c's: one whose master is outside the tree comes back here) */
	return major(rdev) == 4 || (major(rdev) == 5 && minor(rdev) != 0 && minor(rdev) != 2);
}

static bool tty_recognise(const struct fd_probe *p)
{
	return S_ISCHR(p->st->st_mode) && !(p->flags & O_PATH) && is_terminal(p->st->st_rdev);
}

int tty_dump_shell_job(const struct cryo_opts *opts, struct dump_file *f, pid_t pid, int fd)
{
	if (!opts->shell_job)
		return err_set("fd %d of pid %d is a terminal (%s) outside the tree: dump it as "
			       "a shell job with --shell-job",
			       fd, pid, f->path);
	f->entry.path = f->path;
	return 0;
}

static int tty_dump(struct dump_ctx *ctx, struct dump_file *f, const struct fd_probe *p)
{
	snprintf(f->path, sizeof(f->path), "%s", p->link);
	if (ctx->opts->shell_job || (dev_t)ctx->stat.tty_nr == p->st->st_rdev)
		return tty_dump_shell_job(ctx->opts, f, p->pid, p->fd);
	f->entry.path = f->path; /* a device terminal, opened again by its path */
	f->entry.has_rdev = true;
	f->entry.rdev = p->st->st_rdev;
	return 0;
}

static int device_validate(const FileEntry *fe, const struct fd_use *use)
{
	struct stat st;

	if (!fe->path || fe->path[0] != '/' || !is_terminal(fe->rdev))
		return err_set("files.img: the terminal of fd %d of pid %d is malformed", use->fd,
			       use->pid);
	if (stat(fe->path, &st))
		return err_errno("terminal %s (fd %d of pid %d) is not available", fe->path,
				 use->fd, use->pid);
	if (!S_ISCHR(st.st_mode) || st.st_rdev != fe->rdev)
		return err_set("%s (fd %d of pid %d) is no longer the terminal %u:%u", fe->path,
			       use->fd, use->pid, major(fe->rdev), minor(fe->rdev));
	return 0;
}

static int tty_validate(const struct restore_tree *tree, const FileEntry *fe,
			const struct fd_use *use)
{
	if (fe->has_rdev)
		return device_validate(fe, use);
	if (!tree->opts->shell_job)
		return err_set("fd %d of pid %d was a terminal: restore with --shell-job", use->fd,
			       use->pid);
	return 0;
}

static bool needs_terminal(const struct restore_tree *tree)
{
	for (size_t i = 0; i < tree->nr_files; i++)
		if (tree->files[i]->kind == FILE_KIND__TTY && !tree->files[i]->has_rdev)
			return true;
	return false;
}

/* In cryo, before the new process exists: find the terminal to hand over. */
static int tty_prepare(struct restore_tree *tree)
{
	tree->tty_fd = -1;
	if (!tree->opts->shell_job)
		return 0;
	tree->tty_fd = open("/dev/tty", O_RDWR | O_NOCTTY | O_CLOEXEC);
	if (tree->tty_fd < 0)
		return err_errno("--shell-job: cryo has no controlling terminal to give the "
				 "restored process (/dev/tty)");
	if (!needs_terminal(tree))
		pr_info("--shell-job: the checkpoint has no terminal fds");
	return 0;
}

static void tty_restore_free(struct restore_tree *tree)
{
	if (tree->tty_fd >= 0)
		close(tree->tty_fd);
	tree->tty_fd = -1;
}

/* A device terminal: by its path, without waiting for a carrier. */
static int open_device(const FileEntry *fe, int *fd)
{
	*fd = open(fe->path, (fe->flags & (O_ACCMODE | O_APPEND)) | O_NOCTTY | O_NONBLOCK);
	if (*fd < 0)
		return err_errno("cannot open the terminal %s", fe->path);
	if (!(fe->flags & O_NONBLOCK) && fcntl(*fd, F_SETFL, fe->flags & O_APPEND))
		return err_errno("cannot set the flags of %s", fe->path);
	return 0;
}

/* In the new process: a fresh open of the same terminal, with the old flags. */
static int tty_open(struct restore_ctx *ctx, const FileEntry *fe, int *fd)
{
	char path[64];

	if (fe->has_rdev)
		return open_device(fe, fd);
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
	if (tcsetpgrp(ctx->tree->tty_fd, getpid()))
		return err_errno("cannot move pid %d to the terminal's foreground", ctx->pid);
	return 0;
}

/* In cryo, once the restored job has ended: take the foreground back. */
void tty_restore_return(struct restore_tree *tree)
{
	sigset_t ttou, old;

	if (tree->tty_fd < 0)
		return;
	sigemptyset(&ttou);
	sigaddset(&ttou, SIGTTOU);
	sigprocmask(SIG_BLOCK, &ttou, &old);
	if (tcsetpgrp(tree->tty_fd, getpgrp()))
		pr_warn("cannot take the terminal's foreground back: %s", strerror(errno));
	sigprocmask(SIG_SETMASK, &old, NULL);
}

const struct fd_kind tty_kind = {
    .name = "terminal",
    .kind = FILE_KIND__TTY,
    .never_shared = true,
    .recognise = tty_recognise,
    .dump = tty_dump,
    .validate = tty_validate,
    .prepare = tty_prepare,
    .restore_free = tty_restore_free,
    .open = tty_open,
};
