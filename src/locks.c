/*
 * locks: the file locks a process holds: flock(2) locks, POSIX record locks
 * (fcntl F_SETLK) and OFD locks (F_OFD_SETLK).
 *
 * Dump: every lock held through a description shows as a "lock:" line of
 * /proc/PID/fdinfo of an fd of it (flock and OFD locks belong to the
 * description, POSIX ones to the process, listed under the description
 * they were taken through). They are saved only with `dump --file-locks`;
 * without it a process holding any lock makes the dump fail and says so.
 * Once every process was seen, /proc/locks (read once, as the tree was
 * frozen) is gone through: each of its locks on a
 * file some fd of the tree shows is ticked off (by inode, kind, range, and
 * for POSIX the pid). A flock or OFD lock left on a file a process of the
 * tree maps is held through the mapping alone, its fd closed (a JVM's
 * perf-data file): the mapping is tied to a description of its own that no
 * fd holds (files_add_unheld; vma.file_id), made from /proc/PID/map_files,
 * and the lock is saved on it. A flock left of a process of the tree on a
 * file it neither has open nor maps stops the dump; a lock left of someone
 * else is not the tree's. Leases (F_SETLEASE, read or write) are saved as
 * locks of their description; one being broken is refused, as are POSIX
 * locks on a file the process also maps (restoring the mapping closes an
 * fd of it, which would drop them).
 *
 * locks-PID.img: a head recording --file-locks, then one record per lock.
 * Restore: in the new process, once every fd is placed and every temporary
 * fd closed (closing any fd of a file drops the process's POSIX locks on
 * it), each lock is taken again, without waiting, on an fd of its
 * description (one held through a mapping: on the fd its mapping is made
 * from, still open then): flock, F_SETLK or F_OFD_SETLK with the same
 * range (a lease: F_SETLEASE). A lock someone else holds by then fails the restore, naming the
 * holder (an OFD lock names no holder in /proc/locks: one that another
 * program holds on a file the tree maps is taken for the mapping's, and
 * the restore then fails on it, never silently).
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

#include "files.h"
#include "images.h"
#include "infra/log.h"
#include "locks.h"

static const char *const kind_names[] = {
    [LOCK_KIND__LOCK_FLOCK] = "flock",
    [LOCK_KIND__LOCK_POSIX] = "POSIX",
    [LOCK_KIND__LOCK_OFD] = "OFD",
    [LOCK_KIND__LOCK_LEASE] = "lease",
};

/* The kind of a "FLOCK"/"POSIX"/"OFDLCK"/"LEASE" word, 0 if none. */
static LockKind kind_of(const char *word)
{
	static const char *const words[] = {
	    [LOCK_KIND__LOCK_FLOCK] = "FLOCK",
	    [LOCK_KIND__LOCK_POSIX] = "POSIX",
	    [LOCK_KIND__LOCK_OFD] = "OFDLCK",
	    [LOCK_KIND__LOCK_LEASE] = "LEASE",
	};

	for (size_t k = 1; k < sizeof(words) / sizeof(words[0]); k++)
		if (!strcmp(word, words[k]))
			return (LockKind)k;
	return 0;
}

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
	l->kind = kind_of(kind);
	if (!l->kind)
		return err_set("fd %d of pid %d holds a %s lock (%s %s): not supported yet", fd,
			       ctx->pid, kind, mode, rw);
	if (l->kind == LOCK_KIND__LOCK_LEASE && strcmp(mode, "ACTIVE"))
		return err_set("fd %d of pid %d holds a %s lease that is being broken (%s): not "
			       "supported",
			       fd, ctx->pid, rw, mode);
	if ((l->kind != LOCK_KIND__LOCK_LEASE && strcmp(mode, "ADVISORY")) ||
	    (strcmp(rw, "READ") && strcmp(rw, "WRITE")))
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

/* /proc/locks is read once a dump, as soon as the tree is frozen (no lock
 * of a stopped process changes). The kernel lists it with its file-lock
 * rwsem taken for writing, a percpu one: the first reader after a quiet
 * while waits a grace period of RCU (10-20 ms measured here). That wait is
 * paid by a first read before the freeze, so that the one made frozen
 * finds the semaphore still in its writer-ready state. */
