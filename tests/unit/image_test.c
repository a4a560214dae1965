/*
 * Unit test of the image layer (src/infra/image.c): protobuf records and raw
 * page data written, committed and read back; the header's magic, kind and
 * version checks; the inventory's size and XXH3 checks (truncated, extended
 * and flipped-byte files refused); incomplete and replaced checkpoints;
 * abort. Prints `unit: check NAME ok` or `unit: FAIL NAME: detail` per check
 * and exits non-zero if any failed. Built by `make unit` into build/unit/.
 */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "infra/image.h"
#include "infra/log.h"

#include "fs.pb-c.h"
#include "inventory.pb-c.h"
#include "pipes.pb-c.h"

static char base[] = "/tmp/cryo-unit-image-XXXXXX";
static int failures;
static char fail_msg[1024];

/* Records why the current check failed; returns -1. */
static int fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int fail(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(fail_msg, sizeof(fail_msg), fmt, ap);
	va_end(ap);
	return -1;
}

#define CHECK(cond, ...)                                                                           \
	do {                                                                                       \
		if (!(cond))                                                                       \
			return fail(__VA_ARGS__);                                                  \
	} while (0)

/* The recorded error must mention `what`. */
static int expect_error(const char *what)
{
	if (!err_pending())
		return fail("no error recorded (expected one about \"%s\")", what);
	if (!strstr(err_text(), what))
		return fail("error \"%s\" does not mention \"%s\"", err_text(), what);
	err_clear();
	return 0;
}

static void path_of(char *buf, size_t len, const char *dir, const char *name)
{
	snprintf(buf, len, "%s/%s%s%s", base, dir, name ? "/" : "", name ? name : "");
}

/* ---- building checkpoints ---- */

static void inventory_init(InventoryEntry *inv)
{
	inventory_entry__init(inv);
	inv->format_version = IMG_VERSION;
	inv->cryo_version = "unit";
	inv->root_pid = 4242;
	inv->kernel_release = "unit-kernel";
	inv->dump_time_unix_ns = 1;
	inv->xcr0 = 7;
	inv->xsave_size = 832;
}

static int write_fs_image(struct img_dir *d, const char *name, int nr)
{
	struct img_out o;

	if (img_out_open(d, &o, name, IMG_FS))
		return fail("img_out_open %s: %s", name, err_text());
	for (int i = 0; i < nr; i++) {
		FsEntry fs = FS_ENTRY__INIT;
		char cwd[64];

		snprintf(cwd, sizeof(cwd), "/cwd/%d", i);
		fs.cwd = cwd;
		fs.root = "/";
		fs.umask = 022 + i;
		if (img_out_msg(&o, &fs.base)) {
			img_out_discard(&o);
			return fail("img_out_msg %s: %s", name, err_text());
		}
	}
	if (img_out_close(&o))
		return fail("img_out_close %s: %s", name, err_text());
	return 0;
}

/* A pipe record larger than the 256 KiB output buffer and the 4 KiB stack buffer. */
#define BIG_LEN (300 * 1024 + 7)

static unsigned char *big_data(void)
{
	unsigned char *p = malloc(BIG_LEN);

	for (size_t i = 0; p && i < BIG_LEN; i++)
		p[i] = (unsigned char)(i * 31 + 7);
	return p;
}

static int write_pipes_image(struct img_dir *d, const char *name)
{
	struct img_out o;
	PipeEntry small = PIPE_ENTRY__INIT, big = PIPE_ENTRY__INIT;
	unsigned char *data = big_data();
	int ret = 0;

	if (!data)
		return fail("out of memory");
	small.pipe_ino = 1;
	small.capacity = 4096;
	small.data.len = 5;
	small.data.data = (unsigned char *)"hello";
	big.pipe_ino = 2;
	big.capacity = 1 << 20;
	big.data.len = BIG_LEN;
	big.data.data = data;
	if (img_out_open(d, &o, name, IMG_PIPES))
		ret = fail("img_out_open %s: %s", name, err_text());
	else if (img_out_msg(&o, &small.base) || img_out_msg(&o, &big.base) ||
		 img_out_msg(&o, &small.base)) {
		img_out_discard(&o);
		ret = fail("img_out_msg %s: %s", name, err_text());
	} else if (img_out_close(&o))
		ret = fail("img_out_close %s: %s", name, err_text());
	free(data);
	return ret;
}

