/*
 * ghost: descriptions that cannot simply be opened again by their path.
 *
 *  - regular files deleted while open (the fd's link ends in " (deleted)"
 *    and no link to the inode is left): the contents are saved; restore
 *    recreates the file in the same directory, opens it with each
 *    description's flags and offset, and deletes it again;
 *  - memfds ("/memfd:NAME (deleted)"): contents, name, size, mode and seals;
 *    restored with memfd_create(NAME), the contents, then F_ADD_SEALS;
 *  - O_PATH descriptions: opened again with O_PATH (and the O_NOFOLLOW or
 *    O_DIRECTORY they had), for any kind of file; a deleted one is a ghost.
 *
 * Dump: deleted files and memfds are grouped by inode: one ghost_entry in
 * ghost-files.img serves every description of it (file_entry.ghost_id).
 * The contents are read with pread from cryo's pidfd_getfd duplicate, so
 * the target's offset never moves (through a read-only reopening of it in
 * /proc/self/fd, a description of cryo's own), and go raw into
 * ghost-data.img: only the runs of data SEEK_DATA and SEEK_HOLE find, so a
 * file of many GiB with a few blocks of data costs those blocks, and its
 * holes stay holes after restore. More data than --ghost-limit (64 MiB by
 * default) in one file stops the dump, naming it.
 *
 * Restore: ghost-data.img is mapped read-only and checked against the
 * inventory before anything is created. In the new process the first
 * description of a ghost makes the inode and opens every description of it
 * at once, keeping each on a temporary fd until files.c places it:
 *   deleted file: O_TMPFILE in its directory (create + unlink where the
 *   filesystem lacks O_TMPFILE), contents, owner, mode, times; it is linked
 *   under its old name (when that name is free) only while its descriptions
 *   are opened, so that they read "PATH (deleted)" again, then unlinked;
 *   memfd: memfd_create, contents, size, owner, mode, times, then seals;
 *   its descriptions are opened through /proc/self/fd.
 */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>
#include <linux/magic.h>

#include "fdkind.h"
#include "ghost.pb-c.h"
#include "images.h"
#include "infra/log.h"

#define GHOST_LIMIT    (64ULL << 20) /* --ghost-limit's default */
#define GHOST_MAX_SIZE (1ULL << 62)
#define MAX_EXTENTS    (1u << 20)
#define COPY_CHUNK     (1u << 20)
#define DELETED	       " (deleted)"
#define MEMFD_PREFIX   "/memfd:"
#define MEMFD_NAME_MAX 249
#ifndef MFD_NOEXEC_SEAL
#define MFD_NOEXEC_SEAL 0x0008U
#endif
#ifndef MFD_EXEC
#define MFD_EXEC 0x0010U
#endif
#ifndef F_SEAL_EXEC
#define F_SEAL_EXEC 0x0020
#endif
/* flags that open() must not see again: they create, truncate or are O_TMPFILE */
#define NOT_REOPEN (O_CREAT | O_EXCL | O_TRUNC | O_TMPFILE | O_DIRECTORY | O_NOFOLLOW)

struct dump_ghost {
	GhostEntry e;
	GhostExtent *ext;  /* e.extents point here */
	uint64_t data_len; /* the bytes of its runs of data */
	dev_t dev;
	ino_t ino;
	int src_fd; /* borrowed: cryo's duplicate of the first description */
	unsigned src_flags;
	char path[4096]; /* deleted file: its path; memfd: its name */
};

struct ghost_dump {
	int nr;
	struct dump_ghost *v;
};

/* Restore: ghost-files.img, and ghost-data.img mapped read-only (the new
 * processes inherit the mapping). */
struct ghost_restore {
	size_t nr;
	GhostEntry **v;
	const unsigned char *data;
	uint64_t size;
};

/* The new process: descriptions opened ahead of their turn. */
struct made_desc {
	uint32_t file_id;
	int fd; /* the description, on a temporary fd; -1 once handed over */
};
struct ghost_made {
	size_t nr;
	struct made_desc *v;
};

static bool ends_with(const char *s, const char *suffix)
{
	size_t n = strlen(s), m = strlen(suffix);

	return n >= m && !strcmp(s + n - m, suffix);
}

