/* posix_timers: timer_create timers, with their ids (posix_timers.c). */
#ifndef CRYO_POSIX_TIMERS_H
#define CRYO_POSIX_TIMERS_H

#include "context.h"

#include <signal.h>
#include <stdbool.h>

int posix_timers_dump(struct dump_ctx *ctx);
/* Whether the queued signal SI is a timer's own, which posix_timers_restore
 * makes the timer queue again (signals.c then does not). */
bool posix_timers_requeues(const CoreEntry *core, const siginfo_t *si);
int posix_timers_validate(struct restore_ctx *ctx);
/* Once the threads exist (a timer may signal one of them). */
int posix_timers_restore(struct restore_ctx *ctx);

#endif
