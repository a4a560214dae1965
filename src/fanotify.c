/*
 * fanotify: a fanotify group, with its init flags and its marks.
 *
 * Dump: fdinfo gives the group's flags (FAN_CLASS_*, FAN_REPORT_*,
 * FAN_UNLIMITED_*) and the open flags of its event fds, then one line per
 * mark: an inode mark with the inode's file handle (fhandle.c finds a path
 * that leads to it), a mount mark with the mount's id (its mount point, from
 * cryo's mountinfo), a filesystem mark with the device (a mount of it);
 * each with its mask, its ignored mask and its flags. Events waiting to be
 * read cannot be put back: a group with some (FIONREAD) stops the dump.
 *
 * Restore: fanotify_init() with the same flags, then each mark added again
 * (the mask, then the ignored mask with the flags that go with it), and
 * the events the restore itself caused read out. Permission events the
 * program had read but not answered are answered by the kernel when the
 * dumped group closes: they are not pending after restore.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/fanotify.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "anonfd.h"
#include "fhandle.h"
#include "infra/log.h"
#include "infra/proc.h"

#ifndef FAN_MARK_EVICTABLE
#define FAN_MARK_EVICTABLE 0x00000200
#endif
#ifndef FAN_MARK_IGNORE
#define FAN_MARK_IGNORE 0x00000400
#endif

enum { MARK_INODE, MARK_MOUNT, MARK_FS };

#define MARK_FLAGS (FAN_MARK_IGNORED_SURV_MODIFY | FAN_MARK_EVICTABLE | FAN_MARK_IGNORE)

struct mark_info {
	unsigned type, mflags, mask, ignored, mnt_id, sdev;
	struct fhandle_info h;
};

/* One "fanotify ..." line after the group's own: which kind of mark. */
static int parse_mark(const char *p, struct mark_info *m)
{
	int n = 0;

	memset(m, 0, sizeof(*m));
	if (sscanf(p, " ino:%llx sdev:%x mflags:%x mask:%x ignored_mask:%x %n", &m->h.ino,
		   &m->h.sdev, &m->mflags, &m->mask, &m->ignored, &n) == 5 &&
	    n) {
		m->type = MARK_INODE;
		m->sdev = m->h.sdev;
		return fhandle_parse(p + n, &m->h);
	}
	if (sscanf(p, " mnt_id:%x mflags:%x mask:%x ignored_mask:%x", &m->mnt_id, &m->mflags,
		   &m->mask, &m->ignored) == 4) {
		m->type = MARK_MOUNT;
		return 0;
	}
	if (sscanf(p, " sdev:%x mflags:%x mask:%x ignored_mask:%x", &m->sdev, &m->mflags, &m->mask,
		   &m->ignored) == 4) {
		m->type = MARK_FS;
		return 0;
	}
	return -1;
}

/* From cryo's mountinfo: the mount point of mount id (by_id) or of the
 * first mount of device sdev, with its device. */
static int find_mount(bool by_id, unsigned id, unsigned sdev, char *path, size_t len, dev_t *dev)
{
	char *info, *save = NULL;
	int ret = -1;

	if (proc_read(0, "mountinfo", &info, NULL))
		return -1;
	for (char *l = strtok_r(info, "\n", &save); l && ret; l = strtok_r(NULL, "\n", &save)) {
		unsigned mid, maj, min;
		char mnt[4096];
		if (sscanf(l, "%u %*d %u:%u %*s %4095s", &mid, &maj, &min, mnt) != 4)
			continue;
		if (by_id ? mid != id : makedev(maj, min) != fhandle_dev(sdev))
			continue;
		snprintf(path, len, "%s", mnt);
		*dev = makedev(maj, min);
		ret = 0;
	}
	free(info);
	if (ret)
		err_set(by_id ? "mount %u is not in cryo's mount namespace"
			      : "no mount of device %u:%u is in cryo's mount namespace",
			by_id ? id : major(fhandle_dev(sdev)), minor(fhandle_dev(sdev)));
	return ret;
}

static int mark_path(const struct mark_info *m, char *path, size_t len, dev_t *dev)
{
	if (m->type == MARK_INODE) {
		*dev = fhandle_dev(m->h.sdev);
		return fhandle_path(&m->h, path, len);
	}
	return find_mount(m->type == MARK_MOUNT, m->mnt_id, m->sdev, path, len, dev);
}

static int add_mark(FanotifyEntry *fa, const struct mark_info *m, const char *path, dev_t dev)
{
	FanotifyMarkEntry **grown = realloc(fa->marks, (fa->n_marks + 1) * sizeof(*grown));
	FanotifyMarkEntry *e = malloc(sizeof(*e));

	if (grown)
		fa->marks = grown;
	if (!grown || !e || !(path = strdup(path))) {
		free(e);
		return err_set("out of memory");
	}
	fanotify_mark_entry__init(e);
	e->type = m->type;
	e->mflags = m->mflags;
	e->mask = m->mask;
	e->ignored_mask = m->ignored;
	e->path = (char *)path;
	e->has_ino = m->type == MARK_INODE;
	e->ino = m->h.ino;
	e->dev = dev;
	fa->marks[fa->n_marks++] = e;
	return 0;
}

static int check_queue(struct dump_ctx *ctx, struct dump_file *f, int fd)
{
	int queued = 0;

	if (ioctl(f->local_fd, FIONREAD, &queued))
		return err_errno("fd %d of pid %d (fanotify): FIONREAD", fd, ctx->pid);
	if (queued)
		return err_set("fd %d of pid %d (fanotify) has %d bytes of unread events, which "
			       "cannot be restored",
			       fd, ctx->pid, queued);
	return 0;
}