static int write_pages_image(struct img_dir *d, const char *name, int nr_pages)
{
	struct img_out o;
	unsigned char page[4096];

	if (img_out_open(d, &o, name, IMG_PAGES))
		return fail("img_out_open %s: %s", name, err_text());
	for (int i = 0; i < nr_pages; i++) {
		memset(page, 0xa0 + i, sizeof(page));
		if (img_out_raw(&o, page, sizeof(page))) {
			img_out_discard(&o);
			return fail("img_out_raw %s: %s", name, err_text());
		}
	}
	if (img_out_close(&o))
		return fail("img_out_close %s: %s", name, err_text());
	return 0;
}

/* A committed checkpoint in base/dir: fs-1.img (3 records), pipes.img, pages-1.img (2 pages). */
static int make_checkpoint(const char *dir)
{
	struct img_dir d;
	InventoryEntry inv;
	char path[512];

	path_of(path, sizeof(path), dir, NULL);
	if (img_dir_create(&d, path, false))
		return fail("img_dir_create %s: %s", path, err_text());
	if (write_fs_image(&d, "fs-1.img", 3) || write_pipes_image(&d, "pipes.img") ||
	    write_pages_image(&d, "pages-1.img", 2)) {
		img_dir_abort(&d);
		return -1;
	}
	inventory_init(&inv);
	if (img_dir_commit(&d, &inv)) {
		img_dir_abort(&d);
		return fail("img_dir_commit %s: %s", path, err_text());
	}
	close(d.dirfd);
	return 0;
}

/* ---- file surgery ---- */

static int file_size(const char *dir, const char *name, off_t *size)
{
	char path[512];
	struct stat st;

	path_of(path, sizeof(path), dir, name);
	if (stat(path, &st))
		return fail("stat %s: %s", path, strerror(errno));
	*size = st.st_size;
	return 0;
}

static int truncate_file(const char *dir, const char *name, off_t len)
{
	char path[512];

	path_of(path, sizeof(path), dir, name);
	if (truncate(path, len))
		return fail("truncate %s: %s", path, strerror(errno));
	return 0;
}

static int xor_byte(const char *dir, const char *name, off_t off, unsigned char mask)
{
	char path[512];
	unsigned char c;
	int fd, ok;

	path_of(path, sizeof(path), dir, name);
	fd = open(path, O_RDWR);
	if (fd < 0)
		return fail("open %s: %s", path, strerror(errno));
	ok = pread(fd, &c, 1, off) == 1;
	c ^= mask;
	ok = ok && pwrite(fd, &c, 1, off) == 1;
	close(fd);
	return ok ? 0 : fail("cannot flip byte %lld of %s", (long long)off, path);
}

static int put_u32(const char *dir, const char *name, off_t off, uint32_t v)
{
	char path[512];
	int fd, ok;

	path_of(path, sizeof(path), dir, name);
	fd = open(path, O_RDWR);
	if (fd < 0)
		return fail("open %s: %s", path, strerror(errno));
	ok = pwrite(fd, &v, sizeof(v), off) == sizeof(v);
	close(fd);
	return ok ? 0 : fail("cannot write %s", path);
}

static int append_byte(const char *dir, const char *name)
{
	char path[512];
	int fd, ok;

	path_of(path, sizeof(path), dir, name);
	fd = open(path, O_WRONLY | O_APPEND);
	if (fd < 0)
		return fail("open %s: %s", path, strerror(errno));
	ok = write(fd, "x", 1) == 1;
	close(fd);
	return ok ? 0 : fail("cannot append to %s", path);
}

static int exists(const char *dir, const char *name)
{
	char path[512];

	path_of(path, sizeof(path), dir, name);
	return access(path, F_OK) == 0;
}

/* Opens base/dir as a checkpoint; the caller closes it. */
static int open_dir(struct img_dir *d, const char *dir, char *path, size_t len)
{
	path_of(path, len, dir, NULL);
	if (img_dir_open(d, path)) {
		int ret = fail("img_dir_open %s: %s", path, err_text());
		img_dir_close(d);
		return ret;
	}
	return 0;
}

