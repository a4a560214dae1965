/* tree: the processes of a checkpoint and how they hang together (tree.c). */
#ifndef CRYO_TREE_H
#define CRYO_TREE_H

#include "context.h"

/* ---- dump ---- */
/* Freezes the root, then its children, then theirs (breadth first). */
int tree_freeze(struct dump_tree *tree);
/* Every group and session can be made again. */
int tree_check_ids(struct dump_tree *tree);
int tree_dump_zombie(struct dump_ctx *ctx);
void tree_dump_free(struct dump_tree *tree);

/* ---- restore ---- */
/* Links every process to its parent and plans the helpers of groups and
 * sessions whose leader has gone. */
int tree_restore_plan(struct restore_tree *tree);
void tree_restore_free(struct restore_tree *tree);
/* In a new process, before its setsid(): the kids it made before it (and
 * the processes of that session it makes for others through a helper). */
int tree_restore_early(struct restore_ctx *ctx);
/* In a new process: creates its other kids (each entered through
 * tree->child_main), with their groups and sessions, and waits for those
 * that come to it from elsewhere. */
int tree_restore_kids(struct restore_ctx *ctx);
/* Creates one kid (clone3 with its pid and the clone flags it was made
 * with, CLONE_FILES/CLONE_FS); the kid runs the tree's child_main. */
int tree_create_kid(struct restore_ctx *ctx, struct restore_ctx *kid);
/* In the parent, once its service fds and mapped files are set: creates
 * the kids sharing its fd table and waits until each opened its own. */
int tree_restore_sharers(struct restore_ctx *ctx);
/* Once its kids are made: joins its process group (making it again when
 * its leader has exited, keeping its own when it left it, treeplan.h). */
int tree_join_group(struct restore_ctx *ctx);
/* Once all its own state is back: stops the helpers of gone sessions and
 * of the group it left, when a member of each group is in it. */
int tree_restore_finish(struct restore_ctx *ctx);
/* A kid made through a helper waits until its parent took it in. */
void tree_wait_adopted(pid_t parent);

#endif
