/*
 * external: endpoints outside the checkpoint (src/external.c).
 *
 * A pipe whose other end, or a unix stream socket whose peer, belongs to a
 * process outside the tree is saved as an endpoint outside: nothing of it
 * but its name. The dump notes each (external_dump_note) and, once the
 * checkpoint is committed, prints the --inherit-fd a restore must be
 * given for it. The restore parses --inherit-fd fd[N]:RESOURCE
 * (RESOURCE: pipe:[INODE], socket:[INODE] or a path, as CRIU), refuses
 * before anything is created when an endpoint outside was not given, and
 * hands every description an --inherit-fd names cryo's own fd N instead
 * of making it: the root takes it before it forks, and the processes that
 * held it inherit it.
 */
#ifndef CRYO_EXTERNAL_H
#define CRYO_EXTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "context.h"
struct fd_use;

/* ---- dump ---- */

/* Whether --external unix[INO] names the socket of inode ino. */
bool external_unix_named(const struct cryo_opts *opts, uint64_t ino);
/* --external: only unix[INO] is known; anything else is refused. */
int external_check_opts(const struct cryo_opts *opts);
/* Notes that fd of pid (what: "pipe:[5], whose reader is outside") is an
 * endpoint outside, to be restored with --inherit-fd fd[fd]:resource. */
int external_dump_note(struct dump_tree *tree, pid_t pid, int fd, const char *resource,
		       const char *what);
/* Once committed: one line per endpoint outside on standard output. */
void external_dump_report(const struct dump_tree *tree);
void external_dump_free(struct dump_tree *tree);

/* ---- restore ---- */

/* Parses --inherit-fd (each fd must be open in cryo, of the kind its
 * resource says), before the checkpoint is read. */
int external_parse(struct restore_tree *tree);
/* Once files.img is read, every endpoint outside must be given (else one
 * line naming each fd and the option): external_check() notes each
 * description (1: given or outside, so its kind has nothing to check), then
 * external_check_end() reports those missing and warns of unused specs. */
struct external_missing {
	char line[900];
	size_t missing, listed;
};
int external_check(struct restore_tree *tree, const FileEntry *fe, const struct fd_use *use,
		   struct external_missing *m);
int external_check_end(struct restore_tree *tree, const struct external_missing *m);
/* cryo's fd that an --inherit-fd gives in place of fe, or -1. */
int external_given(const struct restore_tree *tree, const FileEntry *fe);
/* In the root, before it forks: a new fd of the one given for fe. */
int external_open(const struct restore_tree *tree, const FileEntry *fe, int *fd);
void external_restore_free(struct restore_tree *tree);

#endif
