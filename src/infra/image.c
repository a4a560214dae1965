/*
 * Image I/O: headers, records, checksums and the atomic commit of a
 * checkpoint directory (see image.h for the format).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define XXH_INLINE_ALL
#include <xxhash.h>

#include "infra/image.h"
#include "infra/log.h"

#define OUT_BUF_SIZE (256 * 1024)
#define PART_SUFFIX  ".part"
#define REC_MAX_SIZE (64u << 20)

static const char *const kind_names[] = {
    [IMG_INVENTORY] = "inventory", [IMG_CORE] = "core",	      [IMG_MM] = "mm",
    [IMG_PAGEMAP] = "pagemap",	   [IMG_PAGES] = "pages",     [IMG_FILES] = "files",
    [IMG_FDINFO] = "fdinfo",	   [IMG_FS] = "fs",	      [IMG_PIPES] = "pipes",
    [IMG_STATS] = "stats",	   [IMG_GHOST] = "ghost",     [IMG_GHOST_DATA] = "ghost data",
    [IMG_LOCKS] = "locks",	   [IMG_SYSVSHM] = "sysvshm", [IMG_NETLOCK] = "netlock",
    [IMG_CGROUP] = "cgroup",	   [IMG_CHAIN] = "chain",
};

const char *img_kind_name(enum img_kind kind)
{
	if (kind < IMG_INVENTORY || kind >= sizeof(kind_names) / sizeof(kind_names[0]) ||
	    !kind_names[kind])
		return "unknown";
	return kind_names[kind];
}

uint64_t img_hash(const void *data, size_t len)
{
	return XXH3_64bits(data, len);
}

static int mkdir_p(const char *path)
{
	char buf[4096];
	size_t len = strlen(path);

	if (len >= sizeof(buf))
		return errno = ENAMETOOLONG, -1;
	memcpy(buf, path, len + 1);
	for (char *p = buf + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(buf, 0755) && errno != EEXIST)
			return -1;
		*p = '/';
	}
	if (mkdir(buf, 0755) && errno != EEXIST)
		return -1;
	return 0;
}

int img_dir_create(struct img_dir *d, const char *path, bool sync)
{
	memset(d, 0, sizeof(*d));
	d->path = path;
	d->sync = sync;
	d->dirfd = -1;
	if (mkdir_p(path))
		return err_errno("cannot create images directory %s", path);
	d->dirfd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (d->dirfd < 0)
		return err_errno("cannot open images directory %s", path);
	if (faccessat(d->dirfd, ".", W_OK, AT_EACCESS)) {
		int ret = err_errno("images directory %s is not writable", path);
		close(d->dirfd);
		d->dirfd = -1;
		return ret;
	}
	return 0;
}

static void part_name(char *buf, size_t len, const char *name)
{
	snprintf(buf, len, ".%s%s", name, PART_SUFFIX);
}

static void free_file_list(struct img_dir *d)
{
	free(d->files);
	d->files = NULL;
	d->nr_files = d->cap_files = 0;
}

void img_dir_abort(struct img_dir *d)
{
	char part[96];

	if (d->dirfd < 0)
		return;
	for (int i = 0; i < d->nr_files; i++) {
		part_name(part, sizeof(part), d->files[i].name);
		unlinkat(d->dirfd, part, 0);
	}
	close(d->dirfd);
	d->dirfd = -1;
	free_file_list(d);
}

static int write_all(int fd, const void *data, size_t len, const char *name)
{
	const unsigned char *p = data;

	while (len) {
		ssize_t n = write(fd, p, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return err_errno("cannot write image %s", name);
		p += n;
		len -= n;
	}
	return 0;
}

/* The inventory cannot list itself: it ends with the XXH3 of what precedes. */
static int append_own_checksum(struct img_out *o)
{
	uint64_t h = XXH3_64bits_digest(o->hash_state);

	return img_out_raw(o, &h, sizeof(h));
}

static int check_own_checksum(struct img_in *in, const char *dirpath)
{
	uint64_t want;

	if (in->size < IMG_HEADER_SIZE + sizeof(want))
		return err_set("image %s/inventory.img is truncated (%zu bytes)", dirpath,
			       in->size);
	in->size -= sizeof(want);
	memcpy(&want, in->data + in->size, sizeof(want));
	in->own_xxh3 = want;
	if (XXH3_64bits(in->data, in->size) != want)
		return err_set("image %s/inventory.img is truncated or corrupted (checksum "
			       "mismatch)",
			       dirpath);
	return 0;
}

