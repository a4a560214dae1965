/* sysvshm: System V shared memory segments (sysvshm.c). */
#ifndef CRYO_SYSVSHM_H
#define CRYO_SYSVSHM_H

#include "context.h"

int sysvshm_dump(struct dump_tree *tree);
int sysvshm_validate(struct restore_tree *tree);
int sysvshm_restore(struct restore_tree *tree);
int sysvshm_mark_removed(const struct restore_tree *tree);
void sysvshm_restore_undo(struct restore_tree *tree);
void sysvshm_restore_free(struct restore_tree *tree);
int sysvshm_attach(struct restore_ctx *ctx, const VmaEntry *v);

#endif