static uint64_t ts_ns(const struct timespec *ts)
{
	return ts->tv_sec * 1000000000ULL + ts->tv_nsec;
}

/* ---- dump ---- */

static struct dump_ghost *find_ghost(struct dump_ctx *ctx, const struct stat *st)
{
	struct ghost_dump *d = ctx->tree->ghosts;

	for (int i = 0; d && i < d->nr; i++)
		if (d->v[i].dev == st->st_dev && d->v[i].ino == st->st_ino)
			return &d->v[i];
	return NULL;
}

static struct dump_ghost *add_ghost(struct dump_ctx *ctx, const struct dump_file *f,
				    const struct stat *st)
{
	struct ghost_dump *d = ctx->tree->ghosts;
	struct dump_ghost *g;

	if (!d && !(d = ctx->tree->ghosts = calloc(1, sizeof(*d))))
		goto oom;
	g = realloc(d->v, (d->nr + 1) * sizeof(*g));
	if (!g)
		goto oom;
	d->v = g;
	g = &d->v[d->nr++];
	memset(g, 0, sizeof(*g));
	ghost_entry__init(&g->e);
	g->e.id = d->nr;
	g->e.size = st->st_size;
	g->e.mode = st->st_mode;
	g->e.uid = st->st_uid;
	g->e.gid = st->st_gid;
	g->e.atime_ns = ts_ns(&st->st_atim);
	g->e.mtime_ns = ts_ns(&st->st_mtim);
	g->dev = st->st_dev;
	g->ino = st->st_ino;
	g->src_fd = f->local_fd;
	g->src_flags = f->entry.flags;
	return g;
oom:
	err_set("out of memory");
	return NULL;
}

/* A file whose name really ends in " (deleted)", or one unlinked from this
 * path but still linked elsewhere (which cannot be found again). */
static int still_linked(struct dump_ctx *ctx, struct dump_file *f, int fd, const struct stat *st,
			const char *link)
{
	struct stat now;

	if (stat(link, &now) || now.st_dev != st->st_dev || now.st_ino != st->st_ino)
		return err_set("fd %d of pid %d is %s: removed from that path but still linked "
			       "elsewhere (%lu links): not supported yet",
			       fd, ctx->pid, link, (unsigned long)st->st_nlink);
	f->entry.kind = FILE_KIND__REG;
	f->entry.has_size = true;
	f->entry.size = st->st_size;
	snprintf(f->path, sizeof(f->path), "%s", link);
	f->entry.path = f->path;
	return 0;
}

static int is_memfd(struct dump_ctx *ctx, int fd, int local_fd, const char *link, bool *memfd)
{
	struct statfs sfs;

	*memfd = false;
	if (strncmp(link, MEMFD_PREFIX, strlen(MEMFD_PREFIX)))
		return 0;
	if (fstatfs(local_fd, &sfs))
		return err_errno("cannot statfs fd %d of pid %d (%s)", fd, ctx->pid, link);
	if (sfs.f_type == HUGETLBFS_MAGIC)
		return err_set("fd %d of pid %d is a hugetlb memfd (%s): not supported yet", fd,
			       ctx->pid, link);
	*memfd = sfs.f_type == TMPFS_MAGIC;
	return 0;
}

static int new_ghost(struct dump_ctx *ctx, struct dump_ghost *g, int fd, const char *link,
		     bool memfd)
{
	size_t len = strlen(link) - strlen(DELETED);

	if (!memfd) {
		snprintf(g->path, sizeof(g->path), "%.*s", (int)len, link);
		return 0;
	}
	len -= strlen(MEMFD_PREFIX);
	snprintf(g->path, sizeof(g->path), "%.*s", (int)len, link + strlen(MEMFD_PREFIX));
	int seals = fcntl(g->src_fd, F_GET_SEALS);
	if (seals < 0)
		return err_errno("cannot read the seals of memfd fd %d of pid %d (%s)", fd,
				 ctx->pid, link);
	g->e.has_seals = true;
	g->e.seals = seals;
	return 0;
}

static bool ghost_recognise(const struct fd_probe *p)
{
	return S_ISREG(p->st->st_mode) && !(p->flags & O_PATH) && strstr(p->link, DELETED);
}

