/*
 * files: the fd tables of a tree and its open file descriptions (files.c),
 * dispatched through the table of kinds (fdkind.h).
 */
#ifndef CRYO_FILES_H
#define CRYO_FILES_H

#include "context.h"
#include "fdkind.h"

/* ---- dump ---- */
/* While injecting: lists the process's fds and reads their FD_CLOEXEC
 * (fcntl, in batches: one fdinfo read each costs more, for thousands). */
int files_read_fd_flags(struct dump_ctx *ctx);
/* One process's fds (those files_read_fd_flags listed), kept for files_write. */
int files_dump(struct dump_ctx *ctx);
/* Writes the process's fd table (once the tree may run again: an image
 * file made costs the frozen tree time on some file systems). */
int files_write(struct dump_ctx *ctx);
/* Once every process was seen: each kind finishes, then files.img. */
int files_dump_finish(struct dump_tree *tree);
void files_dump_end(struct dump_tree *tree, enum dump_end how);
void files_dump_free(struct dump_tree *tree);
/* The index of the description of the tree local_fd shares, or -1. */
int files_find(const struct dump_tree *tree, int local_fd);
/* A description no fd table holds: one in flight in a unix socket, or one
 * only a mapping holds. local is cryo's fd on it; the tree keeps its own
 * duplicate. *id gets the new description's id; the root makes it. */
int files_add_unheld(struct dump_ctx *ctx, int local, uint32_t *id);

/* ---- restore, in cryo ---- */
int files_load(struct restore_tree *tree);    /* files.img and the kinds' images */
int files_load_proc(struct restore_ctx *ctx); /* fdinfo-PID.img */
int files_validate(struct restore_tree *tree);
int files_prepare(struct restore_tree *tree);
/* Which descriptions the root makes and every process inherits. */
int files_plan(struct restore_tree *tree);
int files_max_fd(const struct restore_ctx *ctx);
int files_restore_release(struct restore_tree *tree);
void files_restore_undo(struct restore_tree *tree);
void files_restore_free(struct restore_tree *tree);
void files_proc_free(struct restore_ctx *ctx);

/* ---- restore, in the new process ---- */
/* The root, before it forks: every shared description into its slot. */
int files_restore_inherited(struct restore_ctx *root);
/* Every fd of the process in place, temporaries closed. */
int files_restore_child(struct restore_ctx *ctx);
/* Once every process of the tree exists: the descriptions opened late. */
int files_restore_late(struct restore_ctx *ctx);

/* ---- show ---- */
void files_describe(const FileEntry *fe, char *buf, size_t len);

#endif
