/* mm: the address space: VMAs and the mm fields (mm.c). */
#ifndef CRYO_MM_H
#define CRYO_MM_H

#include "context.h"

int mm_dump(struct dump_ctx *ctx, MmEntry *mm);
/* mm-PID.img */
int mm_write(struct dump_ctx *ctx);
int mm_load(struct restore_ctx *ctx);
int mm_validate(struct restore_ctx *ctx);
int mm_restore_plan(struct restore_ctx *ctx);
int mm_restore_child(struct restore_ctx *ctx);
int mm_restore(struct restore_ctx *ctx);
int mm_restore_finish(struct restore_ctx *ctx);

#endif
