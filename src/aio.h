/* aio: the rings of io_setup() contexts (aio.c). */
#ifndef CRYO_AIO_H
#define CRYO_AIO_H

#include "context.h"

/* Whether the mapping at PV is an AIO ring ("/[aio] (deleted)"). */
bool aio_is_ring(const struct proc_vma *pv);
/* Saves the ring at PV of pid (its header and events) into V. */
int aio_dump_ring(pid_t pid, const struct proc_vma *pv, VmaEntry *v);
/* In the stopped new process: a context with the same ring at the same
 * address (the same context id), its completed events not yet reaped. */
int aio_restore_ring(struct restore_ctx *ctx, const VmaEntry *v);

#endif