static int dump_state(struct dump_ctx *ctx, struct dump_file *f, int fd, const char *info)
{
	FanotifyEntry *fa = malloc(sizeof(*fa));
	const char *p = anonfd_field(info, "fanotify flags:");
	static char path[4096];

	if (!fa)
		return err_set("out of memory");
	fanotify_entry__init(fa);
	f->entry.fanotify = fa;
	if (!p || sscanf(p, "%x event-flags:%x", &fa->flags, &fa->event_flags) != 2)
		return err_set("fd %d of pid %d (fanotify): cannot parse its fdinfo", fd, ctx->pid);
	if (check_queue(ctx, f, fd))
		return -1;
	for (p = anonfd_field(p, "fanotify"); p; p = anonfd_field(p, "fanotify")) {
		struct mark_info m;
		dev_t dev;
		if (parse_mark(p, &m))
			return err_set(
			    "fd %d of pid %d (fanotify): cannot parse a mark in its fdinfo", fd,
			    ctx->pid);
		if (mark_path(&m, path, sizeof(path), &dev))
			return err_wrap("fd %d of pid %d (fanotify): a mark", fd, ctx->pid);
		if (add_mark(fa, &m, path, dev))
			return -1;
	}
	return 0;
}

static void fanotify_free(FileEntry *fe)
{
	FanotifyEntry *fa = fe->fanotify;

	if (!fa)
		return;
	for (size_t i = 0; i < fa->n_marks; i++) {
		free(fa->marks[i]->path);
		free(fa->marks[i]);
	}
	free(fa->marks);
	free(fa);
	fe->fanotify = NULL;
}

/* The path still leads where the mark was: the same inode, or a mount of
 * the same device. */
static int check_mark(const FanotifyMarkEntry *e)
{
	struct stat st;

	if (e->type > MARK_FS || (e->mflags & ~MARK_FLAGS) || (!e->mask && !e->ignored_mask) ||
	    e->path[0] != '/')
		return err_set("a bad fanotify mark (type %u, flags %#x, on '%s')", e->type,
			       e->mflags, e->path);
	if (lstat(e->path, &st))
		return err_errno("marked path %s is not available", e->path);
	if (st.st_dev != e->dev || (e->type == MARK_INODE && st.st_ino != e->ino))
		return err_set("marked path %s is no longer the same %s", e->path,
			       e->type == MARK_INODE ? "inode" : "filesystem");
	return 0;
}

static int check_state(const struct restore_tree *tree, const FileEntry *fe)
{
	(void)tree;
	if (!fe->fanotify)
		return err_set("fanotify without its state");
	for (size_t i = 0; i < fe->fanotify->n_marks; i++)
		if (check_mark(fe->fanotify->marks[i]))
			return -1;
	return 0;
}

static int mark_one(int fd, const FanotifyMarkEntry *e)
{
	static const unsigned where[] = {FAN_MARK_DONT_FOLLOW, FAN_MARK_MOUNT, FAN_MARK_FILESYSTEM};
	unsigned base = FAN_MARK_ADD | where[e->type] | (e->mflags & FAN_MARK_EVICTABLE);
	unsigned ignore = e->mflags & FAN_MARK_IGNORE ? FAN_MARK_IGNORE : FAN_MARK_IGNORED_MASK;

	if (e->mask && fanotify_mark(fd, base, e->mask, AT_FDCWD, e->path))
		return err_errno("cannot mark %s (mask %#x)", e->path, e->mask);
	if (e->ignored_mask &&
	    fanotify_mark(fd, base | ignore | (e->mflags & FAN_MARK_IGNORED_SURV_MODIFY),
			  e->ignored_mask, AT_FDCWD, e->path))
		return err_errno("cannot mark %s (ignored mask %#x)", e->path, e->ignored_mask);
	return 0;
}

/* Reads out what the restore itself caused (non-blocking for that);
 * event fds that came with the events are closed. */
static int drain(int fd)
{
	int fl = fcntl(fd, F_GETFL);
	char buf[8192];
	ssize_t n;

	if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK))
		return err_errno("cannot make the fanotify group non-blocking");
	while ((n = read(fd, buf, sizeof(buf))) > 0)
		for (struct fanotify_event_metadata *m = (void *)buf; FAN_EVENT_OK(m, n);
		     m = FAN_EVENT_NEXT(m, n))
			if (m->fd >= 0)
				close(m->fd);
	if (n < 0 && errno != EAGAIN)
		return err_errno("cannot empty the fanotify queue");
	return fcntl(fd, F_SETFL, fl) ? err_errno("cannot set the fanotify group's flags") : 0;
}

/* The same init flags, FAN_NONBLOCK and FAN_CLOEXEC included, as fdinfo
 * shows them: the fd's own flags are set after (anonfd.c, files.c). */
static int make(struct restore_ctx *ctx, const FileEntry *fe, int *fd)
{
	const FanotifyEntry *fa = fe->fanotify;

	(void)ctx;
	*fd = fanotify_init(fa->flags, fa->event_flags);
	if (*fd < 0)
		return err_errno("cannot create a fanotify group (flags %#x, event flags %#x)",
				 fa->flags, fa->event_flags);
	for (size_t i = 0; i < fa->n_marks; i++)
		if (mark_one(*fd, fa->marks[i]))
			return -1;
	return drain(*fd);
}

static const struct anonfd_type type = {"anon_inode:[fanotify]", "fanotify", O_RDWR, 0};

ANONFD_OPS(type, dump_state, check_state, make)

const struct fd_kind fanotify_kind = {
    .name = "fanotify",
    .kind = FILE_KIND__FANOTIFY,
    .recognise = anon_recognise,
    .dump = anon_dump,
    .free_entry = fanotify_free,
    .validate = anon_validate,
    .open = anon_open,
};
