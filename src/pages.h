/* pages: the contents of memory (pages.c). */
#ifndef CRYO_PAGES_H
#define CRYO_PAGES_H

#include "context.h"

/* Writes ctx's pages: from its snapshot if it has one (snapshot.c), else
 * from the frozen process. */
int pages_dump(struct dump_ctx *ctx, const MmEntry *mm);
/* While frozen: copies what ctx's snapshot child lacks (snapshot_lacks). */
int pages_copy_frozen(struct dump_ctx *ctx, const MmEntry *mm);
void pages_dump_free(struct dump_tree *tree);
int pages_load(struct restore_ctx *ctx);
int pages_validate(struct restore_ctx *ctx);
/* The checksums of every run, on threads (spare: leave a CPU to the
 * restore itself); finish waits for them and reports a mismatch. */
int pages_verify_start(struct restore_tree *tree, bool spare);
int pages_verify_finish(struct restore_tree *tree);
void pages_verify_stop(struct restore_tree *tree);
int pages_restore(struct restore_ctx *ctx);
void pages_restore_free(struct restore_ctx *ctx);

#endif
