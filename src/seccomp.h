/* seccomp: strict mode and filters of each thread (seccomp.c). */
#ifndef CRYO_SECCOMP_H
#define CRYO_SECCOMP_H

#include "context.h"

/* Each thread's mode and filters, read with ptrace (after threads_dump). */
int seccomp_dump(struct dump_ctx *ctx);
/* Installs them, the last state put in before the credentials. */
int seccomp_restore(struct restore_ctx *ctx);

/* seccomp_notify.c: user-notification listeners. */
struct inject;
/* The filter returns SECCOMP_RET_USER_NOTIF somewhere. */
bool seccomp_filter_notifies(const SeccompFilter *f);
/* Filter k (oldest first) of thread tid (0: any thread, for a chain the
 * threads share) has a listener the process holds: install it with
 * SECCOMP_FILTER_FLAG_NEW_LISTENER. */
bool seccomp_notify_wanted(const struct restore_ctx *ctx, pid_t tid, size_t k);
/* Moves the new listener (an fd of the process) onto the fds that held it. */
int seccomp_notify_place(struct restore_ctx *ctx, struct inject *inj, pid_t tid, size_t k,
			 long listener);

#endif