/* Images are made durable together, at commit, not one by one as they are
 * closed: most are written while the tree is frozen, and a sync there would
 * keep it frozen for the disk's latency once per image. */
static int sync_images(struct img_dir *d, int from)
{
	char part[96];
	int fd, ret = 0;

	for (int i = from; i < d->nr_files && !ret; i++) {
		if (!d->files[i].unsynced)
			continue;
		part_name(part, sizeof(part), d->files[i].name);
		fd = openat(d->dirfd, part, O_RDONLY | O_CLOEXEC);
		if (fd < 0 || fdatasync(fd))
			ret = err_errno("cannot sync image %s/%s", d->path, d->files[i].name);
		if (fd >= 0)
			close(fd);
		d->files[i].unsynced = false;
	}
	return ret;
}

static int write_inventory(struct img_dir *d, InventoryEntry *inv)
{
	struct img_out o;
	ImageFile *recs = calloc(d->nr_files, sizeof(*recs));
	ImageFile **ptrs = calloc(d->nr_files, sizeof(*ptrs));
	int ret = -1;

	if (!recs || !ptrs) {
		err_set("out of memory writing inventory");
		goto out;
	}
	for (int i = 0; i < d->nr_files; i++) {
		image_file__init(&recs[i]);
		recs[i].name = d->files[i].name;
		recs[i].size = d->files[i].size;
		recs[i].has_xxh3 = d->files[i].has_xxh3;
		recs[i].xxh3 = d->files[i].xxh3;
		ptrs[i] = &recs[i];
	}
	inv->n_files = d->nr_files;
	inv->files = ptrs;
	if (img_out_open(d, &o, "inventory.img", IMG_INVENTORY))
		goto out;
	if (img_out_msg(&o, &inv->base) || append_own_checksum(&o) || img_out_close(&o))
		img_out_discard(&o);
	else
		ret = sync_images(d, d->nr_files - 1);
	d->nr_files--; /* the inventory does not list itself */
out:
	inv->n_files = 0;
	inv->files = NULL;
	free(recs);
	free(ptrs);
	return ret;
}

static int rename_into_place(struct img_dir *d, const char *name)
{
	char part[96];

	part_name(part, sizeof(part), name);
	if (renameat(d->dirfd, part, d->dirfd, name))
		return err_errno("cannot commit image %s/%s", d->path, name);
	return 0;
}

static int sync_dir(struct img_dir *d)
{
	if (d->sync && fsync(d->dirfd))
		return err_errno("cannot sync images directory %s", d->path);
	return 0;
}

/*
 * Commit: make every image durable, then drop any older inventory (an older
 * checkpoint in the same directory becomes incomplete rather than a mix of
 * two), move every image into place, then write the inventory. Only a directory whose inventory
 * exists is a checkpoint.
 */
int img_dir_commit(struct img_dir *d, InventoryEntry *inv)
{
	if (sync_images(d, 0))
		return -1;
	if (unlinkat(d->dirfd, "inventory.img", 0) && errno != ENOENT)
		return err_errno("cannot replace %s/inventory.img", d->path);
	for (int i = 0; i < d->nr_files; i++)
		if (rename_into_place(d, d->files[i].name))
			return -1;
	if (sync_dir(d) || write_inventory(d, inv))
		return -1;
	if (rename_into_place(d, "inventory.img"))
		return -1;
	return sync_dir(d);
}

