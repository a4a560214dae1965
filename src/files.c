/*
 * files: the fd tables of a tree and the open file descriptions behind them.
 *
 * This file knows no kind of file: every step that depends on the kind goes
 * through the kind's row of the table in fdkind.h.
 *
 * Dump: every fd of /proc/PID/fd is duplicated into cryo with pidfd_getfd,
 * so that its description can be examined directly: kcmp finds an fd that
 * shares a description already seen (in this or another process of the
 * tree), fdinfo gives offset and flags, and the first row of the table that
 * recognises it (by fstat, its link, its socket family) dumps it. An fd no
 * row recognises stops the dump with an error naming it: an fd is never
 * silently dropped. Once every process was seen, each kind finishes (peers,
 * queues, its own images) and files.img is written: one record per
 * description of the tree; fdinfo-PID.img holds each process's fd table.
 *
 * Restore: a description that more than one process uses, or that a
 * mapping maps, or that is in flight in a socket, or that its kind wants
 * made so, is made once by the root before it forks, on a slot above every
 * fd in use, and inherited; every other is opened by the process that holds
 * it. Each is then placed on every fd that shared it; the kinds get a last
 * word once the process's fds are all in place (epoll watches), and those
 * that name other processes are opened late, once every process exists,
 * when O_ASYNC is also set again with its owner and signal (F_SETOWN_EX,
 * F_SETSIG: the owner may be any process of the tree).
 */
#include <errno.h>
#include <stddef.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <unistd.h>
#include <linux/kcmp.h>

#include "external.h"
#include "fdkind.h"
#include "files.h"
#include "images.h"
#include "infra/log.h"
#include "sockets/sockopt.h"

/* flags that only matter at open time, or that fcntl() cannot set */
#define OPEN_ONLY_FLAGS (O_CREAT | O_EXCL | O_TRUNC | O_NOCTTY | O_CLOEXEC)

/* Who holds each description of a restore: the first fd (for messages) and
 * how many processes, indexed by file id - 1. */
struct files_use {
	const struct fd_kind *kind;
	struct fd_use first;
	unsigned users;
	pid_t last_pid;
	bool mapped; /* a mapping of some process maps it */
};

/* pos and flags, the first two lines of fdinfo (whatever follows, and
 * some kinds print much, is read by the kinds that need it). */
static int read_fdinfo(pid_t pid, int fd, uint64_t *pos, unsigned *flags)
{
	char name[64], buf[256], *p;

	snprintf(name, sizeof(name), "fdinfo/%d", fd);
	if (proc_read_head(pid, name, buf, sizeof(buf)))
		return -1;
	p = strstr(buf, "pos:");
	*pos = p ? strtoull(p + 4, NULL, 10) : 0;
	p = strstr(buf, "flags:");
	*flags = p ? strtoul(p + 6, NULL, 8) : 0;
	if (!p)
		return err_set("cannot parse /proc/%d/fdinfo/%d", pid, fd);
	return 0;
}

/* What an fd no kind recognises is, for the error that stops the dump. */
static void what_it_is(const struct stat *st, char *buf, size_t len)
{
	switch (st->st_mode & S_IFMT) {
	case S_IFSOCK:
		snprintf(buf, len, "a socket");
		break;
	case S_IFCHR:
		snprintf(buf, len, "character device %u:%u", major(st->st_rdev),
			 minor(st->st_rdev));
		break;
	case S_IFBLK:
		snprintf(buf, len, "block device %u:%u", major(st->st_rdev), minor(st->st_rdev));
		break;
	default:
		snprintf(buf, len, "a file of mode 0%o", st->st_mode);
	}
}

static int classify(struct dump_ctx *ctx, struct dump_file *f, const struct fd_probe *p)
{
	const struct fd_kind *k = fd_kind_recognise(p);
	char what[64];

	if (!k) {
		what_it_is(p->st, what, sizeof(what));
		return err_set("fd %d of pid %d is %s (%s): not supported yet", p->fd, p->pid, what,
			       p->link);
	}
	f->entry.kind = k->kind;
	return k->dump(ctx, f, p);
}

/* The tree's descriptions are kept ordered by inode, then (two of one
 * inode) in the kernel's order of their files (kcmp orders them), so that
 * finding whether an fd shares one takes a binary search in which kcmp is
 * called only between files of the same inode (one description is one
 * inode): an fd of an inode not seen yet costs no system call, and a
 * process with thousands of fds on one file still makes a few kcmp each,
 * not millions. */
