/* locks: file locks (locks.c). */
#ifndef CRYO_LOCKS_H
#define CRYO_LOCKS_H

#include "context.h"

/* Before the freeze (a warm-up of the kernel's listing, errors ignored),
 * then once frozen: /proc/locks read once for the whole dump. */
void locks_dump_warm(void);
int locks_dump_begin(struct dump_tree *tree);
void locks_dump_end(struct dump_tree *tree);
int locks_dump(struct dump_ctx *ctx);
/* Once every process was seen: the locks /proc/locks lists that no fd
 * shows (held through a file only mapped), then locks-PID.img of each. */
int locks_dump_tree(struct dump_tree *tree);
void locks_dump_free(struct dump_ctx *ctx);
int locks_validate(struct restore_ctx *ctx);
int locks_restore_child(struct restore_ctx *ctx);
void locks_restore_free(struct restore_ctx *ctx);

#endif
