/*
 * fdkind: the table of the kinds of open file description.
 *
 * Each kind (a regular file, a pipe, a unix socket, an eventfd...) is one
 * row of operations, defined in the kind's own source file; fdkind.c lists
 * the rows. files.c, which owns the fd tables and the descriptions of a
 * tree, dispatches every step through the row of a description's kind and
 * knows nothing of any kind itself. Every operation may be NULL: the step
 * has nothing to do for that kind (a kind without recognise is only ever
 * set by another's dump: a memfd is found by the row of deleted files).
 *
 * The life of a description, and the operation each step calls:
 *
 *   dump, per fd:      recognise -> dump              (fills the file_entry)
 *   dump, per tree:    dump_finish                    (peers, queues, images)
 *                      dump_end                       (before release or kill)
 *                      free_entry, dump_free
 *   restore, in cryo:  load -> validate -> prepare    (before anything exists)
 *                      same_object, by_root,
 *                      needs_root, carries            (who makes it)
 *                      release                        (before the tree runs)
 *                      undo                           (the restore failed)
 *                      restore_free
 *   restore, in the new process:
 *                      open, or open_late once every process of the tree
 *                      exists; placed once all of the process's fds are
 *                      in place; drop_made for what was made ahead
 *   show:              describe
 *   --inherit-fd:      resource, outside (external.c: a description an
 *                      --inherit-fd names is cryo's fd, never made)
 */
#ifndef CRYO_FDKIND_H
#define CRYO_FDKIND_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/stat.h>

#include "context.h"

/* What the dump knows of an fd before its kind is known. */
struct fd_probe {
	pid_t pid;
	int fd;		       /* in the target; -1: a description no fd holds */
	int local_fd;	       /* cryo's duplicate of it */
	const struct stat *st; /* fstat of local_fd */
	unsigned flags;	       /* its open flags (fdinfo) */
	const char *link;      /* what /proc/PID/fd/N reads */
	/* a socket's SO_DOMAIN, SO_TYPE, SO_PROTOCOL, read once for every
	 * row that looks at them; -1 when not a socket */
	int sk_domain, sk_type, sk_proto;
};

/* How a dump ends, for the kinds that changed something while dumping. */
enum dump_end {
	DUMP_END_FAILED,  /* the tree goes on as it was: undo everything */
	DUMP_END_RELEASE, /* committed, --leave-running: the tree goes on */
	DUMP_END_KILL,	  /* committed: the tree is killed next */
};

/* The first fd that holds a description, for messages (fd -1: none). */
struct fd_use {
	pid_t pid;
	int fd;
};

struct fd_kind {
	const char *name; /* what a message calls it: "pipe", "eventfd", ... */
	FileKind kind;
	/* restore: descriptions of pass 0 are made first, then those of
	 * pass 1 (unix sockets: the fds in their queues must exist first) */
	int pass;
	bool by_root;	   /* always made by the root and inherited */
	bool never_shared; /* never made by the root: each process opens its own */

	/* ---- dump ---- */
	bool (*recognise)(const struct fd_probe *p);
	/* f->entry has id, flags, pos and mode; the kind fills the rest, and
	 * may set another kind than its own (a deleted file still linked
	 * elsewhere is a regular file) */
	int (*dump)(struct dump_ctx *ctx, struct dump_file *f, const struct fd_probe *p);
	/* once every process was seen: peers, queues, the kind's own images */
	int (*dump_finish)(struct dump_tree *tree);
	void (*dump_end)(struct dump_tree *tree, enum dump_end how);
	void (*free_entry)(FileEntry *fe);
	void (*dump_free)(struct dump_tree *tree);