/* Loading name as kind from base/dir must fail with an error mentioning what. */
static int expect_load_fails(const char *dir, const char *name, enum img_kind kind,
			     const char *what)
{
	struct img_dir d;
	struct img_in in;
	char path[512];
	int r;

	if (open_dir(&d, dir, path, sizeof(path)))
		return -1;
	err_clear();
	r = img_in_load(&d, &in, name, kind);
	img_in_free(&in);
	img_dir_close(&d);
	CHECK(r != 0, "%s/%s loaded although it should be refused (%s)", dir, name, what);
	return expect_error(what);
}

/* ---- the checks ---- */

static int check_roundtrip(void)
{
	struct img_dir d;
	struct img_in in;
	ProtobufCMessage *m;
	char path[512];
	int n = 0, r;

	if (make_checkpoint("rt") || open_dir(&d, "rt", path, sizeof(path)))
		return -1;
	CHECK(!exists("rt", ".fs-1.img.part"), "a .part file is left after commit");
	CHECK(d.inventory->format_version == IMG_VERSION &&
		  !strcmp(d.inventory->cryo_version, "unit") && d.inventory->root_pid == 4242 &&
		  !strcmp(d.inventory->kernel_release, "unit-kernel") &&
		  d.inventory->xsave_size == 832,
	      "inventory fields differ from what was written");
	CHECK(d.inventory->n_files == 3, "inventory lists %zu files, expected 3",
	      d.inventory->n_files);
	CHECK(!img_dir_lookup(&d, "inventory.img"), "the inventory lists itself");
	if (img_in_load(&d, &in, "fs-1.img", IMG_FS)) {
		img_dir_close(&d);
		return fail("img_in_load fs-1.img: %s", err_text());
	}
	while ((r = img_in_msg(&in, &fs_entry__descriptor, &m)) == 1) {
		FsEntry *fs = (FsEntry *)m;
		char cwd[64];

		snprintf(cwd, sizeof(cwd), "/cwd/%d", n);
		r = strcmp(fs->cwd, cwd) || strcmp(fs->root, "/") || fs->umask != 022u + n;
		protobuf_c_message_free_unpacked(m, NULL);
		if (r)
			break;
		n++;
	}
	img_in_free(&in);
	img_dir_close(&d);
	CHECK(r == 0, "record %d of fs-1.img differs or fails (%s)", n,
	      r < 0 ? err_text() : "content");
	CHECK(n == 3, "read %d records from fs-1.img, wrote 3", n);
	return 0;
}

static int check_big_records(void)
{
	struct img_dir d;
	struct img_in in;
	ProtobufCMessage *m[4] = {0};
	unsigned char *data = big_data();
	char path[512];
	int n = 0, r, ret = 0;

	if (!data)
		return fail("out of memory");
	if (open_dir(&d, "rt", path, sizeof(path))) {
		free(data);
		return -1;
	}
	if (img_in_load(&d, &in, "pipes.img", IMG_PIPES))
		ret = fail("img_in_load pipes.img: %s", err_text());
	while (!ret && n < 4 && (r = img_in_msg(&in, &pipe_entry__descriptor, &m[n])) == 1)
		n++;
	if (!ret && n != 3)
		ret = fail("read %d records from pipes.img, wrote 3 (%s)", n, err_text());
	if (!ret) {
		PipeEntry *a = (PipeEntry *)m[0], *b = (PipeEntry *)m[1], *c = (PipeEntry *)m[2];

		if (a->pipe_ino != 1 || a->data.len != 5 || memcmp(a->data.data, "hello", 5) ||
		    c->pipe_ino != 1 || c->data.len != 5)
			ret = fail("small pipe records differ");
		else if (b->pipe_ino != 2 || b->capacity != 1u << 20 || b->data.len != BIG_LEN ||
			 memcmp(b->data.data, data, BIG_LEN))
			ret = fail("the %d-byte record differs", BIG_LEN);
	}
	for (int i = 0; i < 4; i++)
		if (m[i])
			protobuf_c_message_free_unpacked(m[i], NULL);
	img_in_free(&in);
	img_dir_close(&d);
	free(data);
	return ret;
}

