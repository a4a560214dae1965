/*
 * anonfd: what the kinds of description on the kernel's anonymous inode
 * share (anonfd.c): eventfd, signalfd, timerfd, epoll and inotify, each a
 * row of the table of kinds (fdkind.h) in its own file.
 *
 * fstat cannot tell them apart (no file type): each is recognised by the
 * link of its fd ("anon_inode:[eventfd]"); its state is read from
 * /proc/PID/fdinfo; the open flags they share (the access mode the kernel
 * gives them, and O_NONBLOCK) are checked and restored here, anything else
 * (O_ASYNC...) is refused.
 */
#ifndef CRYO_ANONFD_H
#define CRYO_ANONFD_H

#include "fdkind.h"

struct anonfd_type {
	const char *link; /* what /proc/PID/fd/N reads */
	const char *name;
	int accmode;	    /* the access mode the kernel gives the description */
	unsigned own_flags; /* more open flags the kind's own make gives back */
};

bool anonfd_recognise(const struct fd_probe *p, const struct anonfd_type *t);
/* Checks the flags, reads fdinfo and hands it to the kind's dump. */
int anonfd_dump(struct dump_ctx *ctx, struct dump_file *f, const struct fd_probe *p,
		const struct anonfd_type *t,
		int (*dump)(struct dump_ctx *ctx, struct dump_file *f, int fd, const char *info));
/* Checks the flags, then the kind's own state (check may be NULL). */
int anonfd_validate(const struct restore_tree *tree, const FileEntry *fe,
		    const struct anonfd_type *t,
		    int (*check)(const struct restore_tree *tree, const FileEntry *fe));
/* Makes it with the kind's make, then sets O_NONBLOCK as it was. */
int anonfd_open(struct restore_ctx *ctx, const FileEntry *fe, int *fd, const struct anonfd_type *t,
		int (*make)(struct restore_ctx *ctx, const FileEntry *fe, int *fd));
/* The four operations of an anon kind's row (recognise, dump, validate,
 * open) from its type and its own dump_state, check_state and make: the
 * row then names anon_recognise, anon_dump, anon_validate and anon_open. */
#define ANONFD_OPS(type, dump_state, check_state, make)                                            \
	static bool anon_recognise(const struct fd_probe *p)                                       \
	{                                                                                          \
		return anonfd_recognise(p, &type);                                                 \
	}                                                                                          \
	static int anon_dump(struct dump_ctx *ctx, struct dump_file *f, const struct fd_probe *p)  \
	{                                                                                          \
		return anonfd_dump(ctx, f, p, &type, dump_state);                                  \
	}                                                                                          \
	static int anon_validate(const struct restore_tree *tree, const FileEntry *fe,             \
				 const struct fd_use *use)                                         \
	{                                                                                          \
		(void)use;                                                                         \
		return anonfd_validate(tree, fe, &type, check_state);                              \
	}                                                                                          \
	static int anon_open(struct restore_ctx *ctx, const FileEntry *fe, int *fd)                \
	{                                                                                          \
		return anonfd_open(ctx, fe, fd, &type, make);                                      \
	}

/* The value after "key" in an fdinfo text, or NULL. */
const char *anonfd_field(const char *info, const char *key);
/* The first fd number a description is placed on in ctx (-1 if none). */
int anonfd_first_fd(const struct restore_ctx *ctx, uint32_t file_id);

#endif
