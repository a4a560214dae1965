/* vmaflags: VMA flags of a dump whose tree runs on, read before the freeze
 * and checked against the snapshot after the release (vmaflags.c). */
#ifndef CRYO_VMAFLAGS_H
#define CRYO_VMAFLAGS_H

#include "context.h"

/* Before the freeze: smaps of every process of the tree found running. */
void vmaflags_preread(struct dump_tree *tree);
/* Frozen: ctx->vmas from maps with the early flags, or from smaps. */
int vmaflags_read(struct dump_ctx *ctx);
/* Before the pages are read: the early flags against those of the snapshot
 * child source (snapshot true; the tree runs on) or of the process itself,
 * still frozen (no snapshot). */
int vmaflags_check(const struct dump_ctx *ctx, pid_t source, bool snapshot);
void vmaflags_free(struct dump_tree *tree);

#endif
