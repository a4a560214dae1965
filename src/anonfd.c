/*
 * anonfd: the file descriptions that live on the kernel's anonymous inode
 * (readlink gives "anon_inode:[eventfd]", "anon_inode:inotify", ...).
 *
 * fstat cannot tell them apart (no file type), so files.c hands every
 * "anon_inode:" fd here and this file dispatches on the link to the kind's
 * own file: eventfd.c, signalfd.c, timerfd.c, epoll.c, inotify.c. Each
 * reads /proc/PID/fdinfo/N and fills its message of images/anonfd.proto
 * inside the file_entry. Kinds nobody handles stop the dump.
 *
 * The open flags shared by all of them (the access mode and O_NONBLOCK) are
 * checked and restored here; anything else (O_ASYNC...) is refused.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "context.h"
#include "infra/log.h"

/* flags an anon-inode description may carry and that cryo restores */
#define ANON_FLAGS (O_ACCMODE | O_NONBLOCK | O_LARGEFILE)

static const struct anon_kind {
	const char *link;
	const char *name;
	FileKind kind;
	int accmode; /* what the kernel gives the description */
	int (*dump)(struct dump_ctx *ctx, struct dump_file *f, int fd, const char *info);
	int (*validate)(const struct restore_ctx *ctx, const FileEntry *fe);
	int (*restore)(struct restore_ctx *ctx, const FileEntry *fe, int *fd);
	void (*free)(FileEntry *fe);
} kinds[] = {
    {"anon_inode:[eventfd]", "eventfd", FILE_KIND__EVENTFD, O_RDWR, eventfd_dump, eventfd_validate,
     eventfd_restore_child, eventfd_free},
    {"anon_inode:[signalfd]", "signalfd", FILE_KIND__SIGNALFD, O_RDWR, signalfd_dump,
     signalfd_validate, signalfd_restore_child, signalfd_free},
    {"anon_inode:[timerfd]", "timerfd", FILE_KIND__TIMERFD, O_RDWR, timerfd_dump, timerfd_validate,
     timerfd_restore_child, timerfd_free},
    {"anon_inode:[eventpoll]", "epoll", FILE_KIND__EPOLL, O_RDWR, epoll_dump, epoll_validate,
     epoll_restore_child, epoll_free},
    {"anon_inode:inotify", "inotify", FILE_KIND__INOTIFY, O_RDONLY, inotify_dump, inotify_validate,
     inotify_restore_child, inotify_free},
};
#define NR_KINDS (sizeof(kinds) / sizeof(kinds[0]))

static const struct anon_kind *kind_of(FileKind kind)
{
	for (size_t i = 0; i < NR_KINDS; i++)
		if (kinds[i].kind == kind)
			return &kinds[i];
	return NULL;
}

bool anonfd_is_kind(FileKind kind)
{
	return kind_of(kind) != NULL;
}

const char *anonfd_field(const char *info, const char *key)
{
	size_t n = strlen(key);

	for (const char *p = info; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL)
		if (!strncmp(p, key, n))
			return p + n;
	return NULL;
}

int anonfd_dump_file(struct dump_ctx *ctx, struct dump_file *f, int fd, const char *link)
{
	const struct anon_kind *k = NULL;
	char name[64], *info;
	int ret;

	for (size_t i = 0; i < NR_KINDS; i++)
		if (!strcmp(link, kinds[i].link))
			k = &kinds[i];
	if (!k)
		return err_set("fd %d of pid %d is %s: not supported yet", fd, ctx->pid, link);
	f->entry.kind = k->kind;
	if ((f->entry.flags & ~ANON_FLAGS) || (int)(f->entry.flags & O_ACCMODE) != k->accmode)
		return err_set("fd %d of pid %d (%s) has open flags 0%o: only O_NONBLOCK can be "
			       "restored",
			       fd, ctx->pid, k->name, f->entry.flags);
	snprintf(name, sizeof(name), "fdinfo/%d", fd);
	if (proc_read(ctx->pid, name, &info, NULL))
		return err_wrap("fd %d of pid %d (%s)", fd, ctx->pid, k->name);
	ret = k->dump(ctx, f, fd, info);
	free(info);
	return ret;
}

void anonfd_dump_free(struct dump_tree *tree)
{
	for (int i = 0; i < tree->nr_files; i++) {
		const struct anon_kind *k = kind_of(tree->files[i].entry.kind);
		if (k)
			k->free(&tree->files[i].entry);
	}
}

int anonfd_validate(struct restore_ctx *ctx)
{
	for (size_t i = 0; i < ctx->nr_files; i++) {
		const FileEntry *fe = ctx->files[i];
		const struct anon_kind *k = kind_of(fe->kind);
		if (!k)
			continue;
		if ((fe->flags & ~ANON_FLAGS) || (int)(fe->flags & O_ACCMODE) != k->accmode)
			return err_set("files.img: %s file %u has bad flags 0%o", k->name, fe->id,
				       fe->flags);
		if (k->validate(ctx, fe))
			return err_wrap("files.img: %s file %u", k->name, fe->id);
	}
	return 0;
}

int anonfd_restore_child(struct restore_ctx *ctx, const FileEntry *fe, int *fd)
{
	const struct anon_kind *k = kind_of(fe->kind);
	int fl;

	*fd = -1;
	if (!k)
		return err_set("file %u is of unknown kind %d", fe->id, fe->kind);
	if (k->restore(ctx, fe, fd))
		return err_wrap("restoring %s file %u", k->name, fe->id);
	fl = fcntl(*fd, F_GETFL);
	if (fl < 0 || fcntl(*fd, F_SETFL, (fl & ~O_NONBLOCK) | (fe->flags & O_NONBLOCK)))
		return err_errno("cannot set the flags of %s file %u", k->name, fe->id);
	return 0;
}

/* The first fd number a description is placed on (-1 if none). */
int anonfd_first_fd(const struct restore_ctx *ctx, uint32_t file_id)
{
	for (size_t i = 0; i < ctx->nr_fds; i++)
		if (ctx->fds[i]->file_id == file_id)
			return ctx->fds[i]->fd;
	return -1;
}
