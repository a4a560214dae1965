/* vmaflags: VMA flags of a dump whose tree runs on, read before the freeze
 * and checked against the snapshot after the release (vmaflags.c). */
#ifndef CRYO_VMAFLAGS_H
#define CRYO_VMAFLAGS_H

#include "context.h"

/* Before the freeze: smaps of every process of the tree found running. */
void vmaflags_preread(struct dump_tree *tree);
/* Frozen: ctx->vmas from maps with the early flags, or from smaps. */
int vmaflags_read(struct dump_ctx *ctx);
/* After the release: the early flags against those of the snapshot child. */
int vmaflags_check(const struct dump_ctx *ctx, pid_t snapshot);
void vmaflags_free(struct dump_tree *tree);

#endif
