/* cow: private memory shared copy-on-write again after restore (cow.c). */
#ifndef CRYO_COW_H
#define CRYO_COW_H

#include "context.h"

int cow_plan(struct restore_tree *tree);
int cow_stage(struct restore_ctx *ctx);
bool cow_in_region(const struct restore_tree *tree, uint64_t start, uint64_t len);
uint64_t cow_staged_at(const struct restore_ctx *ctx, uint64_t addr);
void cow_free(struct restore_ctx *ctx);

#endif
