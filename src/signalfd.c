/*
 * signalfd: the set of signals a signalfd reads.
 *
 * Dump: the mask is fdinfo's "sigmask:" (hex, bit N-1 for signal N).
 * Restore: signalfd(-1, mask). The signals themselves stay queued on the
 * process (signals.c), as they were: a signalfd holds none of its own.
 * O_NONBLOCK is restored by anonfd.c.
 */
#include <errno.h>
#include <stdlib.h>
#include <sys/signalfd.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "context.h"
#include "infra/log.h"

int signalfd_dump(struct dump_ctx *ctx, struct dump_file *f, int fd, const char *info)
{
	const char *m = anonfd_field(info, "sigmask:");
	SignalfdEntry *e;

	if (!m)
		return err_set("fd %d of pid %d (signalfd): cannot parse its fdinfo (no sigmask)",
			       fd, ctx->pid);
	e = malloc(sizeof(*e));
	if (!e)
		return err_set("out of memory");
	signalfd_entry__init(e);
	e->sigmask = strtoull(m, NULL, 16);
	f->entry.signalfd = e;
	return 0;
}

void signalfd_free(FileEntry *fe)
{
	free(fe->signalfd);
	fe->signalfd = NULL;
}

int signalfd_validate(const struct restore_ctx *ctx, const FileEntry *fe)
{
	(void)ctx;
	if (!fe->signalfd)
		return err_set("signalfd without its state");
	return 0;
}

int signalfd_restore_child(struct restore_ctx *ctx, const FileEntry *fe, int *fd)
{
	uint64_t m = fe->signalfd->sigmask; /* the kernel's sigset_t: one u64 on x86-64 */

	(void)ctx;
	/* the raw syscall: glibc's sigaddset refuses the signals it reserves (32, 33) */
	*fd = syscall(SYS_signalfd4, -1, &m, sizeof(m), SFD_CLOEXEC);
	if (*fd < 0)
		return err_errno("cannot create a signalfd for mask %#llx", (unsigned long long)m);
	return 0;
}