static int check_pages_raw(void)
{
	struct img_dir d;
	const ImageFile *f;
	unsigned char buf[4096];
	uint32_t hdr[4];
	uint64_t size = 0;
	char path[512];
	int fd, ret = 0;

	if (open_dir(&d, "rt", path, sizeof(path)))
		return -1;
	f = img_dir_lookup(&d, "pages-1.img");
	if (!f)
		ret = fail("pages-1.img not in the inventory");
	else if (f->has_xxh3)
		ret = fail("pages-1.img has a whole-file checksum; it should not");
	else if (f->size != IMG_PAGES_DATA_OFF + 2 * 4096)
		ret = fail("inventory size of pages-1.img is %llu", (unsigned long long)f->size);
	if (ret) {
		img_dir_close(&d);
		return ret;
	}
	fd = img_raw_open(&d, "pages-1.img", IMG_PAGES, &size);
	if (fd < 0) {
		img_dir_close(&d);
		return fail("img_raw_open pages-1.img: %s", err_text());
	}
	if (size != IMG_PAGES_DATA_OFF + 2 * 4096)
		ret = fail("img_raw_open size %llu", (unsigned long long)size);
	else if (pread(fd, hdr, sizeof(hdr), 0) != sizeof(hdr) || hdr[0] != IMG_MAGIC ||
		 hdr[1] != IMG_PAGES || hdr[2] != IMG_VERSION || hdr[3] != 0)
		ret = fail("pages-1.img header is not {magic, pages, version, 0}");
	else
		for (int i = 0; i < 2 && !ret; i++) {
			if (pread(fd, buf, sizeof(buf), IMG_PAGES_DATA_OFF + i * 4096) != 4096)
				ret = fail("cannot read page %d", i);
			for (size_t j = 0; j < sizeof(buf) && !ret; j++)
				if (buf[j] != 0xa0 + i)
					ret = fail("page %d byte %zu is 0x%02x", i, j, buf[j]);
		}
	close(fd);
	err_clear();
	if (!ret && img_raw_open(&d, "pages-1.img", IMG_CORE, &size) >= 0)
		ret = fail("pages-1.img opened as a core image");
	if (!ret)
		ret = expect_error("expected core");
	img_dir_close(&d);
	return ret;
}

static int check_header_written(void)
{
	char path[512];
	uint32_t hdr[4];
	int fd, ok;

	path_of(path, sizeof(path), "rt", "fs-1.img");
	fd = open(path, O_RDONLY);
	if (fd < 0)
		return fail("open %s: %s", path, strerror(errno));
	ok = pread(fd, hdr, sizeof(hdr), 0) == sizeof(hdr);
	close(fd);
	CHECK(ok, "cannot read the header of %s", path);
	CHECK(hdr[0] == IMG_MAGIC && !memcmp(hdr, "CRYO", 4), "magic is 0x%08x", hdr[0]);
	CHECK(hdr[1] == IMG_FS, "kind is %u, expected %u", hdr[1], IMG_FS);
	CHECK(hdr[2] == IMG_VERSION, "version is %u", hdr[2]);
	CHECK(hdr[3] == 0, "reserved word is %u", hdr[3]);
	return 0;
}

static int check_wrong_kind(void)
{
	return expect_load_fails("rt", "fs-1.img", IMG_MM, "expected mm");
}

static int check_not_listed(void)
{
	return expect_load_fails("rt", "core-1.img", IMG_CORE, "not in its inventory");
}

static int check_truncated(void)
{
	off_t size;

	if (make_checkpoint("trunc") || file_size("trunc", "fs-1.img", &size) ||
	    truncate_file("trunc", "fs-1.img", size - 3))
		return -1;
	if (expect_load_fails("trunc", "fs-1.img", IMG_FS, "truncated"))
		return -1;
	/* down to less than a header */
	if (truncate_file("trunc", "fs-1.img", 5))
		return -1;
	return expect_load_fails("trunc", "fs-1.img", IMG_FS, "truncated");
}

static int check_too_long(void)
{
	if (make_checkpoint("long") || append_byte("long", "fs-1.img"))
		return -1;
	return expect_load_fails("long", "fs-1.img", IMG_FS, "too long");
}

static int check_flipped_byte(void)
{
	off_t size;

	if (make_checkpoint("flip") || file_size("flip", "pipes.img", &size))
		return -1;
	/* one bit in the middle of the big record's data */
	if (xor_byte("flip", "pipes.img", size / 2, 0x01))
		return -1;
	if (expect_load_fails("flip", "pipes.img", IMG_PIPES, "checksum mismatch"))
		return -1;
	/* a byte of the header: the checksum catches it before the header check */
	if (make_checkpoint("flip2") || xor_byte("flip2", "fs-1.img", 9, 0x80))
		return -1;
	return expect_load_fails("flip2", "fs-1.img", IMG_FS, "checksum mismatch");
}

