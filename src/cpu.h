/* cpu: registers and FPU state of a thread (cpu.c). */
#ifndef CRYO_CPU_H
#define CRYO_CPU_H

#include "context.h"

int cpu_dump_thread(struct dump_ctx *ctx, struct dump_thread *t);
int cpu_validate_thread(struct restore_ctx *ctx, const ThreadEntry *e);
int cpu_restore_thread(struct restore_ctx *ctx, struct restore_thread *t);

#endif
