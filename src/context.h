/*
 * context: the one context a dump or a restore passes along, and lookups
 * over it (context.c).
 *
 * A dump has a dump_tree (what all its processes share: options, the image
 * directory, the open file descriptions of the whole tree) and one dump_ctx
 * per process; a restore has a restore_tree and one restore_ctx per
 * process. Each kind of state keeps its part here, in fields named after
 * it, or behind an opaque pointer that only its own file knows the layout
 * of. The functions of each kind of state are declared in its own header
 * (mm.h, files.h, fdkind.h, ...); docs/design.md says who calls what.
 */
#ifndef CRYO_CONTEXT_H
#define CRYO_CONTEXT_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "cryo/cryo.h"
#include "infra/image.h"
#include "infra/inject.h"
#include "infra/kerndat.h"
#include "infra/proc.h"

#include "core.pb-c.h"
#include "files.pb-c.h"
#include "fs.pb-c.h"
#include "locks.pb-c.h"
#include "mm.pb-c.h"
#include "pagemap.pb-c.h"
#include "stats.pb-c.h"

#define PAGE_SIZE_4K 4096ULL

/* What a dump collects about one open file description before writing it. */
struct dump_file {
	FileEntry entry;
	int local_fd;	 /* the description, duplicated into cryo with pidfd_getfd */
	pid_t first_pid; /* the process it was first seen in */
	int first_fd;	 /* and its fd there (-1: held by no fd) */
	dev_t dev;	 /* its inode (fstat), the first key of file_order */
	ino_t ino;
	char path[4096];
};

/* One thread of the target while it is dumped. threads[0] is the leader,
 * whose injection is the context's own (ctx->inj). */
struct dump_thread {
	pid_t tid;
	bool seized;
	bool injecting;
	struct inject own_inj;
	struct inject *inj;
	ThreadEntry *e;
};

/* One thread of the new process. threads[0] is the leader. */
struct restore_thread {
	pid_t tid;
	const ThreadEntry *e;
	bool created; /* exists, and is stopped under the restorer's ptrace */
	struct inject own_inj;
	struct inject *inj;
};

/* Opaque state of the kinds of state that keep some (their own files). */
struct pipes_dump;
struct pipes_restore;
struct pipes_made;
struct ghost_dump;
struct vmaflags_cache;
struct proc_locks;
struct ghost_restore;
struct ghost_made;
struct unix_made;
struct pty_made;
struct tcp_dump;
struct tcp_restore;
struct shmem_range;
struct shmem_restore;
struct sysvshm_restore;
struct cgroup_restore;
struct pfn_map;
struct pages_verify;
struct chain_dump;
struct chain_cover;
struct chain_restore;
struct memtrack;
struct memtrack_scan;
struct files_use;

/* What all processes of one dump share. */
struct dump_tree {
	const struct cryo_opts *opts;
	struct cryo_kerndat kd;
	struct img_dir dir;
	DumpStats stats;
	unsigned long long t_start, t_frozen;
	int nr_procs;
	struct dump_ctx **procs; /* procs[0] is the root; parents before children */
	/* files.c: the open file descriptions of the whole tree */
	int nr_files;
	struct dump_file *files;
	int *file_order;		 /* indexes into files, by inode, then kcmp */
	struct vmaflags_cache *vmaflags; /* vmaflags.c: smaps read before the freeze */
	struct proc_locks *proc_locks;	 /* locks.c: /proc/locks, read once the tree is frozen */
	struct pipes_dump *pipes;	 /* pipes.c */
	struct ghost_dump *ghosts;	 /* ghost.c: deleted files and memfds */
	struct tcp_dump *tcp;		 /* sockets/tcp.c: repair mode, the network lock */
	/* sockets/unix_backlog.c: connections taken from listeners' backlogs */
	struct unix_backlog *unix_backlog;
	/* external.c: endpoints outside the checkpoint, to print */
	struct external_dump *external;
	/* shmem.c: shmem objects already saved (id, range of the object) */
	int nr_shmem_saved;
	struct shmem_range *shmem_saved;
	struct pfn_map *saved_pfns; /* pages.c: pages already saved, by frame */
	struct chain_dump *chain;   /* chain.c: the parent checkpoint, or NULL */
	struct memtrack *track;	    /* memtrack.c: the holder handed the tracking */
	/* snapshot.c: the guardian holding the snapshots (0: none), the pipe
	 * whose closing tells it to end them, its pidfd */
	pid_t snap_guard;
	int snap_guard_fd, snap_guard_pidfd;
	bool released; /* let go before the memory was written */
	unsigned long long t_released;
};

