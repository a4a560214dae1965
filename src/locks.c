/*
 * locks: the file locks a process holds: flock(2) locks, POSIX record locks
 * (fcntl F_SETLK) and OFD locks (F_OFD_SETLK).
 *
 * Dump: every lock held through a description shows as a "lock:" line of
 * /proc/PID/fdinfo of an fd of it (flock and OFD locks belong to the
 * description, POSIX ones to the process, listed under the description
 * they were taken through). They are saved only with `dump --file-locks`;
 * without it a process holding any lock makes the dump fail and says so.
 * /proc/locks is read as a cross-check: a lock of the process that no fd
 * shows (a flock on a file that is only mapped) stops the dump. Leases,
 * and POSIX locks on a file the process also maps (restoring the mapping
 * closes an fd of it, which would drop them), are refused.
 *
 * locks-PID.img: a head recording --file-locks, then one record per lock.
 * Restore: in the new process, once every fd is placed and every temporary
 * fd closed (closing any fd of a file drops the process's POSIX locks on
 * it), each lock is taken again, without waiting, on an fd of its
 * description: flock, F_SETLK or F_OFD_SETLK with the same range. A lock
 * someone else holds by then fails the restore, naming the holder.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "images.h"
#include "infra/log.h"
#include "locks.h"

static const char *const kind_names[] = {
    [LOCK_KIND__LOCK_FLOCK] = "flock",
    [LOCK_KIND__LOCK_POSIX] = "POSIX",
    [LOCK_KIND__LOCK_OFD] = "OFD",
};

/* ---- dump ---- */

/* The first fd of description id, or -1. */
static int fd_of(const FdEntry *fds, int nr, uint32_t id)
{
	for (int i = 0; i < nr; i++)
		if (fds[i].file_id == id)
			return fds[i].fd;
	return -1;
}

/* A POSIX lock dies when any fd of its file is closed: restoring a mapping
 * of it (or the executable) does that. */
static int check_not_mapped(struct dump_ctx *ctx, const struct dump_file *f, int fd)
{
	struct stat st;

	if (fstat(f->local_fd, &st))
		return err_errno("cannot stat fd %d of pid %d", fd, ctx->pid);
	for (int i = 0; i < ctx->vmas.nr; i++) {
		const struct proc_vma *v = &ctx->vmas.v[i];
		if (v->path && v->ino == st.st_ino && v->dev_major == major(st.st_dev) &&
		    v->dev_minor == minor(st.st_dev))
			return err_set(
			    "fd %d of pid %d holds a POSIX lock on %s, which the process "
			    "also maps: not supported yet",
			    fd, ctx->pid, f->path);
	}
	return 0;
}

/* Parses one "lock:" line of fdinfo into l; 1 if it is a lock to keep. */
static int parse_lock(struct dump_ctx *ctx, const char *line, int fd, LockEntry *l)
{
	char kind[16], mode[16], rw[16], end[32];
	unsigned long long start;

	if (sscanf(line, "lock:\t%*d: %15s %15s %15s %*d %*s %llu %31s", kind, mode, rw, &start,
		   end) != 5)
		return err_set("cannot parse a lock of fd %d of pid %d: %.80s", fd, ctx->pid, line);
	lock_entry__init(l);
	if (!strcmp(kind, "FLOCK"))
		l->kind = LOCK_KIND__LOCK_FLOCK;
	else if (!strcmp(kind, "POSIX"))
		l->kind = LOCK_KIND__LOCK_POSIX;
	else if (!strcmp(kind, "OFDLCK"))
		l->kind = LOCK_KIND__LOCK_OFD;
	else
		return err_set("fd %d of pid %d holds a %s (%s %s): not supported yet", fd,
			       ctx->pid, strcmp(kind, "LEASE") ? kind : "lease", mode, rw);
	if (strcmp(mode, "ADVISORY") || (strcmp(rw, "READ") && strcmp(rw, "WRITE")))
		return err_set("fd %d of pid %d holds a %s %s %s lock: not supported yet", fd,
			       ctx->pid, mode, rw, kind);
	l->fd = fd;
	l->write = !strcmp(rw, "WRITE");
	l->start = start;
	l->has_end = strcmp(end, "EOF") != 0;
	l->end = l->has_end ? strtoull(end, NULL, 10) : 0;
	return 1;
}

