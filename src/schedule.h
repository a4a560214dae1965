/* sched: scheduling, CPU affinity, oom_score_adj, no_new_privs and the
 * THP-disable flag of a task (schedule.c; a header named sched.h would hide <sched.h>). */
#ifndef CRYO_SCHEDULE_H
#define CRYO_SCHEDULE_H

#include "context.h"

/* Per thread (from threads.c, inside the thread's injection). */
int sched_dump_thread(struct dump_ctx *ctx, struct dump_thread *t);
/* Per process: oom_score_adj and the THP-disable flag. */
int sched_dump(struct dump_ctx *ctx);
/* Refuses an affinity no CPU of this machine can satisfy. */
int sched_validate(struct restore_ctx *ctx);
/* Late in the rebuild, once nothing slow is left to inject. */
int sched_restore(struct restore_ctx *ctx);

#endif
