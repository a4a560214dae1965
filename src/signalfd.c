/*
 * signalfd: the set of signals a signalfd reads.
 *
 * Dump: the mask is fdinfo's "sigmask:" (hex, bit N-1 for signal N).
 * Restore: signalfd(-1, mask). The signals themselves stay queued on the
 * process (signals.c), as they were: a signalfd holds none of its own.
 * O_NONBLOCK is restored by anonfd.c; the row at the end is the kind in
 * the table of kinds (fdkind.h).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/signalfd.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "anonfd.h"
#include "infra/log.h"

static int dump_state(struct dump_ctx *ctx, struct dump_file *f, int fd, const char *info)
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

static void signalfd_free(FileEntry *fe)
{
	free(fe->signalfd);
	fe->signalfd = NULL;
}

static int check_state(const struct restore_tree *tree, const FileEntry *fe)
{
	(void)tree;
	if (!fe->signalfd)
		return err_set("signalfd without its state");
	return 0;
}

static int make(struct restore_ctx *ctx, const FileEntry *fe, int *fd)
{
	uint64_t m = fe->signalfd->sigmask; /* the kernel's sigset_t: one u64 on x86-64 */

	(void)ctx;
	/* the raw syscall: glibc's sigaddset refuses the signals it reserves (32, 33) */
	*fd = syscall(SYS_signalfd4, -1, &m, sizeof(m), SFD_CLOEXEC);
	if (*fd < 0)
		return err_errno("cannot create a signalfd for mask %#llx", (unsigned long long)m);
	return 0;
}

static const struct anonfd_type type = {"anon_inode:[signalfd]", "signalfd", O_RDWR, 0};

ANONFD_OPS(type, dump_state, check_state, make)

const struct fd_kind signalfd_kind = {
    .name = "signalfd",
    .kind = FILE_KIND__SIGNALFD,
    .recognise = anon_recognise,
    .dump = anon_dump,
    .free_entry = signalfd_free,
    .validate = anon_validate,
    .open = anon_open,
};