int img_out_open(struct img_dir *d, struct img_out *o, const char *name, enum img_kind kind)
{
	uint32_t hdr[4] = {IMG_MAGIC, kind, IMG_VERSION, 0};
	char part[96];

	memset(o, 0, sizeof(*o));
	o->fd = -1;
	if (d->nr_files >= IMG_MAX_FILES)
		return err_set("too many image files in one checkpoint");
	if (d->nr_files == d->cap_files) {
		int cap = d->cap_files ? 2 * d->cap_files : 64;
		struct img_file_rec *grown = realloc(d->files, cap * sizeof(*grown));
		if (!grown)
			return err_set("out of memory opening image %s", name);
		d->files = grown;
		d->cap_files = cap;
	}
	memset(&d->files[d->nr_files], 0, sizeof(d->files[0]));
	o->dir = d;
	snprintf(o->name, sizeof(o->name), "%s", name);
	part_name(part, sizeof(part), name);
	o->fd = openat(d->dirfd, part, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (o->fd < 0)
		return err_errno("cannot create image %s/%s", d->path, name);
	snprintf(d->files[d->nr_files].name, sizeof(d->files[0].name), "%s", name);
	d->nr_files++;
	o->hashed = kind != IMG_PAGES;
	if (o->hashed) {
		o->hash_state = XXH3_createState();
		o->buf = malloc(OUT_BUF_SIZE);
		if (!o->hash_state || !o->buf)
			return err_set("out of memory opening image %s", name);
		XXH3_64bits_reset(o->hash_state);
	}
	if (img_out_raw(o, hdr, sizeof(hdr)))
		return -1;
	if (kind == IMG_PAGES) {
		static const char zeros[IMG_PAGES_DATA_OFF - IMG_HEADER_SIZE];
		return img_out_raw(o, zeros, sizeof(zeros));
	}
	return 0;
}

static int out_flush(struct img_out *o)
{
	if (!o->buf_len)
		return 0;
	if (write_all(o->fd, o->buf, o->buf_len, o->name))
		return -1;
	o->buf_len = 0;
	return 0;
}

int img_out_raw(struct img_out *o, const void *data, size_t len)
{
	if (o->hashed)
		XXH3_64bits_update(o->hash_state, data, len);
	o->size += len;
	if (!o->buf)
		return write_all(o->fd, data, len, o->name);
	if (o->buf_len + len > OUT_BUF_SIZE && out_flush(o))
		return -1;
	if (len >= OUT_BUF_SIZE)
		return write_all(o->fd, data, len, o->name);
	memcpy(o->buf + o->buf_len, data, len);
	o->buf_len += len;
	return 0;
}

int img_out_msg(struct img_out *o, const ProtobufCMessage *msg)
{
	size_t len = protobuf_c_message_get_packed_size(msg);
	uint32_t hdr = len;
	unsigned char stack_buf[4096], *buf = stack_buf;
	int ret;

	if (len > REC_MAX_SIZE)
		return err_set("record of %zu bytes too large for image %s", len, o->name);
	if (len > sizeof(stack_buf) && !(buf = malloc(len)))
		return err_set("out of memory writing image %s", o->name);
	protobuf_c_message_pack(msg, buf);
	ret = img_out_raw(o, &hdr, sizeof(hdr));
	if (!ret)
		ret = img_out_raw(o, buf, len);
	if (buf != stack_buf)
		free(buf);
	return ret;
}

static void out_release(struct img_out *o)
{
	if (o->fd >= 0)
		close(o->fd);
	o->fd = -1;
	free(o->buf);
	o->buf = NULL;
	if (o->hash_state)
		XXH3_freeState(o->hash_state);
	o->hash_state = NULL;
}

int img_out_close(struct img_out *o)
{
	struct img_file_rec *rec = NULL;
	int ret = 0;

	/* the image being closed is nearly always the last one opened */
	for (int i = o->dir->nr_files - 1; i >= 0 && !rec; i--)
		if (!strcmp(o->dir->files[i].name, o->name))
			rec = &o->dir->files[i];
	if (o->fd < 0 || !rec)
		return err_set("image %s closed twice", o->name);
	if (out_flush(o))
		ret = -1;
	rec->unsynced = o->dir->sync;
	rec->size = o->size;
	rec->has_xxh3 = o->hashed;
	if (o->hashed)
		rec->xxh3 = XXH3_64bits_digest(o->hash_state);
	out_release(o);
	return ret;
}

void img_out_discard(struct img_out *o)
{
	out_release(o);
}

int img_write_array(struct img_dir *d, const char *name, enum img_kind kind,
		    const ProtobufCMessage *head, const void *first, size_t n, size_t stride)
{
	struct img_out out;

	if (img_out_open(d, &out, name, kind))
		return -1;
	if (head && img_out_msg(&out, head))
		goto fail;
	for (size_t i = 0; i < n; i++)
		if (img_out_msg(&out, (const ProtobufCMessage *)((const char *)first + i * stride)))
			goto fail;
	if (img_out_close(&out))
		goto fail;
	return 0;
fail:
	img_out_discard(&out);
	return -1;
}

struct img_name img_name_pid(const char *fmt, int pid)
{
	struct img_name n;

	snprintf(n.s, sizeof(n.s), fmt, pid);
	return n;
}

/* ---- reading ---- */

static int check_header(const unsigned char *p, size_t size, const char *name, enum img_kind kind)
{
	uint32_t hdr[4];

	if (size < IMG_HEADER_SIZE)
		return err_set("image %s is truncated (%zu bytes, no header)", name, size);
	memcpy(hdr, p, sizeof(hdr));
	if (hdr[0] != IMG_MAGIC)
		return err_set("image %s is not a cryo image (bad magic 0x%08x)", name, hdr[0]);
	if (hdr[2] != IMG_VERSION)
		return err_set("image %s has format version %u; this cryo reads version %u", name,
			       hdr[2], IMG_VERSION);
	if (hdr[1] != kind)
		return err_set("image %s holds %s records, expected %s", name,
			       img_kind_name(hdr[1]), img_kind_name(kind));
	return 0;
}

static int read_file(int dirfd, const char *dirpath, const char *name, unsigned char **data,
		     size_t *size)
{
	struct stat st;
	int fd = openat(dirfd, name, O_RDONLY | O_CLOEXEC);
	int ret = -1;

	*data = NULL;
	if (fd < 0)
		return err_errno("cannot open image %s/%s", dirpath, name);
	if (fstat(fd, &st)) {
		err_errno("cannot stat image %s/%s", dirpath, name);
		goto out;
	}
	*size = st.st_size;
	*data = malloc(*size ? *size : 1);
	if (!*data) {
		err_set("out of memory reading image %s", name);
		goto out;
	}
	for (size_t done = 0; done < *size;) {
		ssize_t n = pread(fd, *data + done, *size - done, done);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			err_errno("cannot read image %s/%s", dirpath, name);
			goto out;
		}
		done += n;
	}
	ret = 0;
out:
	if (ret) {
		free(*data);
		*data = NULL;
	}
	close(fd);
	return ret;
}

