/*
 * runlock: one `cryo run` supervisor per directory, and `cryo checkpoint`
 * (runlock.c).
 */
#ifndef CRYO_RUNLOCK_H
#define CRYO_RUNLOCK_H

#include <stdbool.h>

#include "cryo/cryo.h"

/* Locks DIR/supervisor (the open dirfd of dir) for this process and writes
 * its pid there; the fd returned holds the lock (keep it open), -1 if
 * another supervisor holds it (the error names its pid). */
int runlock_claim(int dirfd, const char *dir);
/* After checkpoint number seq of this supervisor: "committed gen-NNNNNN"
 * or "failed: REASON", for `cryo checkpoint`. */
void runlock_report(int dirfd, unsigned seq, const char *what);
/* cryo checkpoint -D DIR: asks the supervisor of DIR for a checkpoint now
 * and waits for it; prints the generation committed. */
int cryo_checkpoint(const struct cryo_opts *opts);

#endif