	/* ---- restore, in cryo ---- */
	int (*load)(struct restore_tree *tree); /* the kind's own images */
	/* the description makes sense, and what it needs outside the
	 * checkpoint is there */
	int (*validate)(const struct restore_tree *tree, const FileEntry *fe,
			const struct fd_use *use);
	int (*prepare)(struct restore_tree *tree); /* once, before any process exists */
	/* two descriptions of one object (a pipe's ends, one inode): made together */
	bool (*same_object)(const FileEntry *a, const FileEntry *b);
	bool (*needs_root)(const struct restore_tree *tree, const FileEntry *fe);
	/* description id is in flight in one of this kind's queues */
	bool (*carries)(const struct restore_tree *tree, uint32_t id);
	int (*release)(struct restore_tree *tree);
	void (*undo)(struct restore_tree *tree);
	void (*restore_free)(struct restore_tree *tree);

	/* ---- restore, in the new process ---- */
	int (*open)(struct restore_ctx *ctx, const FileEntry *fe, int *fd);
	int (*open_late)(struct restore_ctx *ctx, const FileEntry *fe, int *fd);
	/* a kind with both open and open_late: this description opens late
	 * (NULL: every description of a kind with open_late does) */
	bool (*late_if)(const FileEntry *fe);
	int (*placed)(struct restore_ctx *ctx);
	void (*drop_made)(struct restore_ctx *ctx);

	/* ---- show ---- */
	void (*describe)(const FileEntry *fe, char *buf, size_t len);

	/* ---- endpoints outside the checkpoint (external.c) ---- */
	/* what --inherit-fd calls it: "pipe:[INO]", "socket:[INO]" (NULL: its
	 * path, if it has one) */
	void (*resource)(const FileEntry *fe, char *buf, size_t len);
	/* it is an endpoint outside the checkpoint, which a restore must be
	 * given with --inherit-fd */
	bool (*outside)(const struct restore_tree *tree, const FileEntry *fe);
};

/* The rows, one per kind (each defined in its kind's file). */
extern const struct fd_kind reg_kind, dir_kind, chr_kind;	       /* pathfile.c */
extern const struct fd_kind pipe_kind, fifo_kind;		       /* pipes.c */
extern const struct fd_kind tty_kind;				       /* tty.c */
extern const struct fd_kind pty_kind, devtty_kind;		       /* pty.c */
extern const struct fd_kind ghost_kind, memfd_kind, opath_kind;	       /* ghost.c */
extern const struct fd_kind eventfd_kind, signalfd_kind, timerfd_kind; /* eventfd.c ... */
extern const struct fd_kind epoll_kind, inotify_kind;
extern const struct fd_kind fanotify_kind;		   /* fanotify.c */
extern const struct fd_kind unix_kind;			   /* sockets/unix.c */
extern const struct fd_kind linkremap_kind;		   /* linkremap.c */
extern const struct fd_kind tcp_kind;			   /* sockets/tcp.c */
extern const struct fd_kind udp_kind, icmp_kind, raw_kind; /* sockets/dgram.c */
extern const struct fd_kind ghostnode_kind;		   /* ghostnode.c */
extern const struct fd_kind pidfd_kind;			   /* pidfd.c */
extern const struct fd_kind seccomp_notify_kind;	   /* seccomp_notify.c */
extern const struct fd_kind procfile_kind;		   /* procfile.c */
extern const struct fd_kind netlink_kind, packet_kind;	   /* sockets/netlink.c, packet.c */
/* pathfile.c: a character device that holds no state (/dev/null...) */
bool pathfile_safe_device(dev_t rdev);
/* pathfile.c: opens fe->path again with its flags (less those that only
 * matter at creation), at its offset if seek */
int pathfile_reopen(const FileEntry *fe, bool seek, int *fd);

/* The table, in the order tree-wide steps run (dump_finish: unix sockets,
 * which may add descriptions found in flight, before pipes). */
extern const struct fd_kind *const fd_kinds[];
extern const size_t fd_nr_kinds;

const struct fd_kind *fd_kind_of(FileKind kind);
/* The row that recognises the fd, or NULL. */
const struct fd_kind *fd_kind_recognise(const struct fd_probe *p);

#endif
