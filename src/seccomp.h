/* seccomp: strict mode and filters of each thread (seccomp.c). */
#ifndef CRYO_SECCOMP_H
#define CRYO_SECCOMP_H

#include "context.h"

/* Each thread's mode and filters, read with ptrace (after threads_dump). */
int seccomp_dump(struct dump_ctx *ctx);
/* Installs them, the last state put in before the credentials. */
int seccomp_restore(struct restore_ctx *ctx);

#endif