static int load_inventory(struct img_dir *d)
{
	struct img_in in = {.pos = IMG_HEADER_SIZE};
	ProtobufCMessage *msg = NULL;

	snprintf(in.name, sizeof(in.name), "inventory.img");
	if (faccessat(d->dirfd, "inventory.img", F_OK, 0))
		return err_set("%s is not a complete checkpoint: inventory.img is missing",
			       d->path);
	if (read_file(d->dirfd, d->path, "inventory.img", &in.data, &in.size))
		return -1;
	if (check_header(in.data, in.size, "inventory.img", IMG_INVENTORY)) {
		img_in_free(&in);
		return err_wrap("%s", d->path);
	}
	if (check_own_checksum(&in, d->path)) {
		img_in_free(&in);
		return -1;
	}
	if (img_in_msg(&in, &inventory_entry__descriptor, &msg) != 1) {
		img_in_free(&in);
		return msg ? -1 : err_wrap("%s/inventory.img", d->path);
	}
	img_in_free(&in);
	d->inventory = (InventoryEntry *)msg;
	d->inventory_xxh3 = in.own_xxh3;
	if (d->inventory->format_version != IMG_VERSION)
		return err_set("checkpoint %s has format version %u; this cryo reads version %u",
			       d->path, d->inventory->format_version, IMG_VERSION);
	return 0;
}

int img_dir_open(struct img_dir *d, const char *path)
{
	struct stat st;

	memset(d, 0, sizeof(*d));
	d->path = path;
	d->dirfd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (d->dirfd < 0)
		return err_errno("cannot open images directory %s", path);
	if (fstat(d->dirfd, &st))
		return err_errno("cannot stat images directory %s", path);
	return load_inventory(d);
}

void img_dir_close(struct img_dir *d)
{
	if (d->inventory)
		inventory_entry__free_unpacked(d->inventory, NULL);
	d->inventory = NULL;
	if (d->dirfd >= 0)
		close(d->dirfd);
	d->dirfd = -1;
	free_file_list(d);
}

const ImageFile *img_dir_lookup(const struct img_dir *d, const char *name)
{
	for (size_t i = 0; d->inventory && i < d->inventory->n_files; i++)
		if (!strcmp(d->inventory->files[i]->name, name))
			return d->inventory->files[i];
	return NULL;
}

static int check_listed(const ImageFile *f, const char *path, const char *name, uint64_t size)
{
	if (!f)
		return err_set("checkpoint %s is inconsistent: %s is not in its inventory", path,
			       name);
	if (f->size != size)
		return err_set("image %s/%s is %s: %llu bytes, the inventory says %llu", path, name,
			       size < f->size ? "truncated" : "corrupted (too long)",
			       (unsigned long long)size, (unsigned long long)f->size);
	return 0;
}

