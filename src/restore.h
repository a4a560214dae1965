/*
 * restore: the orchestrator of a restore (restore.c). Nothing below it
 * should call it: restore_scratch_put moves to infra/inject.c.
 */
#ifndef CRYO_RESTORE_H
#define CRYO_RESTORE_H

#include "context.h"

/* Copy data into the trampoline's scratch area at offset off; returns its address. */
uint64_t restore_scratch_put(struct restore_ctx *ctx, size_t off, const void *data, size_t len);

#endif