static int check_pages_truncated(void)
{
	struct img_dir d;
	uint64_t size;
	char path[512];
	int fd;

	if (make_checkpoint("ptrunc") || truncate_file("ptrunc", "pages-1.img", 4096 + 4096))
		return -1;
	if (open_dir(&d, "ptrunc", path, sizeof(path)))
		return -1;
	err_clear();
	fd = img_raw_open(&d, "pages-1.img", IMG_PAGES, &size);
	img_dir_close(&d);
	if (fd >= 0) {
		close(fd);
		return fail("a truncated pages image was opened");
	}
	return expect_error("truncated");
}

static int check_missing_inventory(void)
{
	struct img_dir d;
	char path[512];
	int r;

	if (make_checkpoint("noinv"))
		return -1;
	path_of(path, sizeof(path), "noinv", "inventory.img");
	if (unlink(path))
		return fail("unlink %s: %s", path, strerror(errno));
	path_of(path, sizeof(path), "noinv", NULL);
	err_clear();
	r = img_dir_open(&d, path);
	img_dir_close(&d);
	CHECK(r != 0, "a directory without inventory.img was opened");
	return expect_error("not a complete checkpoint");
}

/* Opening base/dir must fail with an error mentioning what. */
static int expect_open_fails(const char *dir, const char *what)
{
	struct img_dir d;
	char path[512];
	int r;

	path_of(path, sizeof(path), dir, NULL);
	err_clear();
	r = img_dir_open(&d, path);
	img_dir_close(&d);
	CHECK(r != 0, "%s was opened although it should be refused (%s)", path, what);
	return expect_error(what);
}

static int check_bad_magic(void)
{
	if (make_checkpoint("magic") || put_u32("magic", "inventory.img", 0, 0x464c457f))
		return -1;
	return expect_open_fails("magic", "bad magic");
}

static int check_bad_header_version(void)
{
	if (make_checkpoint("hver") || put_u32("hver", "inventory.img", 8, IMG_VERSION + 1))
		return -1;
	return expect_open_fails("hver", "format version");
}

static int check_bad_inventory_version(void)
{
	struct img_dir d;
	InventoryEntry inv;
	char path[512];

	path_of(path, sizeof(path), "iver", NULL);
	if (img_dir_create(&d, path, false))
		return fail("img_dir_create %s: %s", path, err_text());
	if (write_fs_image(&d, "fs-1.img", 1)) {
		img_dir_abort(&d);
		return -1;
	}
	inventory_init(&inv);
	inv.format_version = IMG_VERSION + 1;
	if (img_dir_commit(&d, &inv)) {
		img_dir_abort(&d);
		return fail("img_dir_commit: %s", err_text());
	}
	close(d.dirfd);
	return expect_open_fails("iver", "format version");
}

static int check_truncated_inventory(void)
{
	off_t size;

	if (make_checkpoint("itrunc") || file_size("itrunc", "inventory.img", &size) ||
	    truncate_file("itrunc", "inventory.img", size - 1))
		return -1;
	if (expect_open_fails("itrunc", "truncated"))
		return -1;
	if (truncate_file("itrunc", "inventory.img", 10))
		return -1;
	return expect_open_fails("itrunc", "truncated");
}

