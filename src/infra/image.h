/*
 * Image files: a checkpoint directory and the files in it.
 *
 * Every image starts with a 16-byte header (magic, kind, format version,
 * zero). Metadata images then hold length-prefixed protobuf-c records; the
 * pages image holds raw page data from offset 4096 on. A dump writes each
 * image under a temporary name, and img_dir_commit() renames them into place
 * and writes inventory.img last, listing every file with its size and XXH3
 * checksum. A restore opens only what the inventory lists and verifies each
 * file against it before anything is created.
 */
#ifndef CRYO_IMAGE_H
#define CRYO_IMAGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <protobuf-c/protobuf-c.h>

#include "inventory.pb-c.h"

#define IMG_MAGIC	   0x4f595243u /* "CRYO" */
#define IMG_VERSION	   1u
#define IMG_HEADER_SIZE	   16u
#define IMG_PAGES_DATA_OFF 4096u
#define IMG_MAX_FILES	   4096

enum img_kind {
	IMG_INVENTORY = 1,
	IMG_CORE,
	IMG_MM,
	IMG_PAGEMAP,
	IMG_PAGES,
	IMG_FILES,
	IMG_FDINFO,
	IMG_FS,
	IMG_PIPES,
	IMG_STATS,
	IMG_GHOST,
	IMG_GHOST_DATA,
	IMG_LOCKS, /* ghost.c, locks.c */
	IMG_SYSVSHM,
	IMG_NETLOCK,
	IMG_CGROUP,
	IMG_CHAIN,
	IMG_NR_KINDS /* keep last */
};

struct img_file_rec {
	char name[64];
	uint64_t size;
	uint64_t xxh3;
	bool has_xxh3;
	bool unsynced; /* closed, its data not yet made durable (img_dir_commit does) */
};

/* A checkpoint directory, open for writing (dump) or reading (restore). */
struct img_dir {
	int dirfd;
	const char *path;
	bool sync;
	int nr_files, cap_files;
	struct img_file_rec *files; /* dump: the images written so far */
	InventoryEntry *inventory;  /* restore: the parsed inventory */
	uint64_t inventory_xxh3;    /* restore: the checksum inventory.img ends with */
};

/* One image being written. */
struct img_out {
	struct img_dir *dir;
	int fd;
	char name[64];
	bool hashed;
	void *hash_state; /* XXH3_state_t */
	uint64_t size;
	unsigned char *buf;
	size_t buf_len;
};

/* One metadata image read fully into memory and verified. */
struct img_in {
	char name[64];
	unsigned char *data;
	size_t size;
	size_t pos;
	uint64_t own_xxh3; /* inventory.img: the checksum it ends with */
};

int img_dir_create(struct img_dir *d, const char *path, bool sync);
int img_dir_commit(struct img_dir *d, InventoryEntry *inv);
void img_dir_abort(struct img_dir *d);
int img_dir_open(struct img_dir *d, const char *path);
void img_dir_close(struct img_dir *d);
const ImageFile *img_dir_lookup(const struct img_dir *d, const char *name);

int img_out_open(struct img_dir *d, struct img_out *o, const char *name, enum img_kind kind);
int img_out_msg(struct img_out *o, const ProtobufCMessage *msg);
int img_out_raw(struct img_out *o, const void *data, size_t len);
int img_out_close(struct img_out *o);
/* A whole image: head (if any), then n records laid out stride bytes apart
 * from first (each starts with its ProtobufCMessage base). */
int img_write_array(struct img_dir *d, const char *name, enum img_kind kind,
		    const ProtobufCMessage *head, const void *first, size_t n, size_t stride);
/* "fmt" with a pid in it, as a value usable inside an expression. */
struct img_name {
	char s[64];
};
struct img_name img_name_pid(const char *fmt, int pid);
void img_out_discard(struct img_out *o);

int img_in_load(struct img_dir *d, struct img_in *in, const char *name, enum img_kind kind);
/* An image written after the inventory (stats-restore): header check only; 1 if absent. */
int img_in_load_unlisted(struct img_dir *d, struct img_in *in, const char *name,
			 enum img_kind kind);
/* 1: *msg unpacked, 0: end of image, -1: error recorded. */
int img_in_msg(struct img_in *in, const ProtobufCMessageDescriptor *desc, ProtobufCMessage **msg);
void img_in_free(struct img_in *in);
/* Every record of image name: *head gets the first (when head_desc is given;
 * NULL head frees it), *out the others, *n their count. An empty image with
 * a head is an error. */
int img_load_list(struct img_dir *d, const char *name, enum img_kind kind,
		  const ProtobufCMessageDescriptor *head_desc, ProtobufCMessage **head,
		  const ProtobufCMessageDescriptor *desc, void ***out, size_t *n);

/* Opens a raw image (pages) listed in the inventory and checks its header. */
int img_raw_open(struct img_dir *d, const char *name, enum img_kind kind, uint64_t *size);

uint64_t img_hash(const void *data, size_t len);
const char *img_kind_name(enum img_kind kind);

#endif
