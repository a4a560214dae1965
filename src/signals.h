/* signals: handlers, masks and queued signals (signals.c). */
#ifndef CRYO_SIGNALS_H
#define CRYO_SIGNALS_H

#include "context.h"

int signals_dump(struct dump_ctx *ctx);
int signals_dump_thread(struct dump_ctx *ctx, struct dump_thread *t);
int signals_restore(struct restore_ctx *ctx);
int signals_restore_thread(struct restore_ctx *ctx, struct restore_thread *t);
int signals_restore_mask(struct restore_ctx *ctx, struct restore_thread *t);

#endif
