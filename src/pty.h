/*
 * pty: pseudo-terminal pairs of the tree (pty.c): a kind of description
 * (fdkind.h), and the sessions whose controlling terminal they are.
 */
#ifndef CRYO_PTY_H
#define CRYO_PTY_H

#include "context.h"

/* In the new process, once its session and group are set, before it
 * forks: a session leader takes its terminal, the leader of its
 * foreground group brings it to the foreground. */
int pty_restore_session(struct restore_ctx *ctx);

#endif