/* A descriptor cryo can read the contents from and seek in (SEEK_DATA): a
 * read-only reopening of the duplicate, a description of its own, so that
 * the target's offset never moves. */
static int readable_fd(const struct dump_ghost *g, bool *owned)
{
	char proc[64];
	int fd;

	*owned = false;
	snprintf(proc, sizeof(proc), "/proc/self/fd/%d", g->src_fd);
	fd = open(proc, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0)
		return err_errno("cannot reopen %s for reading", g->path);
	*owned = true;
	return fd;
}

/* Adds the run [off, off + len) to g's runs of data. */
static int add_extent(struct dump_ghost *g, uint64_t off, uint64_t len)
{
	GhostExtent *grown;

	if (g->e.n_extents >= MAX_EXTENTS)
		return err_set("%s has more than %u runs of data: not supported", g->path,
			       MAX_EXTENTS);
	grown = realloc(g->ext, (g->e.n_extents + 1) * sizeof(*grown));
	if (!grown)
		return err_set("out of memory");
	g->ext = grown;
	ghost_extent__init(&g->ext[g->e.n_extents]);
	g->ext[g->e.n_extents].off = off;
	g->ext[g->e.n_extents].len = len;
	g->e.n_extents++;
	g->data_len += len;
	return 0;
}

/* The runs of data of the file (SEEK_DATA, SEEK_HOLE on a description of
 * cryo's own): holes are not saved, and stay holes. */
static int find_extents(struct dump_ghost *g)
{
	bool owned;
	int fd = readable_fd(g, &owned), ret = 0;
	off_t off = 0, end;

	if (fd < 0)
		return -1;
	g->e.has_sparse = g->e.sparse = true;
	while (!ret && (uint64_t)off < g->e.size) {
		off = lseek(fd, off, SEEK_DATA);
		if (off < 0) {
			if (errno != ENXIO) /* ENXIO: only holes from there */
				ret = err_errno("cannot find the data of %s", g->path);
			break;
		}
		end = lseek(fd, off, SEEK_HOLE);
		if (end < 0 || end <= off)
			ret = err_errno("cannot find the holes of %s", g->path);
		else if ((uint64_t)end > g->e.size)
			end = g->e.size;
		if (!ret)
			ret = add_extent(g, off, end - off);
		off = end;
	}
	if (owned)
		close(fd);
	return ret;
}

/* Within --ghost-limit: the data it has, not its size, is what is saved. */
static int check_limit(struct dump_ctx *ctx, const struct dump_ghost *g, int fd, bool memfd)
{
	uint64_t limit = ctx->opts->ghost_limit ? ctx->opts->ghost_limit : GHOST_LIMIT;

	if (g->data_len <= limit)
		return 0;
	return err_set("fd %d of pid %d is %s %s with %llu bytes of data: more than the "
		       "--ghost-limit of %llu bytes",
		       fd, ctx->pid, memfd ? "memfd" : "deleted file", g->path,
		       (unsigned long long)g->data_len, (unsigned long long)limit);
}

static int dump_deleted(struct dump_ctx *ctx, struct dump_file *f, int fd, const struct stat *st,
			const char *link)
{
	struct dump_ghost *g;
	bool memfd;

	if (st->st_nlink > 0)
		return still_linked(ctx, f, fd, st, link);
	if (!ends_with(link, DELETED) || is_memfd(ctx, fd, f->local_fd, link, &memfd))
		return err_set("fd %d of pid %d is an unlinked file without a path (%s): not "
			       "supported yet",
			       fd, ctx->pid, link);
	g = find_ghost(ctx, st);
	if (!g && (!(g = add_ghost(ctx, f, st)) || new_ghost(ctx, g, fd, link, memfd) ||
		   find_extents(g) || check_limit(ctx, g, fd, memfd)))
		return -1;
	f->entry.kind = memfd ? FILE_KIND__MEMFD : FILE_KIND__GHOST;
	f->entry.has_ghost_id = true;
	f->entry.ghost_id = g->e.id;
	snprintf(f->path, sizeof(f->path), "%s", link);
	f->entry.path = f->path;
	return 0;
}

