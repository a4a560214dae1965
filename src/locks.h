/* locks: file locks (locks.c). */
#ifndef CRYO_LOCKS_H
#define CRYO_LOCKS_H

#include "context.h"

int locks_dump(struct dump_ctx *ctx);
int locks_write(struct dump_ctx *ctx);
void locks_dump_free(struct dump_ctx *ctx);
int locks_validate(struct restore_ctx *ctx);
int locks_restore_child(struct restore_ctx *ctx);
void locks_restore_free(struct restore_ctx *ctx);

#endif