static int compare_file(int local_fd, const struct stat *st, const struct dump_file *f)
{
	pid_t self;

	if (st->st_dev != f->dev)
		return st->st_dev < f->dev ? -1 : 1;
	if (st->st_ino != f->ino)
		return st->st_ino < f->ino ? -1 : 1;
	self = getpid();
	switch (syscall(SYS_kcmp, self, self, KCMP_FILE, local_fd, f->local_fd)) {
	case 0:
		return 0;
	case 1:
		return -1;
	case 2:
		return 1;
	default:
		return -2;
	}
}

/* The index of the description local_fd shares, -1 if none (*at: where
 * it would go in file_order), -2 if kcmp gives no order. */
static int find_ordered(const struct dump_tree *tree, int local_fd, const struct stat *st, int *at)
{
	int lo = 0, hi = tree->nr_files;

	while (lo < hi) {
		int mid = lo + (hi - lo) / 2;
		int r = compare_file(local_fd, st, &tree->files[tree->file_order[mid]]);
		if (r == 0)
			return tree->file_order[mid];
		if (r == -1)
			hi = mid;
		else if (r == 1)
			lo = mid + 1;
		else
			return -2;
	}
	*at = lo;
	return -1;
}

/* The description local_fd shares, or -1 (*at: where a new one goes). */
static int find_shared(const struct dump_tree *tree, int local_fd, const struct stat *st, int *at)
{
	int i = find_ordered(tree, local_fd, st, at);
	pid_t self;

	if (i != -2)
		return i;
	self = getpid();
	*at = tree->nr_files;
	for (int k = 0; k < tree->nr_files; k++)
		if (tree->files[k].dev == st->st_dev && tree->files[k].ino == st->st_ino &&
		    !syscall(SYS_kcmp, self, self, KCMP_FILE, local_fd, tree->files[k].local_fd))
			return k;
	return -1;
}

int files_find(const struct dump_tree *tree, int local_fd)
{
	struct stat st;
	int at;

	if (fstat(local_fd, &st))
		return -1;
	return find_shared(tree, local_fd, &st, &at);
}

/* A new description at files[nr_files], from cryo's fd local on it; at
 * is its place in file_order (find_shared). */
static struct dump_file *new_description(struct dump_ctx *ctx, int local, int fd, unsigned flags,
					 uint64_t pos, const struct stat *st, int at)
{
	struct dump_tree *tree = ctx->tree;
	struct dump_file *f = &tree->files[tree->nr_files];

	file_entry__init(&f->entry);
	f->local_fd = local;
	f->first_pid = ctx->pid;
	f->first_fd = fd;
	f->dev = st->st_dev;
	f->ino = st->st_ino;
	f->entry.id = tree->nr_files + 1;
	f->entry.flags = flags & ~OPEN_ONLY_FLAGS;
	f->entry.pos = pos;
	f->entry.has_mode = true;
	f->entry.mode = st->st_mode;
	memmove(tree->file_order + at + 1, tree->file_order + at,
		(tree->nr_files - at) * sizeof(*tree->file_order));
	tree->file_order[at] = tree->nr_files++;
	return f;
}

/* O_ASYNC: the owner the signal goes to and the signal, read through
 * cryo's duplicate (the same description). */
static int dump_owner(struct dump_ctx *ctx, struct dump_file *f, int fd)
{
	struct f_owner_ex own;
	int sig;

	if (!(f->entry.flags & O_ASYNC))
		return 0;
	if (fcntl(f->local_fd, F_GETOWN_EX, &own) || (sig = fcntl(f->local_fd, F_GETSIG)) < 0)
		return err_errno("cannot read the owner of fd %d of pid %d", fd, ctx->pid);
	f->entry.has_owner_type = f->entry.has_owner_pid = f->entry.has_owner_sig = true;
	f->entry.owner_type = own.type;
	f->entry.owner_pid = own.pid;
	f->entry.owner_sig = sig;
	return 0;
}

/* A socket's domain, type and protocol, read once for every row. */
static int probe_socket(int local, const struct stat *st, struct fd_probe *p)
{
	p->sk_domain = p->sk_type = p->sk_proto = -1;
	if (!S_ISSOCK(st->st_mode))
		return 0;
	if (sk_get_int(local, SOL_SOCKET, SO_DOMAIN, &p->sk_domain) ||
	    sk_get_int(local, SOL_SOCKET, SO_TYPE, &p->sk_type) ||
	    sk_get_int(local, SOL_SOCKET, SO_PROTOCOL, &p->sk_proto))
		return err_errno("socket:[%lu]: SO_DOMAIN/SO_TYPE/SO_PROTOCOL",
				 (unsigned long)st->st_ino);
	return 0;
}

