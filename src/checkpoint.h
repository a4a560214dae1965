/* checkpoint: a checkpoint read from its directory (checkpoint.c). */
#ifndef CRYO_CHECKPOINT_H
#define CRYO_CHECKPOINT_H

#include "context.h"

/* An empty tree for a restore with those options (nothing open yet). */
void checkpoint_init(struct restore_tree *tree, const struct cryo_opts *opts);
/* Opens the directory, loads every image of every process and links the
 * tree; nothing is created. */
int checkpoint_load(struct restore_tree *tree);
void checkpoint_free(struct restore_tree *tree);
/* Every integrity check a restore makes, without creating anything (show). */
int checkpoint_verify(const struct cryo_opts *opts);

#endif