static int ghost_dump(struct dump_ctx *ctx, struct dump_file *f, const struct fd_probe *p)
{
	return dump_deleted(ctx, f, p->fd, p->st, p->link);
}

static bool opath_recognise(const struct fd_probe *p)
{
	return p->flags & O_PATH;
}

static int opath_dump(struct dump_ctx *ctx, struct dump_file *f, const struct fd_probe *p)
{
	const struct stat *st = p->st;
	const char *link = p->link;
	int fd = p->fd;
	struct stat now;
	int r;

	if (S_ISREG(st->st_mode) && st->st_nlink == 0 && ends_with(link, DELETED))
		return dump_deleted(ctx, f, fd, st, link);
	r = link[0] == '/' ? lstat(link, &now) : -1;
	if (!r && S_ISLNK(now.st_mode) && !S_ISLNK(st->st_mode))
		r = stat(link, &now);
	if (r || now.st_dev != st->st_dev || now.st_ino != st->st_ino)
		return err_set("fd %d of pid %d is an O_PATH descriptor of %s, which its path no "
			       "longer names: not supported yet",
			       fd, ctx->pid, link);
	f->entry.kind = FILE_KIND__OPATH;
	snprintf(f->path, sizeof(f->path), "%s", link);
	f->entry.path = f->path;
	return 0;
}

/* The run [off, off + len) of the file, read from fd into the image. */
static int copy_run(struct dump_ghost *g, int fd, uint64_t off, uint64_t len, struct img_out *out,
		    unsigned char *buf)
{
	int ret = 0;

	for (uint64_t done = 0; done < len && !ret;) {
		size_t want = len - done > COPY_CHUNK ? COPY_CHUNK : len - done;
		ssize_t n = pread(fd, buf, want, off + done);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			ret = n < 0 ? err_errno("cannot read the contents of %s", g->path)
				    : err_set("%s shrank while it was dumped", g->path);
		else
			ret = img_out_raw(out, buf, n);
		done += n > 0 ? n : 0;
	}
	return ret;
}

static int copy_contents(struct dump_ghost *g, struct img_out *out, unsigned char *buf)
{
	bool owned;
	int fd = readable_fd(g, &owned), ret = 0;

	if (fd < 0)
		return -1;
	for (size_t i = 0; i < g->e.n_extents && !ret; i++)
		ret = copy_run(g, fd, g->ext[i].off, g->ext[i].len, out, buf);
	if (owned)
		close(fd);
	return ret;
}

static int write_data(struct dump_tree *tree)
{
	struct img_out out;
	uint64_t off = IMG_HEADER_SIZE;
	unsigned char *buf = malloc(COPY_CHUNK);

	if (!buf)
		return err_set("out of memory");
	if (image_out_open(&tree->dir, &out, IMAGE_GHOST_DATA, 0)) {
		free(buf);
		return -1;
	}
	for (int i = 0; i < tree->ghosts->nr; i++) {
		tree->ghosts->v[i].e.data_off = off;
		off += tree->ghosts->v[i].data_len;
		if (copy_contents(&tree->ghosts->v[i], &out, buf))
			goto fail;
	}
	free(buf);
	if (img_out_close(&out))
		goto fail_closed;
	return 0;
fail:
	free(buf);
fail_closed:
	img_out_discard(&out);
	return -1;
}

/* ghost-files.img and ghost-data.img, once every process was seen. */
static int ghost_dump_finish(struct dump_tree *tree)
{
	if (!tree->ghosts)
		return 0;
	for (int i = 0; i < tree->ghosts->nr; i++) {
		struct dump_ghost *g = &tree->ghosts->v[i];
		g->e.extents = calloc(g->e.n_extents + 1, sizeof(*g->e.extents));
		if (!g->e.extents)
			return err_set("out of memory");
		for (size_t k = 0; k < g->e.n_extents; k++)
			g->e.extents[k] = &g->ext[k];
		if (g->e.has_seals)
			g->e.memfd_name = g->path;
		else
			g->e.path = g->path;
	}
	return write_data(tree) ||
	       image_write_array(&tree->dir, IMAGE_GHOST, 0, NULL, &tree->ghosts->v[0].e,
				 tree->ghosts->nr, sizeof(*tree->ghosts->v));
}