/* What every row may look at: the link (a socket's is known from its
 * inode, without a readlink) and a socket's domain, type and protocol. */
static int probe_fd(pid_t pid, int fd, int local, const struct stat *st, char *link, size_t len,
		    struct fd_probe *p)
{
	char name[32];

	if (S_ISSOCK(st->st_mode))
		snprintf(link, len, "socket:[%lu]", (unsigned long)st->st_ino);
	else if (snprintf(name, sizeof(name), "fd/%d", fd), proc_readlink(pid, name, link, len))
		return -1;
	return probe_socket(local, st, p);
}

/* The parent's entry for fd number fd when it holds the same description
 * there (kcmp): a forked kid mostly does, and is then spared the dup and
 * the search among every description of the tree. */
static const FdEntry *same_as_parent(const struct dump_ctx *ctx, const struct dump_ctx *parent,
				     int fd)
{
	int lo = 0, hi = parent ? parent->nr_fds : 0;

	while (lo < hi) {
		int mid = lo + (hi - lo) / 2;
		if ((int)parent->fds[mid].fd == fd)
			return syscall(SYS_kcmp, ctx->pid, parent->pid, KCMP_FILE, fd, fd)
				   ? NULL
				   : &parent->fds[mid];
		if ((int)parent->fds[mid].fd < fd)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

/* An fd on the description of the parent's same fd: only its own flag. */
static void dump_inherited_fd(struct dump_ctx *ctx, int fd, bool cloexec, const FdEntry *pe)
{
	FdEntry *fe = &ctx->fds[ctx->nr_fds++];

	fd_entry__init(fe);
	fe->fd = fd;
	fe->cloexec = cloexec;
	fe->file_id = pe->file_id;
}

int files_read_fd_flags(struct dump_ctx *ctx)
{
	size_t max = inject_batch_max(&ctx->inj);
	struct inject_call_desc *calls = calloc(max ? max : 1, sizeof(*calls));
	long *ret = calloc(max ? max : 1, sizeof(*ret));
	int n = proc_list_fds(ctx->pid, &ctx->fd_list), err = n < 0 ? -1 : 0;

	ctx->nr_fd_list = n < 0 ? 0 : n;
	ctx->fd_cloexec = calloc(ctx->nr_fd_list + 1, 1);
	if (!err && (!calls || !ret || !ctx->fd_cloexec))
		err = err_set("out of memory");
	for (size_t first = 0, k; !err && first < (size_t)n; first += k) {
		k = n - first < max ? n - first : max;
		for (size_t i = 0; i < k; i++)
			calls[i] = (struct inject_call_desc){SYS_fcntl,
							     {ctx->fd_list[first + i], F_GETFD}};
		err = inject_calls_ret(&ctx->inj, "reading the fd flags", calls, k, ret);
		for (size_t i = 0; !err && i < k; i++)
			ctx->fd_cloexec[first + i] = ret[i] & FD_CLOEXEC;
	}
	free(calls);
	free(ret);
	return err ? -1 : 0;
}

/* One fd: a description seen before is shared; a new one is classified. */
static int dump_fd(struct dump_ctx *ctx, int fd)
{
	FdEntry *fe = &ctx->fds[ctx->nr_fds];
	char link[4096];
	unsigned flags = 0;
	uint64_t pos = 0;
	struct stat st;
	struct fd_probe p = {.pid = ctx->pid, .fd = fd, .st = &st, .link = link};
	int at, local = syscall(SYS_pidfd_getfd, ctx->pidfd, fd, 0);

	if (local < 0)
		return err_errno("cannot duplicate fd %d of pid %d", fd, ctx->pid);
	if (fstat(local, &st) || read_fdinfo(ctx->pid, fd, &pos, &flags)) {
		close(local);
		return err_wrap("fd %d of pid %d", fd, ctx->pid);
	}
	fd_entry__init(fe);
	fe->fd = fd;
	fe->cloexec = flags & O_CLOEXEC;
	ctx->nr_fds++;
	int shared = find_shared(ctx->tree, local, &st, &at);
	if (shared >= 0) {
		fe->file_id = ctx->tree->files[shared].entry.id;
		close(local);
		return 0;
	}
	if (probe_fd(ctx->pid, fd, local, &st, link, sizeof(link), &p)) {
		close(local);
		return err_wrap("fd %d of pid %d", fd, ctx->pid);
	}
	struct dump_file *f = new_description(ctx, local, fd, flags, pos, &st, at);
	p.local_fd = local;
	p.flags = flags;
	fe->file_id = f->entry.id;
	return classify(ctx, f, &p) || dump_owner(ctx, f, fd);
}

/* Room for n more descriptions. A description's entry.path, when set,
 * points into its own path buffer, which moves with the array. */
/* Each description, with its path buffer, fills a page of its own: for
 * thousands of fds the array is megabytes and would take a page fault per
 * fd. Huge pages for it (where the kernel gives them) make that a few. */
static void advise_huge(void *p, size_t len)
{
	uintptr_t huge = 2u << 20, start = ((uintptr_t)p + huge - 1) & ~(huge - 1);
	uintptr_t end = ((uintptr_t)p + len) & ~(huge - 1);

	if (end > start)
		madvise((void *)start, end - start, MADV_HUGEPAGE);
}

static int grow_files(struct dump_tree *tree, int n)
{
	size_t bytes = (tree->nr_files + n + 1) * sizeof(struct dump_file);
	struct dump_file *grown = realloc(tree->files, bytes);
	int *order =
	    grown ? realloc(tree->file_order, (tree->nr_files + n + 1) * sizeof(*order)) : NULL;

	if (grown)
		tree->files = grown;
	if (!order)
		return err_set("out of memory");
	tree->file_order = order;
	advise_huge(grown, bytes);
	for (int i = 0; i < tree->nr_files; i++)
		if (grown[i].entry.path)
			grown[i].entry.path = grown[i].path;
	/* all but the path buffers, which are written before they are read:
	 * with thousands of fds, zeroing them costs megabytes of page faults */
	for (int i = tree->nr_files; i <= tree->nr_files + n; i++) {
		memset(&grown[i], 0, offsetof(struct dump_file, path));
		grown[i].path[0] = 0;
	}
	return 0;
}

int files_add_unheld(struct dump_ctx *ctx, int local, uint32_t *id)
{
	char link[4096], name[32];
	struct stat st;
	ssize_t n;
	int flags, dup;

	snprintf(name, sizeof(name), "/proc/self/fd/%d", local);
	n = readlink(name, link, sizeof(link) - 1);
	if (n < 0 || fstat(local, &st) || (flags = fcntl(local, F_GETFL)) < 0)
		return err_errno("pid %d: cannot examine a file it holds without an fd", ctx->pid);
	link[n] = 0;
	if (grow_files(ctx->tree, 1))
		return -1;
	dup = fcntl(local, F_DUPFD_CLOEXEC, 0);
	if (dup < 0)
		return err_errno("cannot keep a file pid %d holds without an fd", ctx->pid);
	struct fd_probe p = {
	    .pid = ctx->pid, .fd = -1, .local_fd = dup, .st = &st, .flags = flags, .link = link};
	int at, shared = find_shared(ctx->tree, dup, &st, &at);
	if (shared >= 0 || probe_socket(dup, &st, &p)) {
		close(dup);
		if (shared < 0)
			return -1;
		*id = ctx->tree->files[shared].entry.id;
		return 0;
	}
	struct dump_file *f = new_description(ctx, dup, -1, flags, 0, &st, at);
	*id = f->entry.id;
	return classify(ctx, f, &p);
}

/* The parent's state, when it is in the tree and alive (collected first). */
static const struct dump_ctx *live_parent(const struct dump_ctx *ctx)
{
	for (int i = 0; i < ctx->tree->nr_procs; i++) {
		const struct dump_ctx *p = ctx->tree->procs[i];
		if (p == ctx)
			return NULL;
		if (p->pid == ctx->stat.ppid)
			return p->zombie ? NULL : p;
	}
	return NULL;
}

int files_dump(struct dump_ctx *ctx)
{
	const struct dump_ctx *parent = live_parent(ctx);
	int n = ctx->nr_fd_list;

	ctx->fds = calloc(n + 1, sizeof(*ctx->fds));
	if (!ctx->fds || grow_files(ctx->tree, n))
		return err_set("out of memory");
	for (int i = 0; i < n; i++) {
		const FdEntry *pe = same_as_parent(ctx, parent, ctx->fd_list[i]);
		if (pe)
			dump_inherited_fd(ctx, ctx->fd_list[i], ctx->fd_cloexec[i], pe);
		else if (dump_fd(ctx, ctx->fd_list[i]))
			return -1;
	}
	return 0;
}

int files_write(struct dump_ctx *ctx)
{
	return image_write_array(&ctx->tree->dir, IMAGE_FDINFO, ctx->pid, NULL, ctx->fds,
				 ctx->nr_fds, sizeof(*ctx->fds));
}

int files_dump_finish(struct dump_tree *tree)
{
	for (size_t k = 0; k < fd_nr_kinds; k++)
		if (fd_kinds[k]->dump_finish && fd_kinds[k]->dump_finish(tree))
			return -1;
	return image_write_array(&tree->dir, IMAGE_FILES, 0, NULL,
				 tree->nr_files ? &tree->files[0].entry : NULL, tree->nr_files,
				 sizeof(*tree->files));
}

void files_dump_end(struct dump_tree *tree, enum dump_end how)
{
	if (how != DUMP_END_FAILED)
		external_dump_report(tree);
	for (size_t k = 0; k < fd_nr_kinds; k++)
		if (fd_kinds[k]->dump_end)
			fd_kinds[k]->dump_end(tree, how);
}

void files_dump_free(struct dump_tree *tree)
{
	for (int i = 0; i < tree->nr_files; i++) {
		const struct fd_kind *k = fd_kind_of(tree->files[i].entry.kind);
		if (k && k->free_entry)
			k->free_entry(&tree->files[i].entry);
		if (tree->files[i].local_fd >= 0)
			close(tree->files[i].local_fd);
	}
	for (size_t k = 0; k < fd_nr_kinds; k++)
		if (fd_kinds[k]->dump_free)
			fd_kinds[k]->dump_free(tree);
	external_dump_free(tree);
	free(tree->files);
	free(tree->file_order);
	tree->files = NULL;
	tree->file_order = NULL;
	tree->nr_files = 0;
	for (int i = 0; i < tree->nr_procs; i++) {
		free(tree->procs[i]->fds);
		tree->procs[i]->fds = NULL;
	}
}

/* ---- restore: in cryo ---- */

int files_load(struct restore_tree *tree)
{
	if (image_load_list(&tree->dir, IMAGE_FILES, 0, NULL, (void ***)&tree->files,
			    &tree->nr_files))
		return -1;
	for (size_t k = 0; k < fd_nr_kinds; k++)
		if (fd_kinds[k]->load && fd_kinds[k]->load(tree))
			return -1;
	return 0;
}

int files_load_proc(struct restore_ctx *ctx)
{
	return image_load_list(&ctx->tree->dir, IMAGE_FDINFO, ctx->pid, NULL, (void ***)&ctx->fds,
			       &ctx->nr_fds);
}

int files_max_fd(const struct restore_ctx *ctx)
{
	int max = 2;

	for (size_t i = 0; i < ctx->nr_fds; i++)
		if ((int)ctx->fds[i]->fd > max)
			max = ctx->fds[i]->fd;
	return max;
}

/* One process's fd table: in order, and every fd names a description. */
static int validate_fds(struct restore_ctx *ctx)
{
	for (size_t i = 0; i < ctx->nr_fds; i++) {
		const FdEntry *fd = ctx->fds[i];
		if (fd->fd > 1 << 20 || (i && fd->fd <= ctx->fds[i - 1]->fd))
			return err_set("fdinfo-%d.img: bad fd number %u", ctx->pid, fd->fd);
		if (!ctx_file(ctx->tree, fd->file_id))
			return err_set("fdinfo-%d.img: fd %u refers to a missing file %u", ctx->pid,
				       fd->fd, fd->file_id);
	}
	return 0;
}

/* Who holds each description: its first fd and the number of processes. */
static int index_uses(struct restore_tree *tree)
{
	struct files_use *u = calloc(tree->nr_files + 1, sizeof(*u));

	if (!u)
		return err_set("out of memory");
	tree->file_uses = u;
	for (size_t i = 0; i < tree->nr_files; i++) {
		u[i].kind = fd_kind_of(tree->files[i]->kind);
		u[i].first.fd = -1;
		u[i].first.pid = tree->procs[0]->pid;
	}
	for (size_t p = 0; p < tree->nr_procs; p++) {
		const struct restore_ctx *ctx = tree->procs[p];
		for (size_t i = 0; !ctx->zombie && i < ctx->nr_fds; i++) {
			struct files_use *x = &u[ctx->fds[i]->file_id - 1];
			if (x->first.fd < 0)
				x->first = (struct fd_use){ctx->pid, ctx->fds[i]->fd};
			if (!x->users || x->last_pid != ctx->pid)
				x->users++;
			x->last_pid = ctx->pid;
		}
		for (size_t i = 0; !ctx->zombie && i < ctx->mm->n_vmas; i++) {
			const VmaEntry *v = ctx->mm->vmas[i];
			if (v->has_file_id && v->file_id >= 1 && v->file_id <= tree->nr_files)
				u[v->file_id - 1].mapped = true;
		}
	}
	return 0;
}

/* The dump numbers descriptions 1, 2, ... in order, each of a known kind. */
static int validate_ids(const struct restore_tree *tree)
{
	for (size_t i = 0; i < tree->nr_files; i++) {
		const FileEntry *fe = tree->files[i];
		if (fe->id != i + 1)
			return err_set("files.img: file %zu has id %u", i + 1, fe->id);
		if (!fd_kind_of(fe->kind))
			return err_set("files.img: file %u is of unknown kind %d", fe->id,
				       fe->kind);
	}
	return 0;
}

int files_validate(struct restore_tree *tree)
{
	if (validate_ids(tree))
		return -1;
	for (size_t p = 0; p < tree->nr_procs; p++)
		if (!tree->procs[p]->zombie && validate_fds(tree->procs[p]))
			return -1;
	if (index_uses(tree))
		return -1;
	struct external_missing outside = {0};
	for (size_t i = 0; i < tree->nr_files; i++) {
		const struct fd_kind *k = tree->file_uses[i].kind;
		const struct fd_use *use = &tree->file_uses[i].first;
		if (external_check(tree, tree->files[i], use, &outside))
			continue; /* cryo's fd, or one missing: nothing to check */
		if (k->validate && k->validate(tree, tree->files[i], use))
			return -1;
	}
	return external_check_end(tree, &outside);
}

int files_prepare(struct restore_tree *tree)
{
	for (size_t k = 0; k < fd_nr_kinds; k++)
		if (fd_kinds[k]->prepare && fd_kinds[k]->prepare(tree))
			return -1;
	return 0;
}

/* The row of a validated description. */
static const struct fd_kind *kind_of(const struct restore_tree *tree, const FileEntry *fe)
{
	return tree->file_uses[fe->id - 1].kind;
}

/* The same description, or another of the same object: made together. */
static bool made_together(const struct restore_tree *tree, const FileEntry *a, const FileEntry *b)
{
	const struct fd_kind *k = kind_of(tree, a);

	return a == b || (a->kind == b->kind && k->same_object && k->same_object(a, b));
}

static bool carried(const struct restore_tree *tree, uint32_t id)
{
	for (size_t k = 0; k < fd_nr_kinds; k++)
		if (fd_kinds[k]->carries && fd_kinds[k]->carries(tree, id))
			return true;
	return false;
}

/* Whether fe, or what is made with it, is used by more than one process
 * or is in flight in a socket. */
static bool object_shared(const struct restore_tree *tree, const FileEntry *fe)
{
	const struct files_use *u = tree->file_uses;
	pid_t one = 0;

	if (!kind_of(tree, fe)->same_object)
		return u[fe->id - 1].users > 1 || carried(tree, fe->id);
	for (size_t i = 0; i < tree->nr_files; i++) {
		const FileEntry *o = tree->files[i];
		if (!made_together(tree, fe, o))
			continue;
		if (u[i].users > 1 || (u[i].users && one && u[i].first.pid != one))
			return true;
		if (u[i].users)
			one = u[i].first.pid;
		if (carried(tree, o->id))
			return true;
	}
	return false;
}

static bool opens_late(const struct fd_kind *k, const FileEntry *fe)
{
	return k->open_late && (!k->late_if || k->late_if(fe));
}

/* Made by the root and inherited: what its kind wants so, what more than
 * one process uses, what a mapping maps, what is in flight, and what an
 * --inherit-fd gives (cryo's fd, which only the root still holds). */
static bool made_by_root(const struct restore_tree *tree, const FileEntry *fe)
{
	const struct fd_kind *k = kind_of(tree, fe);

	if (external_given(tree, fe) >= 0)
		return true;
	if (k->never_shared || opens_late(k, fe))
		return false;
	return k->by_root || tree->file_uses[fe->id - 1].mapped || object_shared(tree, fe) ||
	       (k->needs_root && k->needs_root(tree, fe));
}

int files_plan(struct restore_tree *tree)
{
	tree->inherit_ids = calloc(tree->nr_files + 1, sizeof(*tree->inherit_ids));
	if (!tree->inherit_ids)
		return err_set("out of memory");
	for (int pass = 0; pass < 2; pass++)
		for (size_t i = 0; i < tree->nr_files; i++) {
			const FileEntry *fe = tree->files[i];
			if (kind_of(tree, fe)->pass == pass && made_by_root(tree, fe))
				tree->inherit_ids[tree->nr_inherit++] = fe->id;
		}
	for (size_t i = 0; i < tree->nr_files; i++)
		if ((opens_late(kind_of(tree, tree->files[i]), tree->files[i]) ||
		     tree->files[i]->has_owner_type) &&
		    tree->file_uses[i].users)
			tree->has_late = true;
	return 0;
}

int files_restore_release(struct restore_tree *tree)
{
	for (size_t k = 0; k < fd_nr_kinds; k++)
		if (fd_kinds[k]->release && fd_kinds[k]->release(tree))
			return -1;
	return 0;
}

void files_restore_undo(struct restore_tree *tree)
{
	for (size_t k = 0; k < fd_nr_kinds; k++)
		if (fd_kinds[k]->undo)
			fd_kinds[k]->undo(tree);
}

void files_restore_free(struct restore_tree *tree)
{
	for (size_t k = 0; k < fd_nr_kinds; k++)
		if (fd_kinds[k]->restore_free)
			fd_kinds[k]->restore_free(tree);
	for (size_t i = 0; i < tree->nr_files; i++)
		protobuf_c_message_free_unpacked(&tree->files[i]->base, NULL);
	free(tree->files);
	tree->files = NULL;
	tree->nr_files = 0;
	free(tree->file_uses);
	tree->file_uses = NULL;
	free(tree->inherit_ids);
	tree->inherit_ids = NULL;
	external_restore_free(tree);
}

void files_proc_free(struct restore_ctx *ctx)
{
	for (size_t i = 0; i < ctx->nr_fds; i++)
		protobuf_c_message_free_unpacked(&ctx->fds[i]->base, NULL);
	free(ctx->fds);
	ctx->fds = NULL;
	ctx->nr_fds = 0;
}

/* ---- restore: in the new process ---- */

static int open_description(struct restore_ctx *ctx, const FileEntry *fe, int *fd)
{
	const struct fd_kind *k = kind_of(ctx->tree, fe);

	*fd = -1;
	if (external_given(ctx->tree, fe) >= 0)
		return external_open(ctx->tree, fe, fd);
	if (!k->open)
		return err_set("file %u (%s) cannot be opened", fe->id, k->name);
	return k->open(ctx, fe, fd);
}

/* Pipe ends, sockets and inodes made along the way and never placed. */
static void drop_made(struct restore_ctx *ctx)
{
	for (size_t k = 0; k < fd_nr_kinds; k++)
		if (fd_kinds[k]->drop_made)
			fd_kinds[k]->drop_made(ctx);
}

int files_restore_inherited(struct restore_ctx *root)
{
	struct restore_tree *tree = root->tree;

	for (size_t i = 0; i < tree->nr_inherit; i++) {
		const FileEntry *fe = ctx_file(tree, tree->inherit_ids[i]);
		int fd;
		if (open_description(root, fe, &fd))
			return -1;
		if (dup2(fd, tree->inherit_base + i) < 0)
			return err_errno("cannot place a shared description");
		close(fd);
	}
	drop_made(root);
	return 0;
}

/* A description shared with other processes was made by the root and is
 * inherited; any other is made here. */
static int open_or_inherit(struct restore_ctx *ctx, const FileEntry *fe, int *fd)
{
	int slot = ctx_inherited_fd(ctx->tree, fe->id);

	if (slot < 0)
		return open_description(ctx, fe, fd);
	*fd = fcntl(slot, F_DUPFD_CLOEXEC, ctx->stage_base);
	if (*fd < 0)
		return err_errno("cannot take a shared description");
	return 0;
}

/* Puts the description open on tmp on fds[0..n) (all of one description). */
static int place(const FdEntry *const *fds, size_t n, int tmp)
{
	bool placed_tmp = false;

	for (size_t i = 0; i < n; i++) {
		if ((int)fds[i]->fd == tmp)
			placed_tmp = true;
		else if (dup2(tmp, fds[i]->fd) < 0)
			return err_errno("cannot place fd %u", fds[i]->fd);
		if (fcntl(fds[i]->fd, F_SETFD, fds[i]->cloexec ? FD_CLOEXEC : 0))
			return err_errno("cannot set flags of fd %u", fds[i]->fd);
	}
	if (!placed_tmp)
		close(tmp);
	return 0;
}

static int by_file_id(const void *a, const void *b)
{
	const FdEntry *x = *(const FdEntry *const *)a, *y = *(const FdEntry *const *)b;

	if (x->file_id != y->file_id)
		return x->file_id < y->file_id ? -1 : 1;
	return (x->fd > y->fd) - (x->fd < y->fd);
}

/* The process's fds grouped by description, in the order of files.img. */
static const FdEntry **fds_by_file(const struct restore_ctx *ctx)
{
	const FdEntry **v = malloc((ctx->nr_fds + 1) * sizeof(*v));

	if (!v) {
		err_set("out of memory");
		return NULL;
	}
	memcpy(v, ctx->fds, ctx->nr_fds * sizeof(*v));
	qsort(v, ctx->nr_fds, sizeof(*v), by_file_id);
	return v;
}

/* Opens and places every description of the pass (late ones: if late). */
static int place_pass(struct restore_ctx *ctx, const FdEntry **v, int pass, bool late)
{
	for (size_t i = 0, j; i < ctx->nr_fds; i = j) {
		const FileEntry *fe = ctx_file(ctx->tree, v[i]->file_id);
		const struct fd_kind *k = kind_of(ctx->tree, fe);
		/* one the root made (an --inherit-fd's) is never opened late */
		bool late_here = opens_late(k, fe) && ctx_inherited_fd(ctx->tree, fe->id) < 0;
		int tmp;
		for (j = i; j < ctx->nr_fds && v[j]->file_id == v[i]->file_id; j++)
			;
		if (k->pass != pass || late_here != late)
			continue;
		if ((late ? k->open_late(ctx, fe, &tmp) : open_or_inherit(ctx, fe, &tmp)) ||
		    place(v + i, j - i, tmp))
			return -1;
	}
	return 0;
}

static int place_all(struct restore_ctx *ctx, bool late)
{
	const FdEntry **v = fds_by_file(ctx);
	int ret = 0;

	if (!v)
		return -1;
	for (int pass = 0; pass < 2 && !ret; pass++)
		ret = place_pass(ctx, v, pass, late);
	free(v);
	return ret;
}

int files_restore_child(struct restore_ctx *ctx)
{
	if (place_all(ctx, false))
		return -1;
	for (size_t k = 0; k < fd_nr_kinds; k++)
		if (fd_kinds[k]->placed && fd_kinds[k]->placed(ctx))
			return -1;
	drop_made(ctx);
	/* temporaries and the shared descriptions' slots */
	if (syscall(SYS_close_range, ctx->stage_base, ~0U, 0))
		return err_errno("cannot close temporary fds");
	return 0;
}

/* O_ASYNC with its owner and signal, on every fd of a description that
 * had them: the owner (a process, thread or group of the tree) exists now. */
static int set_owners(struct restore_ctx *ctx)
{
	for (size_t i = 0; i < ctx->nr_fds; i++) {
		const FileEntry *fe = ctx_file(ctx->tree, ctx->fds[i]->file_id);
		struct f_owner_ex own = {.type = fe->owner_type, .pid = fe->owner_pid};
		int fd = ctx->fds[i]->fd, fl;
		if (!fe->has_owner_type)
			continue;
		if (fcntl(fd, F_SETSIG, fe->owner_sig) || fcntl(fd, F_SETOWN_EX, &own) ||
		    (fl = fcntl(fd, F_GETFL)) < 0 || fcntl(fd, F_SETFL, fl | O_ASYNC))
			return err_errno("cannot set O_ASYNC and the owner (pid %d) of fd %d",
					 fe->owner_pid, fd);
	}
	return 0;
}

int files_restore_late(struct restore_ctx *ctx)
{
	return place_all(ctx, true) || set_owners(ctx);
}

/* ---- show ---- */

void files_describe(const FileEntry *fe, char *buf, size_t len)
{
	const struct fd_kind *k = fd_kind_of(fe->kind);

	if (!k)
		snprintf(buf, len, "unknown kind %d", fe->kind);
	else if (k->describe)
		k->describe(fe, buf, len);
	else
		snprintf(buf, len, "%s%s%s", k->name, fe->path ? " " : "",
			 fe->path ? fe->path : "");
}