void locks_dump_warm(void)
{
	char *buf;

	if (proc_read(0, "../locks", &buf, NULL))
		err_clear(); /* only a warm-up: the read that counts reports */
	else
		free(buf);
}

/* Every inode number /proc/locks names, whatever the kind of lock (for a
 * process of many fds: only their fdinfo is read for "lock:" lines). */
static int locked_inodes(const char *text, uint64_t **inos, size_t *n)
{
	char *buf, *line, *save = NULL;
	size_t cap = 0;

	*inos = NULL;
	*n = 0;
	if (!(buf = strdup(text)))
		return err_set("out of memory");
	for (line = strtok_r(buf, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		char *p = strchr(line, ':');
		unsigned long long ino;
		/* "N: KIND ... MAJ:MIN:INO ...": the inode follows the third ':' */
		if (!p || !(p = strchr(p + 1, ':')) || !(p = strchr(p + 1, ':')) ||
		    sscanf(p + 1, "%llu", &ino) != 1)
			continue;
		if (*n == cap) {
			uint64_t *grown = realloc(*inos, (cap = 2 * cap + 16) * sizeof(*grown));
			if (!grown) {
				free(buf);
				return err_set("out of memory");
			}
			*inos = grown;
		}
		(*inos)[(*n)++] = ino;
	}
	free(buf);
	return 0;
}

/* /proc/locks as read once frozen, and the inodes it names. */
struct proc_locks {
	char *text;
	uint64_t *inos;
	size_t nr_inos;
};

int locks_dump_begin(struct dump_tree *tree)
{
	struct proc_locks *pl = calloc(1, sizeof(*pl));

	if (!pl)
		return err_set("out of memory");
	tree->proc_locks = pl;
	if (proc_read(0, "../locks", &pl->text, NULL))
		return err_wrap("reading /proc/locks");
	return locked_inodes(pl->text, &pl->inos, &pl->nr_inos);
}

void locks_dump_end(struct dump_tree *tree)
{
	if (tree->proc_locks) {
		free(tree->proc_locks->text);
		free(tree->proc_locks->inos);
	}
	free(tree->proc_locks);
	tree->proc_locks = NULL;
}

static bool in_list(const uint64_t *v, size_t n, uint64_t x)
{
	for (size_t i = 0; i < n; i++)
		if (v[i] == x)
			return true;
	return false;
}

int locks_dump(struct dump_ctx *ctx)
{
	const struct proc_locks *pl = ctx->tree->proc_locks;
	int ret = 0;

	for (int i = 0; i < ctx->tree->nr_files && !ret; i++)
		if (in_list(pl->inos, pl->nr_inos, ctx->tree->files[i].ino))
			ret = dump_file_locks(ctx, &ctx->tree->files[i]);
	return ret;
}

/* ---- dump: the tree's locks against /proc/locks ---- */

/* One lock of /proc/locks. */
struct sys_lock {
	LockEntry l; /* kind, write, start, end */
	pid_t pid;   /* flock, POSIX: who took it; OFD: -1 */
	unsigned dev_major, dev_minor;
	uint64_t ino;
	bool seen; /* an fd of the tree shows it */
};

struct sys_locks {
	int nr;
	struct sys_lock *v;
};

/* One holder's line ("N: FLOCK ADVISORY WRITE PID MAJ:MIN:INO START END"):
 * 1 if it is a lock of a kind cryo knows, 0 to skip it. */
static int parse_sys_lock(const char *line, struct sys_lock *s)
{
	char kind[16], mode[16], rw[16], end[32];
	unsigned long long start, ino;

	if (strstr(line, "->") || /* a waiter, not a holder */
	    sscanf(line, "%*d: %15s %15s %15s %d %x:%x:%llu %llu %31s", kind, mode, rw, &s->pid,
		   &s->dev_major, &s->dev_minor, &ino, &start, end) != 9)
		return 0;
	lock_entry__init(&s->l);
	s->l.kind = kind_of(kind);
	if (!s->l.kind)
		return 0;
	s->ino = ino;
	s->seen = false;
	s->l.write = !strcmp(rw, "WRITE");
	s->l.start = start;
	s->l.has_end = strcmp(end, "EOF") != 0;
	s->l.end = s->l.has_end ? strtoull(end, NULL, 10) : 0;
	return 1;
}

static int parse_sys_locks(const char *proc_locks, struct sys_locks *sl)
{
	char *buf, *line, *save = NULL;
	int cap = 0;

	sl->nr = 0;
	sl->v = NULL;
	if (!(buf = strdup(proc_locks)))
		return err_set("out of memory");
	for (line = strtok_r(buf, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		if (sl->nr == cap) {
			struct sys_lock *grown =
			    realloc(sl->v, (cap = 2 * cap + 16) * sizeof(*grown));
			if (!grown) {
				free(buf);
				return err_set("out of memory");
			}
			sl->v = grown;
		}
		sl->nr += parse_sys_lock(line, &sl->v[sl->nr]);
	}
	free(buf);
	return 0;
}

static bool same_range(const LockEntry *a, const LockEntry *b)
{
	return a->kind == b->kind && a->write == b->write && a->start == b->start &&
	       a->has_end == b->has_end && a->end == b->end;
}

/* Marks the line of /proc/locks that the lock l of pid, held through the
 * file st, is (the first one left; POSIX locks are the process's own). */
static void mark_seen(struct sys_locks *sl, const LockEntry *l, pid_t pid, const struct stat *st)
{
	for (int i = 0; i < sl->nr; i++) {
		struct sys_lock *s = &sl->v[i];
		if (!s->seen && same_range(&s->l, l) && s->ino == st->st_ino &&
		    s->dev_major == major(st->st_dev) && s->dev_minor == minor(st->st_dev) &&
		    (l->kind != LOCK_KIND__LOCK_POSIX || s->pid == pid)) {
			s->seen = true;
			return;
		}
	}
}

/* Whether lock k of ctx is one an earlier lock already stood for: a
 * description shared between processes shows its flock or OFD lock in
 * each. */
static bool shown_before(struct dump_tree *tree, int p, int k)
{
	const LockEntry *l = &tree->procs[p]->locks[k];

	if (l->kind == LOCK_KIND__LOCK_POSIX)
		return false;
	for (int q = 0; q <= p; q++)
		for (int j = 0; j < (q < p ? tree->procs[q]->nr_locks : k); j++) {
			const LockEntry *o = &tree->procs[q]->locks[j];
			if (o->file_id == l->file_id && same_range(o, l))
				return true;
		}
	return false;
}

static int mark_all_seen(struct dump_tree *tree, struct sys_locks *sl)
{
	struct stat st;

	for (int p = 0; p < tree->nr_procs; p++)
		for (int k = 0; k < tree->procs[p]->nr_locks; k++) {
			const LockEntry *l = &tree->procs[p]->locks[k];
			if (shown_before(tree, p, k))
				continue;
			if (fstat(tree->files[l->file_id - 1].local_fd, &st))
				return err_errno("cannot stat a locked file of pid %d",
						 tree->procs[p]->pid);
			mark_seen(sl, l, tree->procs[p]->pid, &st);
		}
	return 0;
}

static struct dump_ctx *tree_pid(struct dump_tree *tree, pid_t pid)
{
	for (int p = 0; p < tree->nr_procs; p++)
		if (tree->procs[p]->pid == pid && !tree->procs[p]->zombie)
			return tree->procs[p];
	return NULL;
}

/* The first VMA of ctx that maps the file of s, or -1. */
static int vma_of(const struct dump_ctx *ctx, const struct sys_lock *s)
{
	for (int i = 0; i < ctx->vmas.nr; i++) {
		const struct proc_vma *v = &ctx->vmas.v[i];
		VmaKind k = ctx->mm->vmas[i]->kind;
		if ((k == VMA_KIND__FILE_SHARED || k == VMA_KIND__FILE_PRIVATE) &&
		    v->ino == s->ino && v->dev_major == s->dev_major &&
		    v->dev_minor == s->dev_minor)
			return i;
	}
	return -1;
}

/* The process of the tree that maps the file of s: the one that took the
 * lock, if it does, else the first. */
static struct dump_ctx *mapper_of(struct dump_tree *tree, const struct sys_lock *s, int *vma)
{
	struct dump_ctx *own = s->pid > 0 ? tree_pid(tree, s->pid) : NULL;

	if (own && (*vma = vma_of(own, s)) >= 0)
		return own;
	for (int p = 0; p < tree->nr_procs; p++)
		if (!tree->procs[p]->zombie && (*vma = vma_of(tree->procs[p], s)) >= 0)
			return tree->procs[p];
	return NULL;
}
/* The mappings of ctx's file at VMA i are tied to one description, made
 * from the mapping, that no fd holds: the one the lock is on (shmem.c maps
 * it from there at restore). *id gets it. */
static int tie_mapping(struct dump_ctx *ctx, int i, const LockEntry *l, uint32_t *id)
{
	const VmaEntry *v = ctx->mm->vmas[i];
	const struct proc_vma *pv = &ctx->vmas.v[i];
	/* a write lock other than flock needs write access */
	bool writable = v->kind == VMA_KIND__FILE_SHARED
			    ? v->may_write
			    : l->write && l->kind != LOCK_KIND__LOCK_FLOCK;
	int fd, r;

	if (v->has_file_id) {
		*id = v->file_id;
		return 0;
	}
	fd = proc_open_map_file(ctx->pid, pv->start, pv->end, writable ? O_RDWR : O_RDONLY);
	if (fd < 0)
		return err_wrap("the locked file pid %d maps at 0x%llx", ctx->pid,
				(unsigned long long)pv->start);
	r = files_add_unheld(ctx, fd, id);
	close(fd);
	if (r)
		return -1;
	for (int j = 0; j < ctx->vmas.nr; j++) {
		VmaEntry *w = ctx->mm->vmas[j];
		if (w->kind == v->kind && !w->has_file_id && ctx->vmas.v[j].ino == pv->ino &&
		    ctx->vmas.v[j].dev_major == pv->dev_major &&
		    ctx->vmas.v[j].dev_minor == pv->dev_minor) {
			w->has_file_id = true;
			w->file_id = *id;
		}
	}
	return 0;
}

/* A lock /proc/locks lists that no fd of the tree shows: held through a
 * description only a mapping holds (a JVM's perf-data file, its fd closed),
 * or someone else's. */
static int dump_unseen(struct dump_tree *tree, const struct sys_lock *s)
{
	struct dump_ctx *owner = s->pid > 0 ? tree_pid(tree, s->pid) : NULL;
	int vma;
	struct dump_ctx *ctx = mapper_of(tree, s, &vma);
	LockEntry l = s->l;

	if (!ctx && owner)
		return err_set("pid %d holds a %s lock on inode %llu that none of its fds or "
			       "mappings shows: not supported",
			       owner->pid, kind_names[s->l.kind], (unsigned long long)s->ino);
	if (!ctx) /* someone else's lock, on a file the tree does not map */
		return 0;
	const char *path = ctx->mm->vmas[vma]->path;
	if (l.kind == LOCK_KIND__LOCK_POSIX)
		return err_set("pid %d holds a POSIX lock on %s, which it only maps: not supported",
			       ctx->pid, path);
	if (!tree->opts->file_locks)
		return err_set("pid %d holds a %s lock on %s, which it maps at 0x%llx: dump with "
			       "--file-locks to save it",
			       ctx->pid, kind_names[l.kind], path,
			       (unsigned long long)ctx->vmas.v[vma].start);
	l.has_mapped_at = true;
	l.mapped_at = ctx->vmas.v[vma].start;
	l.fd = 0;
	return tie_mapping(ctx, vma, &l, &l.file_id) || add_lock(ctx, &l);
}

static int locks_write(struct dump_ctx *ctx)
{
	LocksHead head = LOCKS_HEAD__INIT;

	if (!ctx->opts->file_locks)
		return 0;
	head.file_locks = true;
	return image_write_array(&ctx->tree->dir, IMAGE_LOCKS, ctx->pid, &head.base, ctx->locks,
				 ctx->nr_locks, sizeof(*ctx->locks));
}

int locks_dump_tree(struct dump_tree *tree)
{
	struct sys_locks sl;
	int ret;

	if (parse_sys_locks(tree->proc_locks->text, &sl))
		return -1;
	ret = mark_all_seen(tree, &sl);
	for (int i = 0; i < sl.nr && !ret; i++)
		if (!sl.v[i].seen)
			ret = dump_unseen(tree, &sl.v[i]);
	free(sl.v);
	for (int p = 0; p < tree->nr_procs && !ret; p++)
		if (!tree->procs[p]->zombie)
			ret = locks_write(tree->procs[p]);
	return ret;
}

void locks_dump_free(struct dump_ctx *ctx)
{
	free(ctx->locks);
	ctx->locks = NULL;
	ctx->nr_locks = 0;
}

/* ---- restore ---- */

/* The VMA of ctx that maps description file_id (one no fd holds), or -1. */
static long mapping_of(const struct restore_ctx *ctx, uint32_t file_id)
{
	for (size_t i = 0; i < ctx->mm->n_vmas; i++)
		if (ctx->mm->vmas[i]->has_file_id && ctx->mm->vmas[i]->file_id == file_id)
			return i;
	return -1;
}

static int check_lock(const struct restore_ctx *ctx, const LockEntry *l)
{
	bool has_fd = false;

	for (size_t i = 0; i < ctx->nr_fds; i++)
		has_fd |= ctx->fds[i]->file_id == l->file_id;
	if (l->has_mapped_at ? mapping_of(ctx, l->file_id) < 0 : !has_fd)
		return err_set("locks-%d.img: a lock of pid %d is on file %u, which no %s holds",
			       ctx->pid, ctx->pid, l->file_id, l->has_mapped_at ? "mapping" : "fd");
	if (l->has_mapped_at && l->kind == LOCK_KIND__LOCK_POSIX)
		return err_set("locks-%d.img: a POSIX lock of pid %d is held through a mapping",
			       ctx->pid, ctx->pid);
	if (l->kind < LOCK_KIND__LOCK_FLOCK || l->kind > LOCK_KIND__LOCK_LEASE ||
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

/* F_SETLEASE also makes this process the one told of a break (its owner). */
static int take_lease(const LockEntry *l, int fd)
{
	if (!fcntl(fd, F_SETLEASE, l->write ? F_WRLCK : F_RDLCK))
		return 0;
	if (errno == EAGAIN)
		return err_set(
		    "cannot take the %s lease on fd %d again: the file is open elsewhere "
		    "(%s)",
		    l->write ? "write" : "read", fd,
		    l->write ? "a write lease needs no other open" : "opened for writing");
	return err_errno("cannot take the %s lease on fd %d again", l->write ? "write" : "read",
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
	if (l->kind == LOCK_KIND__LOCK_LEASE)
		return take_lease(l, fd);
	if (fcntl(fd, cmd, &fl))
		return lock_failed(l, fd, &fl, cmd);
	return 0;
}

/* Locks held through a mapping are taken on the fd its file was opened on
 * for the mapping (mm.c), still open then; the others on an fd of theirs. */
int locks_restore_child(struct restore_ctx *ctx)
{
	for (size_t i = 0; i < ctx->nr_locks; i++) {
		const LockEntry *l = ctx->locks[i];
		int fd = -1;
		for (size_t j = 0; j < ctx->nr_fds && fd < 0; j++)
			if (ctx->fds[j]->file_id == l->file_id)
				fd = ctx->fds[j]->fd;
		if (l->has_mapped_at)
			fd = ctx->vma_fd[mapping_of(ctx, l->file_id)];
		if (take_lock(l, fd))
			return -1;
	}
	return 0;
}
