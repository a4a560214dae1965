/*
 * snapshot: a copy-on-write image of a frozen process's memory, so that its
 * pages can be read and written after the process was let go (dump -R, and
 * pre-dump), and still be those of the one moment of the checkpoint.
 *
 * snapshot_take() (while the tree is frozen, during the injection) makes the
 * target fork a child that only waits on a pipe cryo holds, and reads
 * nothing of the program's; its address space is the snapshot, read by
 * pages.c through /proc/CHILD/mem (snapshot_source_pid). Memory a fork does
 * not carry over (shared, MADV_DONTFORK, MADV_WIPEONFORK, MAP_DROPPABLE) is
 * copied into cryo while frozen (snapshot_copy_add, filled by pages.c).
 * snapshot_guard() hands every snapshot of the tree to a guardian process;
 * snapshot_release_all() ends them, and the guardian reaps each child in
 * its parent by an injected wait4 — as it does by itself if cryo dies.
 */
#ifndef CRYO_SNAPSHOT_H
#define CRYO_SNAPSHOT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "context.h"

/* A VMA the child has not got, copied while frozen: its present ranges
 * (ranges[2i], ranges[2i+1]) and their bytes one after the other. */
struct snapshot_copy {
	uint64_t start;
	size_t nr, cap;
	uint64_t *ranges;
	unsigned char *data;
	size_t len;
};

struct snapshot {
	pid_t pid;	    /* the child, in cryo's pid namespace */
	long pid_in_target; /* the same, as its parent sees it (its wait4) */
	int pidfd;	    /* the child's */
	int hold_fd;	    /* the pipe's write end it waits on; -1: the guardian has it */
	size_t nr_copies;
	struct snapshot_copy *copies;
};

/* The comm of a snapshot child, as ps shows it. */
#define SNAPSHOT_COMM "cryo-snapshot"

/* Takes ctx's snapshot (ctx->snap), injecting into the frozen target. A
 * process that cannot have one (seccomp filters, no executable memory,
 * fork refused) gets none and a log line: its memory is read while frozen.
 * -1 only if the injection itself failed. */
int snapshot_take(struct dump_ctx *ctx);
/* Where ctx's memory is read from: its snapshot child, or ctx itself. */
pid_t snapshot_source_pid(const struct dump_ctx *ctx);
/* A VMA the snapshot child does not hold as the target had it. */
bool snapshot_lacks(const VmaEntry *v);
/* A new, empty copy for the VMA at start; NULL (error set) if out of memory. */
struct snapshot_copy *snapshot_copy_add(struct snapshot *s, uint64_t start);
/* Adds a range and room for its bytes; returns where they go, or NULL. */
unsigned char *snapshot_copy_range(struct snapshot_copy *c, uint64_t start, uint64_t end);
/* The copy of the VMA at start, or NULL. */
const struct snapshot_copy *snapshot_copy_of(const struct snapshot *s, uint64_t start);
/* Forks the guardian that holds every snapshot of the tree from now on. */
int snapshot_guard(struct dump_tree *tree);
/* Ends every snapshot of the tree and waits until each child is gone and
 * reaped (done by the guardian; a stop of a few hundred microseconds of one
 * thread of its parent for the wait4). Call it once the tree is released
 * (no longer traced by cryo); safe to call more than once. */
void snapshot_release_all(struct dump_tree *tree);

#endif
