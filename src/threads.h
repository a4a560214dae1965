/* threads: the threads of one process (threads.c). */
#ifndef CRYO_THREADS_H
#define CRYO_THREADS_H

#include "context.h"

int threads_freeze(struct dump_ctx *ctx);
int threads_dump(struct dump_ctx *ctx);
void threads_release(struct dump_ctx *ctx);
int threads_kill(struct dump_ctx *ctx);
void threads_dump_free(struct dump_ctx *ctx);
int threads_validate(struct restore_ctx *ctx);
int threads_restore_create(struct restore_ctx *ctx);
int threads_restore(struct restore_ctx *ctx);
int threads_restore_creds(struct restore_ctx *ctx);
int threads_restore_release(struct restore_ctx *ctx);
void threads_restore_free(struct restore_ctx *ctx);

#endif
