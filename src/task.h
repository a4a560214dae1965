/* task: ids, limits, rseq, name and the rest of a task (task.c). */
#ifndef CRYO_TASK_H
#define CRYO_TASK_H

#include "context.h"

int task_dump(struct dump_ctx *ctx);
int task_dump_thread(struct dump_ctx *ctx, struct dump_thread *t);
/* core-PID.img: written with everything the other kinds put in it. */
int task_write(struct dump_ctx *ctx);
int task_load(struct restore_ctx *ctx);
int task_validate(struct restore_ctx *ctx);
int task_restore_child(struct restore_ctx *ctx);
/* Before it forks: the session or group it leads, then its terminal. */
int task_restore_session(struct restore_ctx *ctx);
/* The session or group it leads (a zombie too, before it exits). */
int task_make_ids(struct restore_ctx *ctx);
/* Joins its group if it does not lead it, once the group exists. */
int task_join_group(struct restore_ctx *ctx);
pid_t task_actual_group(const struct restore_ctx *ctx, pid_t pgid);
int task_restore_unregister(struct restore_ctx *ctx);
int task_restore(struct restore_ctx *ctx);
int task_restore_thread(struct restore_ctx *ctx, struct restore_thread *t);

#endif
