/*
 * show: print a checkpoint for a person (text) or a program (--json).
 *
 * The checkpoint is first verified as a restore would verify it (every
 * image's size, checksum and header, every page run's checksum), then each
 * image is decoded record by record with the generic
 * protobuf printer, so that a new kind of image needs no code here: its row
 * in the registry of images (images.c) says how to read it.
 */
#include <stdio.h>
#include <string.h>

#include "checkpoint.h"
#include "images.h"
#include "infra/log.h"
#include "infra/pbprint.h"

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
	const struct image_type *t = image_type_of(f->name);
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
	const struct image_type *t = image_type(IMAGE_STATS_RESTORE);
	struct img_in in;
	int r = img_in_load_unlisted(d, &in, t->name, t->kind);

	if (r)
		return r > 0 ? 0 : -1;
	if (json)
		printf(",\"stats-restore\":");
	else
		printf("\nstats-restore:\n");
	return show_records(&in, t, json);
}

int cryo_show(const struct cryo_opts *opts)
{
	struct img_dir d;
	bool json = opts->json;
	int ret = 0;

	if (checkpoint_verify(opts))
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
