/* timers: interval timers (timers.c). */
#ifndef CRYO_TIMERS_H
#define CRYO_TIMERS_H

#include "context.h"

int timers_dump(struct dump_ctx *ctx);
int timers_restore(struct restore_ctx *ctx);

#endif
