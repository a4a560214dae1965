/*
 * fhandle: from the file handle fdinfo gives for a watched inode (inotify,
 * fanotify) to a path that leads to it. The handle is opened with
 * open_by_handle_at() through each mount of its device (cryo's mountinfo)
 * until one works; the path is read back from /proc/self/fd and must lead
 * to the same inode (a deleted or moved-away inode has none). A deleted
 * inode that is still open somewhere (nlink 0, the link reads
 * "PATH (deleted)") is told apart for inotify, which watches it through
 * the process of the tree that holds it.
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "fhandle.h"
#include "infra/log.h"
#include "infra/proc.h"

#define DELETED " (deleted)"

int fhandle_parse(const char *p, struct fhandle_info *h)
{
	if (sscanf(p, "fhandle-bytes:%x fhandle-type:%x f_handle:%258s", &h->bytes, &h->type,
		   h->hex) != 3)
		return -1;
	return h->bytes > 128 || strlen(h->hex) != 2 * h->bytes ? -1 : 0;
}

dev_t fhandle_dev(unsigned sdev)
{
	return makedev(sdev >> 20, sdev & 0xfffff);
}

static struct file_handle *make_handle(const struct fhandle_info *w)
{
	struct file_handle *h = malloc(sizeof(*h) + w->bytes);

	if (!h)
		return NULL;
	h->handle_bytes = w->bytes;
	h->handle_type = w->type;
	for (unsigned i = 0; i < w->bytes; i++) {
		unsigned b;
		sscanf(w->hex + 2 * i, "%2x", &b);
		h->f_handle[i] = b;
	}
	return h;
}

/* Opens the inode through every mount of its device until one works. */
static int open_by_mounts(dev_t dev, struct file_handle *h)
{
	char *info, *line, *save = NULL;
	int fd = -1;

	if (proc_read(0, "mountinfo", &info, NULL))
		return -1;
	for (line = strtok_r(info, "\n", &save); line && fd < 0;
	     line = strtok_r(NULL, "\n", &save)) {
		unsigned maj, min;
		char mnt[4096];
		if (sscanf(line, "%*d %*d %u:%u %*s %4095s", &maj, &min, mnt) != 3 ||
		    makedev(maj, min) != dev)
			continue;
		int mfd = open(mnt, O_RDONLY | O_DIRECTORY | O_CLOEXEC); /* not O_PATH: EBADF */
		if (mfd < 0)
			continue;
		fd = open_by_handle_at(mfd, h, O_PATH | O_CLOEXEC);
		close(mfd);
	}
	free(info);
	return fd;
}

int fhandle_path_or_deleted(const struct fhandle_info *w, char *path, size_t len)
{
	struct file_handle *h = make_handle(w);
	dev_t dev = fhandle_dev(w->sdev);
	struct stat st, st2;
	char name[32];
	int ofd;

	if (!h)
		return err_set("out of memory");
	ofd = open_by_mounts(dev, h);
	free(h);
	if (ofd < 0)
		return err_errno("cannot open inode %llu on %u:%u by its handle", w->ino,
				 major(dev), minor(dev));
	snprintf(name, sizeof(name), "fd/%d", ofd);
	int bad = fstat(ofd, &st) || proc_readlink(0, name, path, len);
	close(ofd);
	if (bad)
		return -1;
	char *deleted = strstr(path, DELETED);
	if (st.st_ino == w->ino && !st.st_nlink && deleted && !deleted[strlen(DELETED)]) {
		*deleted = 0; /* removed, held open somewhere: the name it had */
		return 1;
	}
	if (st.st_ino != w->ino || path[0] != '/' || deleted || stat(path, &st2) ||
	    st2.st_ino != st.st_ino || st2.st_dev != st.st_dev)
		return err_set("inode %llu (%s) has no path that leads to it", w->ino, path);
	return 0;
}

int fhandle_path(const struct fhandle_info *w, char *path, size_t len)
{
	int r = fhandle_path_or_deleted(w, path, len);

	if (r == 1)
		return err_set("inode %llu (%s) was deleted: no path leads to it", w->ino, path);
	return r;
}
