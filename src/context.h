/*
 * The one context a dump or a restore passes along.
 *
 * Each kind of state lives in its own file (mm.c, pages.c, cpu.c, signals.c,
 * timers.c, task.c, creds.c, files.c, pipes.c, tty.c, fs.c) and offers up to
 * four entry points, called by the orchestrators dump.c and restore.c:
 *   X_dump(struct dump_ctx *)           collect from the stopped target
 *   X_validate(struct restore_ctx *)    check the images and the environment
 *   X_restore_child(struct restore_ctx *)  in the new process, ordinary C
 *   X_restore(struct restore_ctx *)     from the restorer, by injected syscalls
 * and show.c prints every image generically. Per-process scalar state goes into
 * the process's CoreEntry (core-PID.img); larger state has its own image.
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
#include "ghost.pb-c.h"
#include "locks.pb-c.h"
#include "mm.pb-c.h"
#include "pagemap.pb-c.h"
#include "pipes.pb-c.h"
#include "stats.pb-c.h"
#include "sysvshm.pb-c.h"

#define PAGE_SIZE_4K 4096ULL

/* What a dump collects about one open file description before writing it. */
struct dump_file {
	FileEntry entry;
	int local_fd;	 /* the description, duplicated into cryo with pidfd_getfd */
	pid_t first_pid; /* the process it was first seen in */
	int first_fd;	 /* and its fd there */
	char path[4096];
};

/* A pipe the new process created while placing its fds. */
struct made_pipe {
	uint64_t ino;
	int rfd, wfd;
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
	int *file_order; /* indexes into files, in the kernel's order (kcmp) */
	/* pipes.c */
	int nr_pipes;
	PipeEntry *pipes;
	/* ghost.c: the inodes of deleted files and memfds */
	int nr_ghosts;
	struct dump_ghost *ghosts;
	/* shmem.c: shmem objects already saved (id, range of the object) */
	int nr_shmem_saved;
	struct shmem_range *shmem_saved;
	/* pages.c: pages already saved, by physical frame */
	struct pfn_map *saved_pfns;
};

/* One process of the tree being dumped. */
struct dump_ctx {
	const struct cryo_opts *opts;
	struct dump_tree *tree;
	pid_t pid;
	int pidfd;
	bool zombie; /* nothing to seize: only its ids and exit status are saved */
	char state;  /* from /proc/PID/stat before the freeze: R, S, D, T, Z... */
	struct proc_stat stat;
	struct proc_status status;
	struct proc_vmas vmas;
	struct inject inj;
	bool injecting;
	int nr_threads;
	struct dump_thread *threads;
	CoreEntry *core; /* filled by cpu, signals, timers, task, creds, threads */
	MmEntry *mm;
	/* files.c: this process's fd table */
	int nr_fds;
	FdEntry *fds;
	/* locks.c */
	int nr_locks;
	LockEntry *locks;
};

/* A shmem object (MAP_SHARED|MAP_ANONYMOUS) some process maps. */
struct tree_shmem {
	uint64_t id, size;
	pid_t first_pid;
	bool shared; /* mapped by more than one process, or a memfd: one memfd for all */
	const char *memfd_name;
	bool sealable;
};

/* cow.c: a VMA staged so that it is shared copy-on-write after fork. */
struct cow_vma {
	uint64_t at;	/* where its staged copy is, in the staging region */
	bool staged;	/* moved there by mremap rather than mapped */
	bool inherited; /* the parent's copy, taken over */
};

/* What all processes of one restore share. */
struct restore_tree {
	const struct cryo_opts *opts;
	struct cryo_kerndat kd;
	struct img_dir dir;
	RestoreStats stats;
	unsigned long long t_start;
	size_t nr_procs;
	struct restore_ctx **procs;  /* procs[0] is the root; parents before children */
	struct restore_ctx **by_pid; /* the same, sorted by pid (tree.c) */
	bool lists_loaded;	     /* files.img and pipes.img, which every process shares */
	size_t nr_files, nr_pipes;
	FileEntry **files;
	PipeEntry **pipes;
	int report[2];	  /* SOCK_SEQPACKET: every new process reports on it */
	int hold[2];	  /* a pipe new processes wait on until seized */
	int inherit_base; /* descriptions shared between processes sit here */
	size_t nr_inherit;
	uint32_t *inherit_ids; /* file ids of those descriptions, by slot */
	size_t nr_shmem;       /* anonymous shared memory objects, slots after those */
	struct tree_shmem *shmem;
	struct pages_verify *verify; /* pages.c: the checksum threads */
	/* cow.c: the staging region of copy-on-write memory (0 long: none) */
	uint64_t cow_base, cow_len;
	/* sysvshm.c: the segments, and which of them this restore made */
	size_t nr_sysvshm;
	SysvshmEntry **sysvshm;
	bool *sysvshm_made;
};

