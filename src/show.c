/*
 * show: print a checkpoint for a person (text) or a program (--json).
 *
 * The checkpoint is first verified as a restore would verify it (every
 * image's size, checksum and header, every page run's checksum), then each
 * image is decoded record by record with the generic
 * protobuf printer, so that a new kind of image needs no code here beyond
 * one line in the table below.
 */
#include <fnmatch.h>
#include <stdio.h>
#include <string.h>

#include "context.h"
#include "infra/log.h"
#include "infra/pbprint.h"

struct image_type {
	const char *pattern;
	enum img_kind kind;
	const ProtobufCMessageDescriptor *head; /* first record, if it differs */
	const ProtobufCMessageDescriptor *desc;
};

static const struct image_type image_types[] = {
    {"core-*.img", IMG_CORE, NULL, &core_entry__descriptor},
    {"mm-*.img", IMG_MM, NULL, &mm_entry__descriptor},
    {"pagemap-*.img", IMG_PAGEMAP, &pagemap_head__descriptor, &pagemap_entry__descriptor},
    {"files.img", IMG_FILES, NULL, &file_entry__descriptor},
    {"fdinfo-*.img", IMG_FDINFO, NULL, &fd_entry__descriptor},
    {"fs-*.img", IMG_FS, NULL, &fs_entry__descriptor},
    {"pipes.img", IMG_PIPES, NULL, &pipe_entry__descriptor},
    {"stats-dump", IMG_STATS, NULL, &dump_stats__descriptor},
    {"pages-*.img", IMG_PAGES, NULL, NULL},
    {"ghost-files.img", IMG_GHOST, NULL, &ghost_entry__descriptor},
    {"ghost-data.img", IMG_GHOST_DATA, NULL, NULL},
    {"locks-*.img", IMG_LOCKS, &locks_head__descriptor, &lock_entry__descriptor},
    {"sysvshm.img", IMG_SYSVSHM, NULL, &sysvshm_entry__descriptor},
};

static const struct image_type *type_of(const char *name)
{
	for (size_t i = 0; i < sizeof(image_types) / sizeof(image_types[0]); i++)
		if (!fnmatch(image_types[i].pattern, name, 0))
			return &image_types[i];
	return NULL;
}

static void print_record(const ProtobufCMessage *msg, bool json, bool first)
{
	if (json) {
		fputs(first ? "" : ",", stdout);
		pbprint_json(stdout, msg, 2, 0);
	} else {
		pbprint_text(stdout, msg, 1);
	}
}

static int show_records(struct img_in *in, const struct image_type *t, bool json)
{
	ProtobufCMessage *msg;
	int r, n = 0;

	if (json)
		putchar('[');
	while ((r = img_in_msg(in, n == 0 && t->head ? t->head : t->desc, &msg)) == 1) {
		if (!json && n > 0)
			printf("  --\n");
		print_record(msg, json, n == 0);
		protobuf_c_message_free_unpacked(msg, NULL);
		n++;
	}
	if (json)
		putchar(']');
	img_in_free(in);
	return r;
}

static int show_image(struct img_dir *d, const ImageFile *f, bool json)
{
	const struct image_type *t = type_of(f->name);
	struct img_in in;

	if (!t)
		return err_set("%s/%s: unknown kind of image", d->path, f->name);
	if (!t->desc) {
		if (json)
			printf("{\"size\":%llu}", (unsigned long long)f->size);
		else
			printf("  raw page data, %llu bytes\n", (unsigned long long)f->size);
		return 0;
	}
	if (img_in_load(d, &in, f->name, t->kind))
		return -1;
	return show_records(&in, t, json);
}

/* stats-restore is written by each restore, after the inventory: not listed in it. */
static int show_restore_stats(struct img_dir *d, bool json)
{
	static const struct image_type t = {"stats-restore", IMG_STATS, NULL,
					    &restore_stats__descriptor};
	struct img_in in;
	int r = img_in_load_unlisted(d, &in, t.pattern, t.kind);

	if (r)
		return r > 0 ? 0 : -1;
	if (json)
		printf(",\"stats-restore\":");
	else
		printf("\nstats-restore:\n");
	return show_records(&in, &t, json);
}

int cryo_show(const struct cryo_opts *opts)
{
	struct img_dir d;
	bool json = opts->json;
	int ret = 0;

	if (restore_verify_images(opts))
		return 1;
	if (img_dir_open(&d, opts->images_dir)) {
		img_dir_close(&d);
		return 1;
	}
	if (json) {
		fputs("{\"images_dir\":", stdout);
		pbprint_json_string(stdout, opts->images_dir);
		fputs(",\"inventory\":", stdout);
		pbprint_json(stdout, &d.inventory->base, 0, 0);
		printf(",\"images\":{");
	} else {
		printf("checkpoint %s\ninventory.img:\n", opts->images_dir);
		pbprint_text(stdout, &d.inventory->base, 1);
	}
	for (size_t i = 0; i < d.inventory->n_files && !ret; i++) {
		const ImageFile *f = d.inventory->files[i];
		if (json)
			printf("%s\"%s\":", i ? "," : "", f->name);
		else
			printf("\n%s:\n", f->name);
		ret = show_image(&d, f, json);
	}
	if (json)
		putchar('}');
	if (!ret)
		ret = show_restore_stats(&d, json);
	if (json)
		printf("}\n");
	img_dir_close(&d);
	fflush(stdout);
	return ret ? 1 : 0;
}
