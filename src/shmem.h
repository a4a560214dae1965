/* shmem: memory objects shared between mappings or processes (shmem.c). */
#ifndef CRYO_SHMEM_H
#define CRYO_SHMEM_H

#include "context.h"

bool shmem_saved(const struct dump_tree *tree, const VmaEntry *v);
int shmem_mark_saved(struct dump_tree *tree, const VmaEntry *v);
int shmem_link_mapped(struct dump_tree *tree);
void shmem_dump_free(struct dump_tree *tree);
/* Which objects the root makes; they sit in slots after the inherited
 * descriptions' (shmem_nr_slots of them). */
int shmem_plan(struct restore_tree *tree);
size_t shmem_nr_slots(const struct restore_tree *tree);
int shmem_fd(const struct restore_ctx *ctx, const VmaEntry *v);
/* In the root, before it forks. */
int shmem_make_all(const struct restore_tree *tree);
void shmem_restore_free(struct restore_tree *tree);

#endif