/* One process of the tree being dumped. */
struct dump_ctx {
	const struct cryo_opts *opts;
	struct dump_tree *tree;
	pid_t pid;
	int pidfd;
	bool zombie;	 /* nothing to seize: only its ids and exit status are saved */
	char state;	 /* from /proc/PID/stat before the freeze: R, S, D, T, Z... */
	int stop_signal; /* state T: the signal that stopped it (threads.c) */
	struct proc_stat stat;
	struct proc_status status;
	struct proc_vmas vmas;
	bool vmaflags_early; /* vmas' flags were read before the freeze (vmaflags.c) */
	struct inject inj;
	bool injecting;
	int nr_threads;
	struct dump_thread *threads;
	CoreEntry *core; /* filled by cpu, signals, timers, task, creds, threads */
	FsEntry *fs;	 /* cwd, root and umask, written with the memory (fs.c) */
	MmEntry *mm;
	struct snapshot *snap; /* snapshot.c: its memory as frozen, or NULL */
	/* files.c: this process's fd table */
	int nr_fds;
	FdEntry *fds;
	int nr_fd_list;		   /* its fd numbers, listed while injecting */
	int *fd_list;		   /* ... ascending */
	unsigned char *fd_cloexec; /* ... and each one's FD_CLOEXEC */
	/* locks.c */
	int nr_locks;
	LockEntry *locks;
	/* memtrack.c: this process's userfaultfd (-1: none); taken: it tracked
	 * the memory since the parent checkpoint */
	int track_uffd;
	bool track_taken;
	struct memtrack_scan *track_scan; /* memtrack.c: what the freeze point read */
	struct chain_cover *chain;	  /* chain.c: what the parent has of its pages */
};

/* cow.c: a VMA staged so that it is shared copy-on-write after fork. */
struct cow_vma {
	uint64_t at;	/* where its staged copy is, in the staging region */
	bool staged;	/* moved there by mremap rather than mapped */
	bool inherited; /* the parent's copy, taken over */
};

struct restore_ctx;
/* The new process's own part of the restore (child.c), entered by the
 * parent that created it (tree.c); never returns. */
typedef void (*child_main_fn)(struct restore_ctx *ctx, pid_t parent);
/* Reports ctx's recorded error to cryo and exits (child.c). */
typedef void (*child_fail_fn)(struct restore_ctx *ctx);

/* What all processes of one restore share. */
struct restore_tree {
	const struct cryo_opts *opts;
	struct cryo_kerndat kd;
	struct img_dir dir;
	RestoreStats stats;
	unsigned long long t_start;
	size_t nr_procs;
	struct restore_ctx **procs;  /* procs[0] is the root; parents before children */
	struct restore_ctx **by_pid; /* the same, sorted by pid (context.c) */
	/* files.c: files.img, the descriptions of the whole tree, by id - 1 */
	size_t nr_files;
	FileEntry **files;
	struct files_use *file_uses;  /* files.c: who holds each, by id - 1 */
	struct pipes_restore *pipes;  /* pipes.c: pipes.img */
	struct ghost_restore *ghosts; /* ghost.c: ghost-files.img, ghost-data.img */
	int tty_fd;		      /* tty.c: shell job: cryo's terminal, or -1 */
	struct tcp_restore *tcp;      /* sockets/tcp.c: netlock.img */
	/* external.c: the --inherit-fd given */
	struct external_restore *external;
	child_main_fn child_main;
	child_fail_fn child_fail;
	int report[2];	  /* SOCK_SEQPACKET: every new process reports on it */
	int hold[2];	  /* a pipe new processes wait on until seized */
	int late[2];	  /* a pipe they wait on before their late opens */
	bool has_late;	  /* some description is opened late (files.c) */
	int inherit_base; /* descriptions shared between processes sit here */
	size_t nr_inherit;
	uint32_t *inherit_ids;	     /* file ids of those descriptions, by slot */
	struct shmem_restore *shmem; /* shmem.c: objects, slots after those */
	struct pages_verify *verify; /* pages.c: the checksum threads */
	/* cow.c: the staging region of copy-on-write memory (0 long: none) */
	uint64_t cow_base, cow_len;
	struct sysvshm_restore *sysvshm; /* sysvshm.c: the segments */
	struct cgroup_restore *cgroup;	 /* cgroup.c: cgroup.img, what was made */
	struct chain_restore *chain;	 /* chain.c: the parent checkpoints */
	/* tree.c: shared by every new process, by index in procs: 1 once that
	 * subreaper has all its adopted kids and is one no more */
	unsigned char *adopted_all;
};