/* One process of the tree being restored. */
struct restore_ctx {
	const struct cryo_opts *opts;
	struct restore_tree *tree;
	pid_t pid;
	bool zombie;
	struct restore_ctx *parent;
	size_t nr_kids;
	struct restore_ctx **kids; /* in creation order */
	size_t nr_helpers;
	pid_t *helpers; /* groups whose leader has gone, made for the kids */
	size_t nr_sessions;
	pid_t *sessions; /* sessions whose leader has gone, made for the kids */
	CoreEntry *core;
	MmEntry *mm;
	FsEntry *fs;
	size_t nr_runs;
	PagemapEntry **runs;
	int pages_fd;			/* the pages image, open in cryo (and every new process) */
	const unsigned char *pages_map; /* the whole pages image, mapped read-only */
	uint64_t pages_size;
	size_t nr_files;
	FileEntry **files;
	size_t nr_fds;
	FdEntry **fds;
	size_t nr_pipes;
	PipeEntry **pipes;
	/* the new process */
	pid_t child;
	bool seized;
	int svc_base;	     /* first fd number of the service fds in the child */
	int *vma_fd;	     /* per VMA: service fd of its file in the child, or -1 */
	struct cow_vma *cow; /* per VMA: cow.c's plan */
	int exe_fd;	     /* service fd of the executable, for PR_SET_MM_MAP */
	int tty_fd;	     /* shell job: the caller's terminal, or -1 */
	int stage_base;	     /* child: fds at or above it are temporary */
	size_t nr_made_pipes;
	struct made_pipe *made_pipes; /* child: pipes created so far */
	uint64_t tramp;		      /* trampoline: a page holding `syscall`, then scratch */
	uint64_t tramp_len;
	struct inject inj;
	size_t nr_threads;
	struct restore_thread *threads;
	/* sockets/unix.c (child): the unix sockets made, held on temporary fds */
	size_t nr_unix_made;
	struct unix_made *unix_made;
	/* ghost.c: ghost-files.img, ghost-data.img mapped, and (child) the
	 * descriptions already opened, on temporary fds */
	size_t nr_ghosts;
	GhostEntry **ghosts;
	const unsigned char *ghost_data;
	uint64_t ghost_data_size;
	size_t nr_ghost_made;
	struct ghost_made *ghost_made;
	/* locks.c: locks-PID.img */
	bool file_locks;
	size_t nr_locks;
	LockEntry **locks;
};

/* Service fds sit above every fd the target had; svc_base + SVC_* */
enum { SVC_EXE = 0, SVC_REPORT = 1, SVC_TTY = 2, SVC_HOLD = 3, SVC_VMA_FIRST = 4 };
#define TRAMP_LEN	(64 * 4096ULL)
#define TRAMP_BATCH_OFF 16 /* the batch code, after the trampoline's `syscall` */

/* mm.c */
int mm_dump(struct dump_ctx *ctx, MmEntry *mm);
long mm_vma_index(const MmEntry *mm, uint64_t addr);
int mm_validate(struct restore_ctx *ctx);
int mm_restore_plan(struct restore_ctx *ctx);
int mm_restore_child(struct restore_ctx *ctx);
int mm_restore(struct restore_ctx *ctx);
int mm_restore_finish(struct restore_ctx *ctx);
/* pages.c */
int pages_dump(struct dump_ctx *ctx, const MmEntry *mm);
int pages_verify_start(struct restore_tree *tree, bool spare);
int pages_verify_finish(struct restore_tree *tree);
void pages_verify_stop(struct restore_tree *tree);
size_t pages_first_run_from(const struct restore_ctx *ctx, uint64_t addr);
int pages_validate(struct restore_ctx *ctx);
int pages_restore(struct restore_ctx *ctx);
void pages_restore_free(struct restore_ctx *ctx);
void pages_dump_free(struct dump_tree *tree);
/* shmem.c */
bool shmem_saved(const struct dump_tree *tree, const VmaEntry *v);
int shmem_mark_saved(struct dump_tree *tree, const VmaEntry *v);
int shmem_link_mapped(struct dump_tree *tree);
void shmem_dump_free(struct dump_tree *tree);
int shmem_plan(struct restore_tree *tree);
int shmem_fd(const struct restore_ctx *ctx, const VmaEntry *v);
bool shmem_maps_description(const struct restore_tree *tree, uint32_t id);
int shmem_make_all(const struct restore_tree *tree);
/* sysvshm.c */
int sysvshm_dump(struct dump_tree *tree);
int sysvshm_validate(struct restore_tree *tree);
int sysvshm_restore(struct restore_tree *tree);
int sysvshm_mark_removed(const struct restore_tree *tree);
void sysvshm_restore_undo(struct restore_tree *tree);
void sysvshm_restore_free(struct restore_tree *tree);
int sysvshm_attach(struct restore_ctx *ctx, const VmaEntry *v);
/* tree.c */
int tree_freeze(struct dump_tree *tree);
int tree_check_ids(struct dump_tree *tree);
int tree_dump_zombie(struct dump_ctx *ctx);
void tree_dump_free(struct dump_tree *tree);
int tree_restore_plan(struct restore_tree *tree);
int tree_plan_inherited(struct restore_tree *tree);
int tree_restore_inherited(struct restore_ctx *root);
int tree_inherited_fd(const struct restore_ctx *ctx, uint32_t id);
void tree_wait_adopted(const struct restore_ctx *ctx, pid_t parent);