static int add_lock(struct dump_ctx *ctx, const LockEntry *l)
{
	LockEntry *grown = realloc(ctx->locks, (ctx->nr_locks + 1) * sizeof(*grown));

	if (!grown)
		return err_set("out of memory");
	ctx->locks = grown;
	ctx->locks[ctx->nr_locks++] = *l;
	return 0;
}

/* The locks held through description f. */
static int dump_file_locks(struct dump_ctx *ctx, const struct dump_file *f)
{
	int fd = fd_of(ctx->fds, ctx->nr_fds, f->entry.id), ret = 0;
	char name[64], *buf, *line;
	LockEntry l;

	snprintf(name, sizeof(name), "fdinfo/%d", fd);
	if (fd < 0 || proc_read(ctx->pid, name, &buf, NULL))
		return fd < 0 ? 0 : -1;
	for (line = strstr(buf, "\nlock:"); line && !ret; line = strstr(line + 1, "\nlock:")) {
		int r = parse_lock(ctx, line + 1, fd, &l);
		if (r < 0) {
			ret = -1;
		} else if (!ctx->opts->file_locks) {
			ret =
			    err_set("pid %d holds a %s lock on fd %d (%s): dump with --file-locks "
				    "to save it",
				    ctx->pid, kind_names[l.kind], fd, f->path);
		} else {
			l.file_id = f->entry.id;
			ret = (l.kind == LOCK_KIND__LOCK_POSIX && check_not_mapped(ctx, f, fd)) ||
			      add_lock(ctx, &l);
		}
	}
	free(buf);
	return ret ? -1 : 0;
}

