/* posix_timers: timer_create timers, with their ids (posix_timers.c). */
#ifndef CRYO_POSIX_TIMERS_H
#define CRYO_POSIX_TIMERS_H

#include "context.h"

int posix_timers_dump(struct dump_ctx *ctx);
int posix_timers_validate(struct restore_ctx *ctx);
/* Once the threads exist (a timer may signal one of them). */
int posix_timers_restore(struct restore_ctx *ctx);

#endif
