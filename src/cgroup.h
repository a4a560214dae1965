/* cgroup: the cgroups of the tree's processes and --manage-cgroups (cgroup.c). */
#ifndef CRYO_CGROUP_H
#define CRYO_CGROUP_H

#include "context.h"

/* Records, in cgroup.img, the cgroups where the processes differ from cryo. */
int cgroup_dump(struct dump_tree *tree);
/* Loads cgroup.img and checks it against this machine and the mode. */
int cgroup_validate(struct restore_tree *tree);
/* Makes the missing cgroups, sets properties, moves the processes in. */
int cgroup_restore(struct restore_tree *tree);
void cgroup_restore_undo(struct restore_tree *tree);
void cgroup_restore_free(struct restore_tree *tree);

#endif
