/*
 * eventfd: the counter and the EFD_SEMAPHORE mode of an eventfd.
 *
 * Dump: both are read from fdinfo ("eventfd-count:" in hex,
 * "eventfd-semaphore:"); nothing is read from the fd, so the counter is
 * left untouched. Restore: a new eventfd in the same mode, then the counter
 * is written into it (eventfd()'s initial value is only 32 bits wide).
 * O_NONBLOCK is restored by anonfd.c.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "anonfd.h"
#include "infra/log.h"

static int dump_state(struct dump_ctx *ctx, struct dump_file *f, int fd, const char *info)
{
	const char *cnt = anonfd_field(info, "eventfd-count:");
	const char *sem = anonfd_field(info, "eventfd-semaphore:");
	EventfdEntry *e;

	if (!cnt || !sem)
		return err_set("fd %d of pid %d (eventfd): cannot parse its fdinfo (no "
			       "eventfd-count or eventfd-semaphore)",
			       fd, ctx->pid);
	e = malloc(sizeof(*e));
	if (!e)
		return err_set("out of memory");
	eventfd_entry__init(e);
	e->counter = strtoull(cnt, NULL, 16);
	e->semaphore = strtoul(sem, NULL, 10) != 0;
	f->entry.eventfd = e;
	return 0;
}

static void eventfd_free(FileEntry *fe)
{
	free(fe->eventfd);
	fe->eventfd = NULL;
}

static int check_state(const struct restore_tree *tree, const FileEntry *fe)
{
	(void)tree;
	if (!fe->eventfd)
		return err_set("eventfd without its state");
	if (fe->eventfd->counter == UINT64_MAX)
		return err_set("eventfd counter %#llx out of range",
			       (unsigned long long)fe->eventfd->counter);
	return 0;
}

static int make(struct restore_ctx *ctx, const FileEntry *fe, int *fd)
{
	const EventfdEntry *e = fe->eventfd;
	uint64_t v = e->counter;

	(void)ctx;
	*fd = eventfd(0, EFD_CLOEXEC | (e->semaphore ? EFD_SEMAPHORE : 0));
	if (*fd < 0)
		return err_errno("cannot create an eventfd");
	if (v && write(*fd, &v, sizeof(v)) != sizeof(v))
		return err_errno("cannot set the eventfd counter to %llu", (unsigned long long)v);
	return 0;
}

static const struct anonfd_type type = {"anon_inode:[eventfd]", "eventfd", O_RDWR, 0};

ANONFD_OPS(type, dump_state, check_state, make)

const struct fd_kind eventfd_kind = {
    .name = "eventfd",
    .kind = FILE_KIND__EVENTFD,
    .recognise = anon_recognise,
    .dump = anon_dump,
    .free_entry = eventfd_free,
    .validate = anon_validate,
    .open = anon_open,
};
