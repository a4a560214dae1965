/*
 * tty: the terminal of a shell job (tty.c): a kind of description
 * (fdkind.h), and the session the restored job takes on that terminal.
 */
#ifndef CRYO_TTY_H
#define CRYO_TTY_H

#include "context.h"

/* A terminal fd of the dump (f->path set): kept as the shell job's, or
 * refused without --shell-job. */
int tty_dump_shell_job(const struct cryo_opts *opts, struct dump_file *f, pid_t pid, int fd);
/* In the new process: a group of its own, in the terminal's foreground. */
int tty_restore_session(struct restore_ctx *ctx);
/* In cryo, once the restored job has ended: take the foreground back. */
void tty_restore_return(struct restore_tree *tree);

#endif
