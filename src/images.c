/*
 * images: the registry of the images of a checkpoint (images.h), and the
 * functions that write and read an image by its row.
 */
#include <fnmatch.h>
#include <stdio.h>

#include "images.h"
#include "infra/log.h"

#include "cgroup.pb-c.h"
#include "chain.pb-c.h"
#include "core.pb-c.h"
#include "files.pb-c.h"
#include "fs.pb-c.h"
#include "ghost.pb-c.h"
#include "locks.pb-c.h"
#include "mm.pb-c.h"
#include "netlock.pb-c.h"
#include "pagemap.pb-c.h"
#include "pipes.pb-c.h"
#include "stats.pb-c.h"
#include "sysvshm.pb-c.h"

static const struct image_type types[IMAGE_NR] = {
    [IMAGE_CORE] = {"core-%d.img", "core-*.img", IMG_CORE, NULL, &core_entry__descriptor},
    [IMAGE_MM] = {"mm-%d.img", "mm-*.img", IMG_MM, NULL, &mm_entry__descriptor},
    [IMAGE_PAGEMAP] = {"pagemap-%d.img", "pagemap-*.img", IMG_PAGEMAP, &pagemap_head__descriptor,
		       &pagemap_entry__descriptor},
    [IMAGE_PAGES] = {"pages-%d.img", "pages-*.img", IMG_PAGES, NULL, NULL},
    [IMAGE_FILES] = {"files.img", "files.img", IMG_FILES, NULL, &file_entry__descriptor},
    [IMAGE_FDINFO] = {"fdinfo-%d.img", "fdinfo-*.img", IMG_FDINFO, NULL, &fd_entry__descriptor},
    [IMAGE_FS] = {"fs-%d.img", "fs-*.img", IMG_FS, NULL, &fs_entry__descriptor},
    [IMAGE_PIPES] = {"pipes.img", "pipes.img", IMG_PIPES, NULL, &pipe_entry__descriptor},
    [IMAGE_GHOST] = {"ghost-files.img", "ghost-files.img", IMG_GHOST, NULL,
		     &ghost_entry__descriptor},
    [IMAGE_GHOST_DATA] = {"ghost-data.img", "ghost-data.img", IMG_GHOST_DATA, NULL, NULL},
    [IMAGE_LOCKS] = {"locks-%d.img", "locks-*.img", IMG_LOCKS, &locks_head__descriptor,
		     &lock_entry__descriptor},
    [IMAGE_SYSVSHM] = {"sysvshm.img", "sysvshm.img", IMG_SYSVSHM, NULL, &sysvshm_entry__descriptor},
    [IMAGE_NETLOCK] = {"netlock.img", "netlock.img", IMG_NETLOCK, NULL, &netlock_entry__descriptor},
    [IMAGE_CGROUP] = {"cgroup.img", "cgroup.img", IMG_CGROUP, NULL, &cgroup_entry__descriptor},
    [IMAGE_CHAIN] = {"chain.img", "chain.img", IMG_CHAIN, NULL, &chain_entry__descriptor},
    [IMAGE_STATS_DUMP] = {"stats-dump", "stats-dump", IMG_STATS, NULL, &dump_stats__descriptor},
    [IMAGE_STATS_RESTORE] = {"stats-restore", "stats-restore", IMG_STATS, NULL,
			     &restore_stats__descriptor},
};

const struct image_type *image_type(enum image im)
{
	return &types[im];
}

const struct image_type *image_type_of(const char *name)
{
	for (size_t i = 0; i < IMAGE_NR; i++)
		if (!fnmatch(types[i].pattern, name, 0))
			return &types[i];
	return NULL;
}

struct img_name image_name(enum image im, pid_t pid)
{
	struct img_name n;

#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
#pragma GCC diagnostic ignored "-Wformat-extra-args"
	snprintf(n.s, sizeof(n.s), types[im].name, pid);
#pragma GCC diagnostic pop
	return n;
}

bool image_present(const struct img_dir *d, enum image im, pid_t pid)
{
	return img_dir_lookup(d, image_name(im, pid).s) != NULL;
}

int image_out_open(struct img_dir *d, struct img_out *o, enum image im, pid_t pid)
{
	return img_out_open(d, o, image_name(im, pid).s, types[im].kind);
}

int image_write_one(struct img_dir *d, enum image im, pid_t pid, const ProtobufCMessage *msg)
{
	struct img_out out;
	int ret;

	if (image_out_open(d, &out, im, pid))
		return -1;
	ret = img_out_msg(&out, msg);
	if (!ret)
		ret = img_out_close(&out);
	img_out_discard(&out);
	return ret;
}

int image_load_one(struct img_dir *d, enum image im, pid_t pid, ProtobufCMessage **msg)
{
	struct img_name name = image_name(im, pid);
	struct img_in in;
	int r;

	if (img_in_load(d, &in, name.s, types[im].kind))
		return -1;
	r = img_in_msg(&in, types[im].desc, msg);
	if (r == 0)
		err_set("image %s/%s is empty", d->path, name.s);
	else if (r == 1 && in.pos != in.size)
		r = err_set("image %s/%s has trailing data", d->path, name.s);
	img_in_free(&in);
	return r == 1 ? 0 : -1;
}

int image_write_array(struct img_dir *d, enum image im, pid_t pid, const ProtobufCMessage *head,
		      const void *first, size_t n, size_t stride)
{
	return img_write_array(d, image_name(im, pid).s, types[im].kind, head, first, n, stride);
}

int image_load_list(struct img_dir *d, enum image im, pid_t pid, ProtobufCMessage **head,
		    void ***out, size_t *n)
{
	return img_load_list(d, image_name(im, pid).s, types[im].kind, types[im].head, head,
			     types[im].desc, out, n);
}

int image_raw_open(struct img_dir *d, enum image im, pid_t pid, uint64_t *size)
{
	return img_raw_open(d, image_name(im, pid).s, types[im].kind, size);
}
