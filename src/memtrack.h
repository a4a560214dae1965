/* memtrack: which pages a process wrote since its last checkpoint
 * (userfaultfd async write-protect, read with PAGEMAP_SCAN; memtrack.c). */
#ifndef CRYO_MEMTRACK_H
#define CRYO_MEMTRACK_H

#include "chain.pb-c.h"
#include "context.h"

/* Called for each range of pages [start, end) written since the last arm. */
typedef int (*memtrack_range_fn)(void *arg, uint64_t start, uint64_t end);

/* After the freeze: the userfaultfds the parent's holder keeps (chain.img's
 * record) are taken for the processes they still track, and the holder is
 * killed (taking the tracking consumes it). Says so when it is gone. */
int memtrack_take(struct dump_tree *tree, const ChainEntry *parent);
/* While the process runs injected calls: a userfaultfd of its own mm for
 * the tracking to come, if it has none taken and tracking is asked for. */
int memtrack_inject(struct dump_ctx *ctx);
/* Is ctx's memory tracked since the parent (its uffd was taken)? */
bool memtrack_tracked(const struct dump_ctx *ctx);
/* While the process is frozen, before it is let go (with a copy-on-write
 * snapshot: when the snapshot is taken): the pages each VMA wrote since the
 * parent are read and re-armed in one PAGEMAP_SCAN, and kept; then every
 * private VMA is registered and its present pages armed for the next
 * checkpoint (with --track-mem). A write after this point is the next
 * checkpoint's. */
int memtrack_freeze_point(struct dump_ctx *ctx);
/* The pages of v written since the parent, as the freeze point read them:
 * 1 when v is tracked, 0 when it is not (a new, moved or forked-into VMA:
 * all of it is to be saved), -1 on error. */
int memtrack_written(struct dump_ctx *ctx, const VmaEntry *v, memtrack_range_fn fn, void *arg);
/* Before the commit: the armed userfaultfds go to a new holder process,
 * recorded in ce. */
int memtrack_hand_over(struct dump_tree *tree, ChainEntry *ce);
/* On a failed dump: a holder made is killed; then everything is freed. */
void memtrack_abort(struct dump_tree *tree);
void memtrack_free(struct dump_tree *tree);
/* /proc/PID/stat's start time (field 22), or 0. */
uint64_t memtrack_start_time(pid_t pid);

#endif