/* cow.c */
int cow_plan(struct restore_tree *tree);
int cow_stage(struct restore_ctx *ctx);
bool cow_in_region(const struct restore_tree *tree, uint64_t start, uint64_t len);
uint64_t cow_staged_at(const struct restore_ctx *ctx, uint64_t addr);
void cow_free(struct restore_ctx *ctx);
int tree_plan_inherit_base(struct restore_tree *tree);
int tree_restore_kids(struct restore_ctx *ctx);
struct restore_ctx *tree_proc(const struct restore_tree *tree, pid_t pid);
/* threads.c */
int threads_freeze(struct dump_ctx *ctx);
int threads_dump(struct dump_ctx *ctx);
int threads_end_injection(struct dump_ctx *ctx);
void threads_release(struct dump_ctx *ctx);
int threads_kill(struct dump_ctx *ctx);
void threads_dump_free(struct dump_ctx *ctx);
int threads_validate(struct restore_ctx *ctx);
int threads_restore_create(struct restore_ctx *ctx);
int threads_restore(struct restore_ctx *ctx);
int threads_restore_creds(struct restore_ctx *ctx);
int threads_restore_release(struct restore_ctx *ctx);
void threads_restore_kill(struct restore_ctx *ctx);
void threads_restore_free(struct restore_ctx *ctx);
/* cpu.c */
int cpu_dump_thread(struct dump_ctx *ctx, struct dump_thread *t);
int cpu_validate_thread(struct restore_ctx *ctx, const ThreadEntry *e);
int cpu_restore_thread(struct restore_ctx *ctx, struct restore_thread *t);
/* signals.c */
int signals_dump(struct dump_ctx *ctx);
int signals_dump_thread(struct dump_ctx *ctx, struct dump_thread *t);
int signals_restore(struct restore_ctx *ctx);
int signals_restore_thread(struct restore_ctx *ctx, struct restore_thread *t);
int signals_restore_mask(struct restore_ctx *ctx, struct restore_thread *t);
/* timers.c */
int timers_dump(struct dump_ctx *ctx);
int timers_restore(struct restore_ctx *ctx);
/* task.c */
int task_dump(struct dump_ctx *ctx);
int task_dump_thread(struct dump_ctx *ctx, struct dump_thread *t);
int task_validate(struct restore_ctx *ctx);
int task_restore_child(struct restore_ctx *ctx);
int task_restore_session(struct restore_ctx *ctx);
pid_t task_actual_group(const struct restore_ctx *ctx, pid_t pgid);
int task_restore_unregister(struct restore_ctx *ctx);
int task_restore(struct restore_ctx *ctx);
int task_restore_thread(struct restore_ctx *ctx, struct restore_thread *t);
/* creds.c */
int creds_dump(struct dump_ctx *ctx);
int creds_validate(struct restore_ctx *ctx);
int creds_restore_thread(struct restore_ctx *ctx, struct restore_thread *t);
/* fs.c */
int fs_dump(struct dump_ctx *ctx);
int fs_validate(struct restore_ctx *ctx);
int fs_restore_child(struct restore_ctx *ctx);
/* files.c */
int files_dump(struct dump_ctx *ctx);
int files_write(struct dump_tree *tree);
int files_find(const struct dump_tree *tree, int local_fd);
int files_add_unheld(struct dump_ctx *ctx, int local, uint32_t *id);
void files_dump_free(struct dump_tree *tree);
int files_validate(struct restore_ctx *ctx);
const FileEntry *files_by_id(const struct restore_ctx *ctx, uint32_t id);
int files_open_description(struct restore_ctx *ctx, const FileEntry *fe, int *fd);
void files_restore_drop_temps(struct restore_ctx *ctx);
int files_restore_child(struct restore_ctx *ctx);
int files_max_fd(const struct restore_ctx *ctx);
/* pipes.c */
int pipes_dump_file(struct dump_ctx *ctx, struct dump_file *f, const char *link);
int pipes_write(struct dump_tree *tree);
int pipes_check_complete(struct dump_tree *tree);
void pipes_dump_free(struct dump_tree *tree);
int pipes_validate(struct restore_ctx *ctx);
int pipes_restore_child(struct restore_ctx *ctx, const FileEntry *fe, int *fd);
/* tty.c */
bool tty_is_terminal(unsigned major);
int tty_dump_file(struct dump_ctx *ctx, struct dump_file *f, int fd);
int tty_restore_prepare(struct restore_ctx *ctx);
int tty_restore_child(struct restore_ctx *ctx, const FileEntry *fe, int *fd);
int tty_restore_session(struct restore_ctx *ctx);
void tty_restore_return(struct restore_ctx *ctx);

