/* creds: credentials and capabilities (creds.c). */
#ifndef CRYO_CREDS_H
#define CRYO_CREDS_H

#include "context.h"

int creds_dump(struct dump_ctx *ctx);
int creds_validate(struct restore_ctx *ctx);
/* In the new process: its loginuid. */
int creds_restore_loginuid(struct restore_ctx *ctx);
int creds_restore_thread(struct restore_ctx *ctx, struct restore_thread *t);

#endif