static void ghost_dump_free(struct dump_tree *tree)
{
	for (int i = 0; tree->ghosts && i < tree->ghosts->nr; i++) {
		free(tree->ghosts->v[i].ext);
		free(tree->ghosts->v[i].e.extents);
	}
	if (tree->ghosts)
		free(tree->ghosts->v);
	free(tree->ghosts);
	tree->ghosts = NULL;
}

/* ---- restore: validation, in cryo ---- */

static const GhostEntry *ghost_by_id(const struct restore_tree *tree, uint32_t id)
{
	for (size_t i = 0; tree->ghosts && i < tree->ghosts->nr; i++)
		if (tree->ghosts->v[i]->id == id)
			return tree->ghosts->v[i];
	return NULL;
}

/* Maps ghost-data.img read-only and checks it against the inventory. */
static int map_data(struct restore_tree *tree)
{
	const struct img_name name = image_name(IMAGE_GHOST_DATA, 0);
	const ImageFile *f = img_dir_lookup(&tree->dir, name.s);
	uint64_t size;
	int fd = image_raw_open(&tree->dir, IMAGE_GHOST_DATA, 0, &size);
	void *p;

	if (fd < 0)
		return -1;
	p = mmap(NULL, size, PROT_READ, MAP_PRIVATE, fd, 0);
	close(fd);
	if (p == MAP_FAILED)
		return err_errno("cannot map image %s/%s", tree->dir.path, name.s);
	tree->ghosts->data = p;
	tree->ghosts->size = size;
	if (!f->has_xxh3 || img_hash(p, size) != f->xxh3)
		return err_set("image %s/%s is corrupted: checksum mismatch", tree->dir.path,
			       name.s);
	return 0;
}

static int check_dir(const char *path)
{
	char copy[4096];
	struct stat st;

	snprintf(copy, sizeof(copy), "%s", path);
	const char *dir = dirname(copy);
	if (stat(dir, &st))
		return err_errno("directory %s of the deleted file %s is not available", dir, path);
	if (!S_ISDIR(st.st_mode))
		return err_set("%s (where the deleted file %s was) is not a directory", dir, path);
	return 0;
}

/* The bytes of data g has in ghost-data.img: its runs, in order, apart and
 * within its size, or all of it if not sparse; -1 if they are not. */
static int64_t data_len(const GhostEntry *g)
{
	uint64_t len = 0, at = 0;

	if (!g->sparse)
		return g->n_extents ? -1 : (int64_t)g->size;
	for (size_t i = 0; i < g->n_extents; i++) {
		const GhostExtent *x = g->extents[i];
		if (x->off < at || !x->len || x->len > g->size || x->off > g->size - x->len)
			return -1;
		at = x->off + x->len;
		len += x->len;
	}
	return len;
}

static int check_ghost(const struct ghost_restore *gr, const GhostEntry *g)
{
	bool memfd = g->memfd_name != NULL;
	int64_t len = data_len(g);

	if (g->size > GHOST_MAX_SIZE || len < 0 || g->data_off < IMG_HEADER_SIZE ||
	    g->data_off > gr->size || (uint64_t)len > gr->size - g->data_off)
		return err_set("ghost-files.img: file %u has a bad size or offset (%llu bytes at "
			       "%llu)",
			       g->id, (unsigned long long)g->size, (unsigned long long)g->data_off);
	if (!S_ISREG(g->mode) || memfd == (g->path != NULL) || (memfd && !g->has_seals))
		return err_set("ghost-files.img: file %u is malformed", g->id);
	if (memfd && strlen(g->memfd_name) > MEMFD_NAME_MAX)
		return err_set("ghost-files.img: memfd name of file %u is too long", g->id);
	if (!memfd && g->path[0] != '/')
		return err_set("ghost-files.img: file %u has a relative path", g->id);
	return 0;
}