/* Images written after the inventory (stats-restore) get the header check only. */
static int check_unlisted(void)
{
	struct img_dir d, w;
	struct img_in in;
	ProtobufCMessage *m = NULL;
	char path[512];
	int r, ret = 0;

	if (make_checkpoint("unl") || open_dir(&d, "unl", path, sizeof(path)))
		return -1;
	r = img_in_load_unlisted(&d, &in, "stats-restore", IMG_STATS);
	if (r != 1)
		ret = fail("absent unlisted image: got %d, expected 1", r);
	/* write one outside the inventory, as restore does */
	w = d;
	w.files = NULL;
	w.nr_files = w.cap_files = 0;
	if (!ret && write_fs_image(&w, "extra", 1))
		ret = -1;
	else if (!ret && renameat(d.dirfd, ".extra.part", d.dirfd, "extra"))
		ret = fail("rename .extra.part: %s", strerror(errno));
	free(w.files);
	if (!ret && img_in_load_unlisted(&d, &in, "extra", IMG_FS))
		ret = fail("img_in_load_unlisted extra: %s", err_text());
	if (!ret && img_in_msg(&in, &fs_entry__descriptor, &m) != 1)
		ret = fail("no record in extra: %s", err_text());
	if (m)
		protobuf_c_message_free_unpacked(m, NULL);
	img_in_free(&in);
	/* a wrong kind is refused */
	err_clear();
	if (!ret && img_in_load_unlisted(&d, &in, "extra", IMG_STATS) == 0)
		ret = fail("extra loaded as a stats image");
	img_in_free(&in);
	if (!ret)
		ret = expect_error("expected stats");
	/* a record length running past the end is refused by img_in_msg */
	if (!ret && put_u32("unl", "extra", IMG_HEADER_SIZE, 1000))
		ret = -1;
	if (!ret && img_in_load_unlisted(&d, &in, "extra", IMG_FS))
		ret = fail("img_in_load_unlisted extra: %s", err_text());
	m = NULL;
	if (!ret && img_in_msg(&in, &fs_entry__descriptor, &m) != -1)
		ret = fail("a record running past the end of the image was read");
	if (m)
		protobuf_c_message_free_unpacked(m, NULL);
	img_in_free(&in);
	if (!ret)
		ret = expect_error("truncated");
	img_dir_close(&d);
	return ret;
}

/* Garbage where a record should be: img_in_msg reports it, not a crash. */
static int check_bad_record(void)
{
	struct img_dir d, w;
	struct img_in in;
	ProtobufCMessage *m = NULL;
	char path[512];
	int ret = 0;

	if (make_checkpoint("badrec") || open_dir(&d, "badrec", path, sizeof(path)))
		return -1;
	w = d;
	w.files = NULL;
	w.nr_files = w.cap_files = 0;
	if (write_fs_image(&w, "extra", 1))
		ret = -1;
	else if (renameat(d.dirfd, ".extra.part", d.dirfd, "extra"))
		ret = fail("rename .extra.part: %s", strerror(errno));
	free(w.files);
	/* the record's first byte, the tag of field 1 (0x0a), becomes 0x07: wire type 7 */
	if (!ret && xor_byte("badrec", "extra", IMG_HEADER_SIZE + 4, 0x0d))
		ret = -1;
	if (!ret && img_in_load_unlisted(&d, &in, "extra", IMG_FS))
		ret = fail("img_in_load_unlisted extra: %s", err_text());
	if (!ret && img_in_msg(&in, &fs_entry__descriptor, &m) != -1)
		ret = fail("a corrupted record was unpacked");
	if (m)
		protobuf_c_message_free_unpacked(m, NULL);
	img_in_free(&in);
	if (!ret)
		ret = expect_error("corrupted");
	img_dir_close(&d);
	return ret;
}

/* A new commit into the same directory replaces the old checkpoint entirely. */
static int check_replace(void)
{
	struct img_dir d;
	InventoryEntry inv;
	char path[512];

	if (make_checkpoint("repl"))
		return -1;
	path_of(path, sizeof(path), "repl", NULL);
	if (img_dir_create(&d, path, true))
		return fail("img_dir_create: %s", err_text());
	if (write_fs_image(&d, "fs-2.img", 2)) {
		img_dir_abort(&d);
		return -1;
	}
	inventory_init(&inv);
	inv.root_pid = 7;
	if (img_dir_commit(&d, &inv)) {
		img_dir_abort(&d);
		return fail("img_dir_commit (with sync): %s", err_text());
	}
	close(d.dirfd);
	if (open_dir(&d, "repl", path, sizeof(path)))
		return -1;
	int ok = d.inventory->root_pid == 7 && d.inventory->n_files == 1 &&
		 img_dir_lookup(&d, "fs-2.img") && !img_dir_lookup(&d, "fs-1.img");
	img_dir_close(&d);
	CHECK(ok, "the new inventory does not describe only the new checkpoint");
	return expect_load_fails("repl", "fs-1.img", IMG_FS, "not in its inventory");
}

