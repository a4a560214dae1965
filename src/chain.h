/* chain: incremental checkpoints and their parent chain (chain.c). */
#ifndef CRYO_CHAIN_H
#define CRYO_CHAIN_H

#include "context.h"

/* ---- dump ---- */

/* Step 0: the parent checkpoint (--prev-images-dir, relative to -D) opened
 * and checked; nothing when there is none. */
int chain_dump_open(struct dump_tree *tree);
/* After the freeze: the parent's tracking taken (memtrack_take). */
int chain_dump_take(struct dump_tree *tree);
/* Does ctx's memory go as changes against the parent (tracked, and the
 * parent holds its pagemap)? Loads that pagemap the first time. */
bool chain_dump_incremental(struct dump_ctx *ctx);
/* The end of the longest stretch from addr (below end) over which the
 * parent either has data for every page (*covered) or for none. */
uint64_t chain_dump_cover(const struct dump_ctx *ctx, uint64_t addr, uint64_t end, bool *covered);
/* Before the commit: chain.img (parent, the tracking handed over) and the
 * `parent` symlink, as CRIU makes it. */
int chain_dump_write(struct dump_tree *tree);
void chain_dump_free(struct dump_tree *tree);

/* ---- restore ---- */

/* In pages_validate, once ctx's pages image is open: runs that are the
 * parent's are resolved level by level, every parent run used verified
 * by its checksum, and ctx's pages image becomes one memfd holding its own
 * runs and the parents' (in address order; the resolved runs keep in_parent
 * and are not checked again), so that the rest of the restore sees an
 * ordinary image. Nothing for a checkpoint
 * without a parent. */
int chain_resolve(struct restore_ctx *ctx);
void chain_restore_free(struct restore_tree *tree);

#endif