/* Locks /proc/locks gives to the pid (flock and POSIX; OFD locks have none). */
static int count_pid_locks(pid_t pid)
{
	char *buf, *line, *save = NULL;
	int n = 0;

	if (proc_read(0, "../locks", &buf, NULL))
		return -1;
	for (line = strtok_r(buf, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		int lpid;
		if (strstr(line, "->")) /* a waiter, not a holder */
			continue;
		if (sscanf(line, "%*d: %*s %*s %*s %d", &lpid) == 1 && lpid == pid)
			n++;
	}
	free(buf);
	return n;
}

int locks_dump(struct dump_ctx *ctx)
{
	int seen = 0, held;

	for (int i = 0; i < ctx->tree->nr_files; i++)
		if (dump_file_locks(ctx, &ctx->tree->files[i]))
			return -1;
	for (int i = 0; i < ctx->nr_locks; i++)
		seen += ctx->locks[i].kind != LOCK_KIND__LOCK_OFD;
	held = count_pid_locks(ctx->pid);
	if (held < 0)
		return err_wrap("reading /proc/locks");
	if (held > seen)
		return err_set("pid %d holds %d file lock%s that none of its fds shows (on a file "
			       "it only maps?): not supported yet",
			       ctx->pid, held - seen, held - seen > 1 ? "s" : "");
	return 0;
}

int locks_write(struct dump_ctx *ctx)
{
	LocksHead head = LOCKS_HEAD__INIT;

	if (!ctx->opts->file_locks)
		return 0;
	head.file_locks = true;
	return image_write_array(&ctx->tree->dir, IMAGE_LOCKS, ctx->pid, &head.base, ctx->locks,
				 ctx->nr_locks, sizeof(*ctx->locks));
}

void locks_dump_free(struct dump_ctx *ctx)
{
	free(ctx->locks);
	ctx->locks = NULL;
	ctx->nr_locks = 0;
}

/* ---- restore ---- */

static int check_lock(const struct restore_ctx *ctx, const LockEntry *l)
{
	bool has_fd = false;

	for (size_t i = 0; i < ctx->nr_fds; i++)
		has_fd |= ctx->fds[i]->file_id == l->file_id;
	if (!has_fd)
		return err_set("locks-%d.img: a lock of pid %d is on file %u, which no fd holds",
			       ctx->pid, ctx->pid, l->file_id);
	if (l->kind < LOCK_KIND__LOCK_FLOCK || l->kind > LOCK_KIND__LOCK_OFD ||
	    l->start > INT64_MAX || (l->has_end && (l->end < l->start || l->end > INT64_MAX)))
		return err_set("locks-%d.img: a lock of pid %d on fd %u is malformed", ctx->pid,
			       ctx->pid, l->fd);
	return 0;
}

int locks_validate(struct restore_ctx *ctx)
{
	struct img_name name = image_name(IMAGE_LOCKS, ctx->pid);
	ProtobufCMessage *head;

	if (!image_present(&ctx->tree->dir, IMAGE_LOCKS, ctx->pid))
		return 0;
	if (image_load_list(&ctx->tree->dir, IMAGE_LOCKS, ctx->pid, &head, (void ***)&ctx->locks,
			    &ctx->nr_locks))
		return -1;
	ctx->file_locks = ((LocksHead *)head)->file_locks;
	protobuf_c_message_free_unpacked(head, NULL);
	if (!ctx->file_locks && ctx->nr_locks)
		return err_set("%s holds locks but was not written with --file-locks", name.s);
	for (size_t i = 0; i < ctx->nr_locks; i++)
		if (check_lock(ctx, ctx->locks[i]))
			return -1;
	return 0;
}

void locks_restore_free(struct restore_ctx *ctx)
{
	for (size_t i = 0; i < ctx->nr_locks; i++)
		protobuf_c_message_free_unpacked(&ctx->locks[i]->base, NULL);
	free(ctx->locks);
	ctx->locks = NULL;
	ctx->nr_locks = 0;
}

/* Why a lock could not be taken: who holds the range now, if it can tell. */
static int lock_failed(const LockEntry *l, int fd, struct flock *fl, int cmd)
{
	int err = errno;
	const char *what = l->write ? "write" : "read";

	if ((err == EAGAIN || err == EACCES) && cmd != 0) {
		fl->l_pid = 0;
		if (!fcntl(fd, cmd == F_SETLK ? F_GETLK : F_OFD_GETLK, fl) && fl->l_type != F_UNLCK)
			return err_set("cannot take the %s %s lock on fd %d again: pid %d holds "
				       "that range",
				       kind_names[l->kind], what, fd, fl->l_pid);
	}
	errno = err;
	if (err == EWOULDBLOCK || err == EAGAIN || err == EACCES)
		return err_set("cannot take the %s %s lock on fd %d again: another process "
			       "holds the file locked",
			       kind_names[l->kind], what, fd);
	return err_errno("cannot take the %s %s lock on fd %d again", kind_names[l->kind], what,
			 fd);
}

static int take_lock(const LockEntry *l, int fd)
{
	struct flock fl = {
	    .l_type = l->write ? F_WRLCK : F_RDLCK,
	    .l_whence = SEEK_SET,
	    .l_start = l->start,
	    .l_len = l->has_end ? l->end - l->start + 1 : 0,
	};
	int cmd = l->kind == LOCK_KIND__LOCK_POSIX ? F_SETLK : F_OFD_SETLK;

	if (l->kind == LOCK_KIND__LOCK_FLOCK) {
		if (flock(fd, (l->write ? LOCK_EX : LOCK_SH) | LOCK_NB))
			return lock_failed(l, fd, &fl, 0);
		return 0;
	}
	if (fcntl(fd, cmd, &fl))
		return lock_failed(l, fd, &fl, cmd);
	return 0;
}

int locks_restore_child(struct restore_ctx *ctx)
{
	for (size_t i = 0; i < ctx->nr_locks; i++) {
		const LockEntry *l = ctx->locks[i];
		int fd = -1;
		for (size_t j = 0; j < ctx->nr_fds && fd < 0; j++)
			if (ctx->fds[j]->file_id == l->file_id)
				fd = ctx->fds[j]->fd;
		if (take_lock(l, fd))
			return -1;
	}
	return 0;
}