/* ghost-files.img and ghost-data.img, loaded and checked once for the tree. */
static int ghost_load(struct restore_tree *tree)
{
	struct ghost_restore *gr = tree->ghosts = calloc(1, sizeof(*tree->ghosts));

	if (!gr)
		return err_set("out of memory");
	if (!image_present(&tree->dir, IMAGE_GHOST, 0))
		return 0;
	if (image_load_list(&tree->dir, IMAGE_GHOST, 0, NULL, (void ***)&gr->v, &gr->nr) ||
	    map_data(tree))
		return -1;
	for (size_t i = 0; i < gr->nr; i++) {
		for (size_t j = 0; j < i; j++)
			if (gr->v[j]->id == gr->v[i]->id)
				return err_set("ghost-files.img: file %u appears twice",
					       gr->v[i]->id);
		if (check_ghost(gr, gr->v[i]))
			return -1;
	}
	return 0;
}

static int opath_validate(const struct restore_tree *tree, const FileEntry *fe,
			  const struct fd_use *use)
{
	struct stat st;
	int r;

	(void)tree;
	if (!fe->path || fe->path[0] != '/' || !fe->has_mode || !(fe->flags & O_PATH))
		return err_set("files.img: O_PATH file %u of pid %d is malformed", fe->id,
			       use->pid);
	r = S_ISLNK(fe->mode) ? lstat(fe->path, &st) : stat(fe->path, &st);
	if (r)
		return err_errno("file %s (an O_PATH descriptor of pid %d) is not available",
				 fe->path, use->pid);
	if ((st.st_mode & S_IFMT) != (fe->mode & S_IFMT))
		return err_set("%s (an O_PATH descriptor of pid %d) is no longer the same kind of "
			       "file",
			       fe->path, use->pid);
	return 0;
}

static int ghost_validate(const struct restore_tree *tree, const FileEntry *fe,
			  const struct fd_use *use)
{
	const GhostEntry *g = fe->has_ghost_id ? ghost_by_id(tree, fe->ghost_id) : NULL;

	if (!g)
		return err_set("files.img: file %u of pid %d refers to a missing record of "
			       "ghost-files.img",
			       fe->id, use->pid);
	if ((fe->kind == FILE_KIND__MEMFD) != (g->memfd_name != NULL))
		return err_set("files.img: file %u of pid %d is not the kind of its ghost record",
			       fe->id, use->pid);
	return g->memfd_name ? 0 : check_dir(g->path);
}

static bool same_inode(const FileEntry *a, const FileEntry *b)
{
	return a->has_ghost_id && b->has_ghost_id && a->ghost_id == b->ghost_id;
}

static void ghost_restore_free(struct restore_tree *tree)
{
	struct ghost_restore *gr = tree->ghosts;

	if (!gr)
		return;
	for (size_t i = 0; i < gr->nr; i++)
		protobuf_c_message_free_unpacked(&gr->v[i]->base, NULL);
	free(gr->v);
	if (gr->data)
		munmap((void *)gr->data, gr->size);
	free(gr);
	tree->ghosts = NULL;
}

/* ---- restore: in the new process ---- */

/* The len bytes at data, written to fd at off. */
static int write_run(int fd, const unsigned char *data, uint64_t off, uint64_t len,
		     const char *what)
{
	for (uint64_t done = 0; done < len;) {
		ssize_t n = pwrite(fd, data + done, len - done, off + done);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return err_errno("cannot write the contents of %s", what);
		done += n;
	}
	return 0;
}

/* The contents (only the runs of data of a sparse file: the rest stays
 * holes), size, owner, mode and times. */
static int fill_inode(const struct restore_ctx *ctx, const GhostEntry *g, int fd, const char *what)
{
	const unsigned char *data = ctx->tree->ghosts->data + g->data_off;
	struct timespec times[2] = {
	    {.tv_sec = g->atime_ns / 1000000000, .tv_nsec = g->atime_ns % 1000000000},
	    {.tv_sec = g->mtime_ns / 1000000000, .tv_nsec = g->mtime_ns % 1000000000},
	};

	if (!g->sparse) {
		if (write_run(fd, data, 0, g->size, what))
			return -1;
	}
	for (size_t i = 0; i < g->n_extents; i++) {
		if (write_run(fd, data, g->extents[i]->off, g->extents[i]->len, what))
			return -1;
		data += g->extents[i]->len;
	}
	if (ftruncate(fd, g->size))
		return err_errno("cannot set the size of %s", what);
	if (fchown(fd, g->uid, g->gid) || fchmod(fd, g->mode & 07777))
		return err_errno("cannot set the owner and mode of %s", what);
	if (futimens(fd, times))
		return err_errno("cannot set the times of %s", what);
	return 0;
}