/* An aborted dump leaves no .part files and no inventory. */
static int check_abort(void)
{
	struct img_dir d;
	struct img_out o;
	char path[512];

	path_of(path, sizeof(path), "abort", NULL);
	if (img_dir_create(&d, path, false))
		return fail("img_dir_create: %s", err_text());
	if (write_fs_image(&d, "fs-1.img", 1))
		return -1;
	if (img_out_open(&d, &o, "core-1.img", IMG_CORE))
		return fail("img_out_open: %s", err_text());
	img_out_discard(&o);
	CHECK(exists("abort", ".fs-1.img.part"), "no .fs-1.img.part while writing");
	img_dir_abort(&d);
	CHECK(!exists("abort", ".fs-1.img.part") && !exists("abort", ".core-1.img.part"),
	      ".part files left after abort");
	CHECK(!exists("abort", "inventory.img") && !exists("abort", "fs-1.img"),
	      "images committed by an abort");
	return expect_open_fails("abort", "not a complete checkpoint");
}

static int check_too_many_files(void)
{
	struct img_dir d;
	struct img_out o;
	char path[512], name[64];
	int i;

	path_of(path, sizeof(path), "many", NULL);
	if (img_dir_create(&d, path, false))
		return fail("img_dir_create: %s", err_text());
	err_clear();
	for (i = 0; i <= IMG_MAX_FILES; i++) {
		snprintf(name, sizeof(name), "f%d.img", i);
		if (img_out_open(&d, &o, name, IMG_FS))
			break;
		if (img_out_close(&o)) {
			img_dir_abort(&d);
			return fail("img_out_close %s: %s", name, err_text());
		}
	}
	img_dir_abort(&d);
	CHECK(i == IMG_MAX_FILES, "image %d of at most %d was refused or not at all", i,
	      IMG_MAX_FILES);
	return expect_error("too many");
}

static int check_kind_names(void)
{
	CHECK(!strcmp(img_kind_name(IMG_INVENTORY), "inventory"), "inventory name");
	CHECK(!strcmp(img_kind_name(IMG_PAGES), "pages"), "pages name");
	CHECK(!strcmp(img_kind_name(IMG_STATS), "stats"), "stats name");
	CHECK(!strcmp(img_kind_name(0), "unknown"), "kind 0 name");
	CHECK(!strcmp(img_kind_name(IMG_SYSVSHM), "sysvshm"), "sysvshm name");
	CHECK(!strcmp(img_kind_name(IMG_NR_KINDS), "unknown"), "kind past the end name");
	CHECK(img_hash("abc", 3) == img_hash("abc", 3) && img_hash("abc", 3) != img_hash("abd", 3),
	      "img_hash is not a function of the bytes");
	return 0;
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

struct check {
	const char *name;
	int (*fn)(void);
};

static const struct check checks[] = {
    {"roundtrip_records", check_roundtrip},
    {"big_records", check_big_records},
    {"pages_raw", check_pages_raw},
    {"header_written", check_header_written},
    {"wrong_kind", check_wrong_kind},
    {"not_listed", check_not_listed},
    {"truncated_image", check_truncated},
    {"too_long_image", check_too_long},
    {"flipped_byte", check_flipped_byte},
    {"truncated_pages", check_pages_truncated},
    {"missing_inventory", check_missing_inventory},
    {"bad_magic", check_bad_magic},
    {"bad_header_version", check_bad_header_version},
    {"bad_inventory_version", check_bad_inventory_version},
    {"truncated_inventory", check_truncated_inventory},
    {"unlisted_image", check_unlisted},
    {"bad_record", check_bad_record},
    {"replace_checkpoint", check_replace},
    {"abort", check_abort},
    {"too_many_files", check_too_many_files},
    {"kind_names", check_kind_names},
};

int main(void)
{
	if (log_init(0, NULL)) {
		printf("unit: FAIL log_init: %s\n", err_text());
		return 1;
	}
	if (!mkdtemp(base)) {
		printf("unit: FAIL setup: mkdtemp %s: %s\n", base, strerror(errno));
		return 1;
	}
	for (size_t i = 0; i < sizeof(checks) / sizeof(checks[0]); i++) {
		fail_msg[0] = '\0';
		err_clear();
		if (checks[i].fn()) {
			printf("unit: FAIL %s: %s\n", checks[i].name,
			       fail_msg[0] ? fail_msg : "failed");
			failures++;
		} else {
			printf("unit: check %s ok\n", checks[i].name);
		}
		fflush(stdout);
	}
	nftw(base, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
	log_fini();
	return failures ? 1 : 0;
}
