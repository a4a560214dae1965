/* ghostnode: directories and device nodes removed while open, or while a
 * process's working directory (ghostnode.c). */
#ifndef CRYO_GHOSTNODE_H
#define CRYO_GHOSTNODE_H

#include <stdint.h>

/* Makes the directory or device node PATH again for a moment (its missing
 * parents too), with MODE (S_IFDIR or S_IFCHR and permissions), RDEV, UID
 * and GID, opens it with FLAGS and removes what it made: an fd of a node
 * removed from the file system, which reads "PATH (deleted)". -1 with the
 * error recorded. */
int ghostnode_open(const char *path, unsigned mode, uint64_t rdev, unsigned uid, unsigned gid,
		   int flags);
/* What a restore needs to make PATH again: the name must be free. */
int ghostnode_check(const char *path);

#endif