static int make_memfd(const struct restore_ctx *ctx, const GhostEntry *g)
{
	unsigned flags = MFD_CLOEXEC | MFD_ALLOW_SEALING;
	int fd;

	flags |= (g->seals & F_SEAL_EXEC) && !(g->mode & 0111) ? MFD_NOEXEC_SEAL : MFD_EXEC;
	fd = memfd_create(g->memfd_name, flags);
	if (fd < 0 && errno == EINVAL) /* a kernel before 6.3 */
		fd = memfd_create(g->memfd_name, MFD_CLOEXEC | MFD_ALLOW_SEALING);
	if (fd < 0)
		return err_errno("cannot create memfd %s", g->memfd_name);
	if (fill_inode(ctx, g, fd, g->memfd_name)) {
		close(fd);
		return -1;
	}
	if (g->seals && fcntl(fd, F_ADD_SEALS, g->seals)) {
		close(fd);
		return err_errno("cannot seal memfd %s with %#x", g->memfd_name, g->seals);
	}
	return fd;
}

/* Without O_TMPFILE: a new file under a free name beside the old one. */
static int create_named(const GhostEntry *g, char *name, size_t len)
{
	int fd;

	snprintf(name, len, "%s", g->path);
	for (int i = 0; i < 100; i++) {
		fd = open(name, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC | O_NOCTTY, 0600);
		if (fd >= 0 || errno != EEXIST)
			break;
		snprintf(name, len, "%s.cryo-ghost-%d-%d", g->path, getpid(), i);
	}
	if (fd < 0)
		return err_errno("cannot recreate the deleted file %s", g->path);
	return fd;
}

