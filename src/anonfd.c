/*
 * anonfd: what the kinds of description on the anonymous inode share
 * (anonfd.h): recognising them by their link, their open flags, reading
 * their fdinfo.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "anonfd.h"
#include "infra/log.h"

/* flags an anon-inode description may carry and that cryo restores */
#define ANON_FLAGS (O_ACCMODE | O_NONBLOCK | O_LARGEFILE)

bool anonfd_recognise(const struct fd_probe *p, const struct anonfd_type *t)
{
	return !strcmp(p->link, t->link);
}

static bool flags_ok(unsigned flags, const struct anonfd_type *t)
{
	return !(flags & ~(ANON_FLAGS | t->own_flags)) && (int)(flags & O_ACCMODE) == t->accmode;
}

int anonfd_dump(struct dump_ctx *ctx, struct dump_file *f, const struct fd_probe *p,
		const struct anonfd_type *t,
		int (*dump)(struct dump_ctx *ctx, struct dump_file *f, int fd, const char *info))
{
	char name[64], *info;
	int ret;

	if (!flags_ok(f->entry.flags, t))
		return err_set("fd %d of pid %d (%s) has open flags 0%o: only O_NONBLOCK can be "
			       "restored",
			       p->fd, p->pid, t->name, f->entry.flags);
	/* held by no fd of the process (in flight): cryo's duplicate tells */
	snprintf(name, sizeof(name), "fdinfo/%d", p->fd >= 0 ? p->fd : p->local_fd);
	if (proc_read(p->fd >= 0 ? p->pid : getpid(), name, &info, NULL))
		return err_wrap("fd %d of pid %d (%s)", p->fd, p->pid, t->name);
	ret = dump(ctx, f, p->fd, info);
	free(info);
	return ret;
}

int anonfd_validate(const struct restore_tree *tree, const FileEntry *fe,
		    const struct anonfd_type *t,
		    int (*check)(const struct restore_tree *tree, const FileEntry *fe))
{
	if (!flags_ok(fe->flags, t))
		return err_set("files.img: %s file %u has bad flags 0%o", t->name, fe->id,
			       fe->flags);
	if (check && check(tree, fe))
		return err_wrap("files.img: %s file %u", t->name, fe->id);
	return 0;
}

int anonfd_open(struct restore_ctx *ctx, const FileEntry *fe, int *fd, const struct anonfd_type *t,
		int (*make)(struct restore_ctx *ctx, const FileEntry *fe, int *fd))
{
	int fl;

	*fd = -1;
	if (make(ctx, fe, fd))
		return err_wrap("restoring %s file %u", t->name, fe->id);
	fl = fcntl(*fd, F_GETFL);
	if (fl < 0 || fcntl(*fd, F_SETFL, (fl & ~O_NONBLOCK) | (fe->flags & O_NONBLOCK)))
		return err_errno("cannot set the flags of %s file %u", t->name, fe->id);
	return 0;
}

const char *anonfd_field(const char *info, const char *key)
{
	size_t n = strlen(key);

	for (const char *p = info; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL)
		if (!strncmp(p, key, n))
			return p + n;
	return NULL;
}

int anonfd_first_fd(const struct restore_ctx *ctx, uint32_t file_id)
{
	for (size_t i = 0; i < ctx->nr_fds; i++)
		if (ctx->fds[i]->file_id == file_id)
			return ctx->fds[i]->fd;
	return -1;
}
