/*
 * fhandle: the inode a watch of inotify or fanotify names in fdinfo, by its
 * file handle (fhandle.c): opened with open_by_handle_at() on a mount of
 * its device, and the path that leads to it read back.
 */
#ifndef CRYO_FHANDLE_H
#define CRYO_FHANDLE_H

#include <stddef.h>
#include <sys/types.h>

struct fhandle_info {
	unsigned sdev; /* the kernel's dev_t: major << 20 | minor */
	unsigned long long ino;
	unsigned bytes;
	int type;
	char hex[260]; /* f_handle, two hex digits a byte */
};

/* Parses "fhandle-bytes:B fhandle-type:T f_handle:HEX" at p. */
int fhandle_parse(const char *p, struct fhandle_info *h);
/* The kernel's dev_t as user space's. */
dev_t fhandle_dev(unsigned sdev);
/* A path (absolute, not deleted) that leads to the inode, checked: -1 with
 * the error recorded ("cannot open ... by its handle", "no path"). */
int fhandle_path(const struct fhandle_info *h, char *path, size_t len);
/* The same, except for an inode that was deleted but is still open
 * somewhere: 1, with the path it had (without " (deleted)") in path. */
int fhandle_path_or_deleted(const struct fhandle_info *h, char *path, size_t len);

#endif
