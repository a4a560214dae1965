/*
 * images: the registry of the images a checkpoint holds.
 *
 * Each image is one row: its name (a pattern with the pid for the images
 * of one process), the kind written in its header, the record types it
 * holds and the file that writes and reads it. Every image is written and
 * read through these functions, by the file that owns it; show.c prints
 * any image from its row.
 */
#ifndef CRYO_IMAGES_H
#define CRYO_IMAGES_H

#include <stdbool.h>
#include <sys/types.h>

#include "infra/image.h"

enum image {
	IMAGE_CORE,	     /* core-PID.img: task.c and the per-thread state */
	IMAGE_MM,	     /* mm-PID.img: mm.c */
	IMAGE_PAGEMAP,	     /* pagemap-PID.img: pages.c */
	IMAGE_PAGES,	     /* pages-PID.img: pages.c (raw) */
	IMAGE_FILES,	     /* files.img: files.c */
	IMAGE_FDINFO,	     /* fdinfo-PID.img: files.c */
	IMAGE_FS,	     /* fs-PID.img: fs.c */
	IMAGE_PIPES,	     /* pipes.img: pipes.c */
	IMAGE_GHOST,	     /* ghost-files.img: ghost.c */
	IMAGE_GHOST_DATA,    /* ghost-data.img: ghost.c (raw) */
	IMAGE_LOCKS,	     /* locks-PID.img: locks.c */
	IMAGE_SYSVSHM,	     /* sysvshm.img: sysvshm.c */
	IMAGE_NETLOCK,	     /* netlock.img: sockets/tcp.c (netlock.c) */
	IMAGE_CGROUP,	     /* cgroup.img: cgroup.c */
	IMAGE_CHAIN,	     /* chain.img: chain.c, memtrack.c */
	IMAGE_STATS_DUMP,    /* stats-dump: dump.c */
	IMAGE_STATS_RESTORE, /* stats-restore: restore.c, written after the inventory */
	IMAGE_NR
};

struct image_type {
	const char *name;    /* "core-%d.img": with the pid for the images of a process */
	const char *pattern; /* the same as a glob: "core-*.img" */
	enum img_kind kind;
	const ProtobufCMessageDescriptor *head; /* the first record, if it differs */
	const ProtobufCMessageDescriptor *desc; /* the records; NULL: raw data */
};

const struct image_type *image_type(enum image im);
/* The row whose pattern matches a file name, or NULL. */
const struct image_type *image_type_of(const char *name);
/* The name of image im of process pid (pid is ignored for tree images). */
struct img_name image_name(enum image im, pid_t pid);
/* Whether the checkpoint lists the image. */
bool image_present(const struct img_dir *d, enum image im, pid_t pid);

/* An image of one record. */
int image_write_one(struct img_dir *d, enum image im, pid_t pid, const ProtobufCMessage *msg);
int image_load_one(struct img_dir *d, enum image im, pid_t pid, ProtobufCMessage **msg);
/* An image of records: head (if the image has one), then n records laid
 * out stride bytes apart from first. */
int image_write_array(struct img_dir *d, enum image im, pid_t pid, const ProtobufCMessage *head,
		      const void *first, size_t n, size_t stride);
/* *head gets the first record (if the image has one; NULL head: freed),
 * *out the others, *n their count. */
int image_load_list(struct img_dir *d, enum image im, pid_t pid, ProtobufCMessage **head,
		    void ***out, size_t *n);
/* A raw image, opened for reading after its header is checked. */
int image_raw_open(struct img_dir *d, enum image im, pid_t pid, uint64_t *size);
/* A raw image, opened for writing. */
int image_out_open(struct img_dir *d, struct img_out *o, enum image im, pid_t pid);

#endif