/* One process of the tree being restored. */
struct restore_ctx {
	const struct cryo_opts *opts;
	struct restore_tree *tree;
	pid_t pid;
	bool zombie;
	/* tree.c */
	struct restore_ctx *parent;
	size_t nr_kids;
	struct restore_ctx **kids; /* in creation order */
	size_t nr_sessions;
	pid_t *sessions;    /* sessions whose leader has gone, made for the kids */
	bool opens_group;   /* makes its group again, whose leader has gone */
	bool keeps_group;   /* makes its own group, which it then leaves */
	pid_t keeper;	    /* the helper holding that group until a member is in */
	int birth;	    /* how it is made (enum tp_birth, treeplan.h) */
	bool maker_early;   /* TP_ADOPTED: its maker makes it before its setsid() */
	pid_t start_sid;    /* the session it is made in (treeplan.h) */
	bool maker_sibling; /* TP_ADOPTED: its maker is a kid of its parent */
	/* whose memory it starts with: its parent's, or its maker's (cow.c) */
	const struct restore_ctx *memory_from;
	bool adoptive; /* some kid comes to it from elsewhere: a subreaper meanwhile */
	size_t index;  /* in tree->procs */
	size_t nr_fosters;
	struct restore_ctx **fosters; /* TP_ADOPTED processes this one makes */
	CoreEntry *core;
	MmEntry *mm;
	FsEntry *fs;
	/* pages.c */
	size_t nr_runs;
	PagemapEntry **runs;
	int pages_fd;			/* the pages image, open in cryo (and every new process) */
	const unsigned char *pages_map; /* the whole pages image, mapped read-only */
	uint64_t pages_size;
	/* files.c: the fd table */
	size_t nr_fds;
	FdEntry **fds;
	/* the new process */
	pid_t child;
	bool seized;
	int svc_base;	     /* first fd number of the service fds in the child */
	int *vma_fd;	     /* per VMA: service fd of its file in the child, or -1 */
	struct cow_vma *cow; /* per VMA: cow.c's plan */
	int exe_fd;	     /* service fd of the executable, for PR_SET_MM_MAP */
	int stage_base;	     /* child: fds at or above it are temporary */
	uint64_t tramp;	     /* trampoline: a page holding `syscall`, then scratch */
	uint64_t tramp_len;
	struct inject inj;
	size_t nr_threads;
	struct restore_thread *threads;
	/* child side: the int options a new inet socket of each kind has
	 * (sockets/inet.c, read once on a template socket) */
	size_t nr_inet_defaults;
	struct inet_default {
		int family, type, proto, level, name, value;
	} inet_defaults[64];
	/* child side, while placing its fds: descriptions made ahead of their
	 * turn, on temporary fds (pipes.c, sockets/unix.c, ghost.c) */
	struct pipes_made *pipes_made;
	struct unix_made *unix_made;
	struct ghost_made *ghost_made;
	struct pty_made *pty_made; /* pty.c: pairs the root made */
	int share_ready_fd;	   /* share.c: a fd-sharing kid tells its parent here */
	/* locks.c: locks-PID.img */
	bool file_locks;
	size_t nr_locks;
	LockEntry **locks;
};

/* Service fds sit above every fd the target had; svc_base + SVC_* */
enum { SVC_EXE = 0, SVC_REPORT = 1, SVC_TTY = 2, SVC_HOLD = 3, SVC_LATE = 4, SVC_VMA_FIRST = 5 };
#define TRAMP_LEN	(64 * 4096ULL)
#define TRAMP_BATCH_OFF 16 /* the batch code, after the trampoline's `syscall` */

/* ---- lookups (context.c) ---- */

/* The process of the tree with that pid, or NULL (binary search once the
 * tree is indexed, ctx_index_by_pid). */
struct restore_ctx *ctx_proc(const struct restore_tree *tree, pid_t pid);
int ctx_index_by_pid(struct restore_tree *tree);
/* The description of the tree with that id, or NULL. */
const FileEntry *ctx_file(const struct restore_tree *tree, uint32_t id);
/* The fd slot where a description shared between processes is inherited, or -1. */
int ctx_inherited_fd(const struct restore_tree *tree, uint32_t id);
/* The index of the VMA holding addr, or -1 (the VMAs are sorted). */
long ctx_vma_index(const MmEntry *mm, uint64_t addr);
/* The index of ctx's first page run at or above addr (nr_runs: none; the
 * runs are in address order, pages_validate checks it). */
size_t ctx_first_run_from(const struct restore_ctx *ctx, uint64_t addr);

#endif