/* sockets/unix.c */
struct unix_made;
bool unix_sk_is_unix(int fd);
int unix_dump_file(struct dump_ctx *ctx, struct dump_file *f, int fd);
int unix_dump_finish(struct dump_tree *tree);
void unix_dump_free(struct dump_tree *tree);
int unix_validate(struct restore_ctx *ctx);
bool unix_in_flight(const struct restore_ctx *ctx, uint32_t id);
int unix_restore_child(struct restore_ctx *ctx, const FileEntry *fe, int *fd);

/* ghost.c: deleted files, memfds, O_PATH descriptions */
struct stat;
struct dump_ghost;
struct ghost_made;
int ghost_dump_file(struct dump_ctx *ctx, struct dump_file *f, int fd, const struct stat *st,
		    const char *link);
int opath_dump_file(struct dump_ctx *ctx, struct dump_file *f, int fd, const struct stat *st,
		    const char *link);
int ghost_write(struct dump_tree *tree);
void ghost_dump_free(struct dump_tree *tree);
int ghost_validate(struct restore_ctx *ctx);
int ghost_restore_child(struct restore_ctx *ctx, const FileEntry *fe, int *fd);
int opath_restore_child(struct restore_ctx *ctx, const FileEntry *fe, int *fd);
void ghost_restore_free(struct restore_ctx *ctx);
/* pipes.c: FIFOs */
int pipes_dump_fifo(struct dump_ctx *ctx, struct dump_file *f, const struct stat *st,
		    const char *link);
/* locks.c */
int locks_dump(struct dump_ctx *ctx);
int locks_write(struct dump_ctx *ctx);
void locks_dump_free(struct dump_ctx *ctx);
int locks_validate(struct restore_ctx *ctx);
int locks_restore_child(struct restore_ctx *ctx);
void locks_restore_free(struct restore_ctx *ctx);

/* anonfd.c, eventfd.c, signalfd.c, timerfd.c, epoll.c, inotify.c: anon-inode fds */
bool anonfd_is_kind(FileKind kind);
const char *anonfd_field(const char *info, const char *key);
int anonfd_dump_file(struct dump_ctx *ctx, struct dump_file *f, int fd, const char *link);
void anonfd_dump_free(struct dump_tree *tree);
int anonfd_validate(struct restore_ctx *ctx);
int anonfd_restore_child(struct restore_ctx *ctx, const FileEntry *fe, int *fd);
int anonfd_first_fd(const struct restore_ctx *ctx, uint32_t file_id);
#define ANONFD_KIND_PROTOS(k)                                                                      \
	int k##_dump(struct dump_ctx *ctx, struct dump_file *f, int fd, const char *info);         \
	int k##_validate(const struct restore_ctx *ctx, const FileEntry *fe);                      \
	int k##_restore_child(struct restore_ctx *ctx, const FileEntry *fe, int *fd);              \
	void k##_free(FileEntry *fe);
ANONFD_KIND_PROTOS(eventfd)
ANONFD_KIND_PROTOS(signalfd)
ANONFD_KIND_PROTOS(timerfd)
ANONFD_KIND_PROTOS(epoll)
ANONFD_KIND_PROTOS(inotify)
int epoll_restore_watches(struct restore_ctx *ctx);
bool epoll_watched_from_outside(const struct restore_tree *tree, const FileEntry *fe);

/* restore.c: the integrity checks of a restore, without creating anything (for show). */
int restore_verify_images(const struct cryo_opts *opts);
/* Copy data into the trampoline's scratch area at offset off; returns its address. */
uint64_t restore_scratch_put(struct restore_ctx *ctx, size_t off, const void *data, size_t len);
/* Child side: report an error line to the restorer and exit. */
void restore_child_fail(struct restore_ctx *ctx) __attribute__((noreturn));
/* Child side: report to the restorer (an empty message: ready). */
void restore_report(struct restore_tree *tree, pid_t pid, const char *msg);
/* The new process's own part of the restore; never returns. */
void restore_child_main(struct restore_ctx *ctx, pid_t parent) __attribute__((noreturn));

#endif