/* Reads name into in and checks it against its inventory entry f, if any. */
static int load_checked(struct img_dir *d, struct img_in *in, const char *name, enum img_kind kind,
			const ImageFile *f)
{
	memset(in, 0, sizeof(*in));
	snprintf(in->name, sizeof(in->name), "%s", name);
	if (read_file(d->dirfd, d->path, name, &in->data, &in->size))
		return -1;
	if (f && check_listed(f, d->path, name, in->size))
		goto fail;
	if (f && f->has_xxh3 && img_hash(in->data, in->size) != f->xxh3) {
		err_set("image %s/%s is corrupted: checksum mismatch", d->path, name);
		goto fail;
	}
	if (check_header(in->data, in->size, name, kind))
		goto fail;
	in->pos = IMG_HEADER_SIZE;
	return 0;
fail:
	img_in_free(in);
	return -1;
}

int img_in_load(struct img_dir *d, struct img_in *in, const char *name, enum img_kind kind)
{
	const ImageFile *f = img_dir_lookup(d, name);

	memset(in, 0, sizeof(*in));
	if (!f)
		return check_listed(f, d->path, name, 0);
	return load_checked(d, in, name, kind, f);
}

int img_in_load_unlisted(struct img_dir *d, struct img_in *in, const char *name, enum img_kind kind)
{
	memset(in, 0, sizeof(*in));
	if (faccessat(d->dirfd, name, F_OK, 0) && errno == ENOENT)
		return 1;
	return load_checked(d, in, name, kind, NULL);
}

int img_in_msg(struct img_in *in, const ProtobufCMessageDescriptor *desc, ProtobufCMessage **msg)
{
	uint32_t len;

	*msg = NULL;
	if (in->pos == in->size)
		return 0;
	if (in->size - in->pos < sizeof(len))
		return err_set("image %s is truncated at offset %zu", in->name, in->pos);
	memcpy(&len, in->data + in->pos, sizeof(len));
	in->pos += sizeof(len);
	if (len > in->size - in->pos)
		return err_set("image %s is truncated: record of %u bytes at offset %zu", in->name,
			       len, in->pos - sizeof(len));
	*msg = protobuf_c_message_unpack(desc, NULL, len, in->data + in->pos);
	if (!*msg)
		return err_set("image %s is corrupted: bad %s record at offset %zu", in->name,
			       desc->short_name, in->pos - sizeof(len));
	in->pos += len;
	return 1;
}

void img_in_free(struct img_in *in)
{
	free(in->data);
	in->data = NULL;
}

int img_raw_open(struct img_dir *d, const char *name, enum img_kind kind, uint64_t *size)
{
	unsigned char hdr[IMG_HEADER_SIZE];
	const ImageFile *f = img_dir_lookup(d, name);
	struct stat st;
	int fd;

	if (!f)
		return check_listed(f, d->path, name, 0);
	fd = openat(d->dirfd, name, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return err_errno("cannot open image %s/%s", d->path, name);
	if (fstat(fd, &st) || pread(fd, hdr, sizeof(hdr), 0) != (ssize_t)sizeof(hdr)) {
		close(fd);
		return err_set("image %s/%s is truncated", d->path, name);
	}
	if (check_listed(f, d->path, name, st.st_size) ||
	    check_header(hdr, sizeof(hdr), name, kind)) {
		close(fd);
		return -1;
	}
	*size = st.st_size;
	return fd;
}

int img_load_list(struct img_dir *d, const char *name, enum img_kind kind,
		  const ProtobufCMessageDescriptor *head_desc, ProtobufCMessage **head,
		  const ProtobufCMessageDescriptor *desc, void ***out, size_t *n)
{
	struct img_in in;
	ProtobufCMessage *msg;
	int r = 1;

	*n = 0;
	*out = NULL;
	if (img_in_load(d, &in, name, kind))
		return -1;
	if (head_desc) {
		r = img_in_msg(&in, head_desc, &msg);
		if (r == 0)
			r = err_set("image %s/%s is empty", d->path, name);
		else if (r == 1 && head)
			*head = msg;
		else if (r == 1)
			protobuf_c_message_free_unpacked(msg, NULL);
	}
	while (r == 1 && (r = img_in_msg(&in, desc, &msg)) == 1) {
		void **grown = realloc(*out, (*n + 1) * sizeof(void *));
		if (!grown) {
			protobuf_c_message_free_unpacked(msg, NULL);
			r = err_set("out of memory");
			break;
		}
		*out = grown;
		(*out)[(*n)++] = msg;
	}
	img_in_free(&in);
	return r < 0 ? -1 : 0;
}
