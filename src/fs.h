/* fs: cwd, root and umask (fs.c). */
#ifndef CRYO_FS_H
#define CRYO_FS_H

#include "context.h"

/* Reads cwd, root and umask, kept for fs_write (an image file made while
 * the tree is frozen costs it time on some file systems). */
int fs_dump(struct dump_ctx *ctx);
int fs_write(struct dump_ctx *ctx);
int fs_load(struct restore_ctx *ctx);
int fs_validate(struct restore_ctx *ctx);
int fs_restore_child(struct restore_ctx *ctx);

#endif
