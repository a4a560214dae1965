/* share: the fd table and fs information a process shares with its parent
 * (CLONE_FILES, CLONE_FS), dumped and made shared again (share.c). */
#ifndef CRYO_SHARE_H
#define CRYO_SHARE_H

#include <stdbool.h>

#include "context.h"

/* Dump (task_dump): records what ctx shares with its parent; refuses
 * CLONE_VM/CLONE_SIGHAND and sharing with a process not its parent. */
int share_dump(struct dump_ctx *ctx);

/* Restore: whether ctx shares its parent's fd table / fs information. */
bool share_files(const struct restore_ctx *ctx);
bool share_fs(const struct restore_ctx *ctx);
/* mm_restore_plan: ctx->exe_fd and the first slot of ctx's mapped files
 * (a sharer's come after those of the table's processes planned before);
 * share_reserve then keeps the table owner's temporaries above them, and
 * share_plan_done, once all are planned, every sharer's too. */
int share_slots(struct restore_ctx *ctx, int *next);
void share_reserve(struct restore_ctx *ctx);
void share_plan_done(struct restore_tree *tree);
/* In such a kid, once its mapped files are open and its own sharing kids
 * said theirs are: tells its parent, and waits until the fds are placed. */
int share_ready(struct restore_ctx *ctx);
/* In the parent, once the shared table's fds are placed: tells the kids. */
int share_placed(struct restore_ctx *ctx);
/* Whether cryo closes the service fds in ctx: only in the last process of
 * a shared table that it rebuilds. */
bool share_closes_service_fds(const struct restore_ctx *ctx);

#endif