/* The deleted file again: filled, and named (in `name`) if it has a name. */
static int make_deleted(const struct restore_ctx *ctx, const GhostEntry *g, char *name, size_t len)
{
	char dir[4096], proc[64];
	int fd;

	snprintf(dir, sizeof(dir), "%s", g->path);
	fd = open(dirname(dir), O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
	name[0] = '\0';
	if (fd < 0 && errno != EOPNOTSUPP && errno != EISDIR && errno != EINVAL)
		return err_errno("cannot recreate the deleted file %s", g->path);
	if (fd < 0 && (fd = create_named(g, name, len)) < 0)
		return -1;
	if (fill_inode(ctx, g, fd, g->path))
		goto fail;
	if (name[0])
		return fd;
	/* under its own name while its descriptions are opened, if that is free */
	snprintf(proc, sizeof(proc), "/proc/self/fd/%d", fd);
	if (!linkat(AT_FDCWD, proc, AT_FDCWD, g->path, AT_SYMLINK_FOLLOW))
		snprintf(name, len, "%s", g->path);
	return fd;
fail:
	if (name[0])
		unlink(name);
	close(fd);
	return -1;
}

static int stash(struct restore_ctx *ctx, uint32_t file_id, int fd)
{
	struct ghost_made *m = ctx->ghost_made;
	struct made_desc *grown = NULL;
	int tmp = fcntl(fd, F_DUPFD_CLOEXEC, ctx->stage_base);

	close(fd);
	if (!m)
		m = ctx->ghost_made = calloc(1, sizeof(*m));
	if (m)
		grown = realloc(m->v, (m->nr + 1) * sizeof(*grown));
	if (!grown || tmp < 0) {
		if (tmp >= 0)
			close(tmp);
		return grown ? err_errno("cannot move a description") : err_set("out of memory");
	}
	m->v = grown;
	m->v[m->nr].file_id = file_id;
	m->v[m->nr++].fd = tmp;
	return 0;
}

/* Opens one description of the inode held by ino_fd, through src. */
static int open_one(struct restore_ctx *ctx, const FileEntry *fe, const char *src, int ino_fd)
{
	struct stat a, b;
	int fd = open(src, (fe->flags & ~NOT_REOPEN) | O_NOCTTY | O_CLOEXEC);

	if (fd < 0)
		return err_errno("cannot open %s again", fe->path);
	if (fstat(fd, &a) || fstat(ino_fd, &b) || a.st_dev != b.st_dev || a.st_ino != b.st_ino) {
		close(fd);
		return err_set("%s: opened another file than the one recreated", fe->path);
	}
	if (!(fe->flags & O_PATH) && lseek(fd, fe->pos, SEEK_SET) < 0) {
		close(fd);
		return err_errno("cannot seek %s to %llu", fe->path, (unsigned long long)fe->pos);
	}
	return stash(ctx, fe->id, fd);
}

/* Makes the inode of ghost g and opens every description of it. */
static int make_ghost(struct restore_ctx *ctx, const GhostEntry *g)
{
	char name[4200], proc[64];
	int ino_fd, ret = 0;

	name[0] = '\0';
	ino_fd = g->memfd_name ? make_memfd(ctx, g) : make_deleted(ctx, g, name, sizeof(name));
	if (ino_fd < 0)
		return -1;
	snprintf(proc, sizeof(proc), "/proc/self/fd/%d", ino_fd);
	for (size_t i = 0; i < ctx->tree->nr_files && !ret; i++) {
		const FileEntry *fe = ctx->tree->files[i];
		if ((fe->kind == FILE_KIND__GHOST || fe->kind == FILE_KIND__MEMFD) &&
		    fe->ghost_id == g->id)
			ret = open_one(ctx, fe, name[0] ? name : proc, ino_fd);
	}
	if (name[0] && unlink(name) && !ret)
		ret = err_errno("cannot delete %s again", name);
	close(ino_fd);
	return ret;
}

static int take_made(struct restore_ctx *ctx, uint32_t file_id)
{
	for (size_t i = 0; ctx->ghost_made && i < ctx->ghost_made->nr; i++) {
		struct made_desc *m = &ctx->ghost_made->v[i];
		if (m->file_id == file_id && m->fd >= 0) {
			int fd = m->fd;
			m->fd = -1;
			return fd;
		}
	}
	return -1;
}

static int ghost_open(struct restore_ctx *ctx, const FileEntry *fe, int *fd)
{
	*fd = take_made(ctx, fe->id);
	if (*fd >= 0)
		return 0;
	if (make_ghost(ctx, ghost_by_id(ctx->tree, fe->ghost_id)))
		return -1;
	*fd = take_made(ctx, fe->id);
	if (*fd < 0)
		return err_set("%s: its description was not made", fe->path);
	return 0;
}

static int opath_open(struct restore_ctx *ctx, const FileEntry *fe, int *fd)
{
	(void)ctx;
	*fd = open(fe->path, (fe->flags & (O_PATH | O_NOFOLLOW | O_DIRECTORY)) | O_CLOEXEC);
	if (*fd < 0)
		return err_errno("cannot open %s with O_PATH", fe->path);
	return 0;
}

/* The new process no longer needs what it made ahead (its fds are closed
 * with the other temporaries). */
static void ghost_drop_made(struct restore_ctx *ctx)
{
	for (size_t i = 0; ctx->ghost_made && i < ctx->ghost_made->nr; i++)
		if (ctx->ghost_made->v[i].fd >= 0)
			close(ctx->ghost_made->v[i].fd);
	if (ctx->ghost_made)
		free(ctx->ghost_made->v);
	free(ctx->ghost_made);
	ctx->ghost_made = NULL;
}

const struct fd_kind ghost_kind = {
    .name = "deleted file",
    .kind = FILE_KIND__GHOST,
    .recognise = ghost_recognise,
    .dump = ghost_dump,
    .dump_finish = ghost_dump_finish,
    .dump_free = ghost_dump_free,
    .load = ghost_load,
    .validate = ghost_validate,
    .same_object = same_inode,
    .restore_free = ghost_restore_free,
    .open = ghost_open,
    .drop_made = ghost_drop_made,
};

const struct fd_kind memfd_kind = {
    .name = "memfd",
    .kind = FILE_KIND__MEMFD,
    .validate = ghost_validate,
    .same_object = same_inode,
    .open = ghost_open,
};

const struct fd_kind opath_kind = {
    .name = "O_PATH descriptor",
    .kind = FILE_KIND__OPATH,
    .recognise = opath_recognise,
    .dump = opath_dump,
    .validate = opath_validate,
    .open = opath_open,
};
