/* child: what each new process of a restore does itself (child.c). */
#ifndef CRYO_CHILD_H
#define CRYO_CHILD_H

#include "context.h"

/* Sets the tree's callbacks (tree->child_main, tree->child_fail). */
void child_setup(struct restore_tree *tree);
/* Reports to cryo: the pid, then an error line, or nothing when ready. */
void child_report(struct restore_tree *tree, pid_t pid, const char *msg);

#endif
