/*
 * libcryo public API.
 *
 * The command line (src/cli/main.c) turns argv into a struct cryo_opts and
 * calls exactly one of the entry points below. Each returns 0 on success or
 * a non-zero exit status; on failure cryo_strerror() gives the one line
 * that says why, for the caller to print once. cryo_restore() without
 * detach returns the restored process's own exit status.
 *
 * Link with `pkg-config --cflags --libs cryo` (libcryo.a, libprotobuf-c).
 */
#ifndef CRYO_CRYO_H
#define CRYO_CRYO_H

#include <stdbool.h>
#include <sys/types.h>

#define CRYO_VERSION "0.1.0"

/* The arguments of a repeatable option (--external A --external B), in order. */
struct cryo_strv {
	const char **v;
	size_t n;
};

struct cryo_opts {
	pid_t pid;		/* dump: -t/--tree */
	const char *images_dir; /* -D/--images-dir */
	int verbosity;		/* -v[N]: 0 errors, 1 warnings, 2 info, 3+ debug */
	const char *log_file;	/* -o/--log-file, NULL: stderr */
	bool shell_job;		/* -j/--shell-job */
	bool leave_running;	/* -R/--leave-running */
	bool leave_stopped;	/* -s/--leave-stopped: dump, restore */
	unsigned timeout;	/* dump --timeout: seconds a task may take to stop (0: 10) */
	bool display_stats;	/* --display-stats: dump, restore print their statistics */
	bool quiet_stdout;	/* nothing on stdout: the endpoint lines of a dump go to the
				 * log (cryo run: its stdout is the job's) */
	bool detach;		/* restore -d/--restore-detached */
	bool no_sync;		/* dump --no-sync: skip fsync (tmpfs, benchmarks) */
	bool file_locks;	/* dump -l/--file-locks: save the file locks held */
	/* dump --ghost-limit: the most data of a deleted file (holes not
	 * counted) whose contents are saved; 0: the default, 64 MiB */
	unsigned long long ghost_limit;
	bool link_remap;      /* dump --link-remap: link files removed but still linked back */
	const char *pidfile;  /* restore --pidfile */
	const char *work_dir; /* -W/--work-dir: resolved by the command line */
	bool json;	      /* show --json */
	bool no_uffd;	      /* restore --no-uffd: fill memory without userfaultfd */
	bool tcp_established; /* dump, restore --tcp-established: live TCP connections */
	bool tcp_close;	      /* dump, restore --tcp-close: connections restored closed */
	bool skip_in_flight;  /* dump --skip-in-flight: drop connections not accepted yet */
	const char
	    *manage_cgroups; /* --manage-cgroups: soft (NULL), full, strict, props, none, ignore */
	const char *network_lock; /* --network-lock: "nftables" (NULL: the default) or "skip" */
	/* restore --inherit-fd fd[N]:RES: endpoints outside given by cryo's fds */
	struct cryo_strv inherit_fd;
	struct cryo_strv external; /* dump --external unix[INO]: sockets connected outside */
	bool ext_unix_sk; /* dump --ext-unix-sk: dgram sockets connected to a name outside */
	struct cryo_strv command; /* run: the command and its arguments (after --) */
	unsigned every;		  /* run --every: seconds between checkpoints (0: 60) */
	unsigned keep;		  /* run --keep: generations kept (0: 3) */
	unsigned max_restores;	  /* run --max-restores: restores at most (0: 10) */
	unsigned full_every;	  /* run --full-every: a full checkpoint every N (0: 10) */
	bool resume;		  /* run --resume: restore DIR's newest generation */
	bool log_pid;		  /* restore --log-pid: each new process logs to LOG.PID */
	/* dump --force-irmap, --irmap-scan-path: accepted; watch paths are
	 * always found by file handle (fhandle.c), which needs no scan */
	bool force_irmap;
	struct cryo_strv irmap_scan_path;
	bool evasive_devices; /* dump --evasive-devices: a removed device by another path */
	bool ghost_fiemap;    /* dump --ghost-fiemap: accepted; holes are always skipped */
	/* dump, restore --file-validation: "filesize" (NULL: the same); buildid
	 * is refused by the command line */
	const char *file_validation;
	const char *config; /* --config FILE: read by the command line, before the rest */
	/* dump, pre-dump --prev-images-dir: the parent checkpoint, relative to
	 * images_dir (or absolute); --track-mem: arm tracking for the next */
	const char *prev_images_dir;
	bool track_mem;
	bool pre_dump; /* set by cryo_pre_dump */
};

/* Where the commands log (log_file NULL or "-": stderr) and how much
 * (verbosity as -v). Without it, only errors are logged, to stderr.
 * Returns 0, or 1 if the log file cannot be opened (cryo_strerror says). */
int cryo_log_open(int verbosity, const char *log_file);
void cryo_log_close(void);
/* The error the last failed command of this thread recorded ("pid 5: ..."),
 * or NULL if none is pending; valid until the next command or clear. */
const char *cryo_strerror(void);
void cryo_clear_error(void);

int cryo_dump(const struct cryo_opts *opts);
/* cryo pre-dump: a dump that leaves the tree running and tracks its memory. */
int cryo_pre_dump(const struct cryo_opts *opts);
int cryo_restore(const struct cryo_opts *opts);
int cryo_show(const struct cryo_opts *opts);
int cryo_check(const struct cryo_opts *opts);
/* cryo unlock: the network lock and repair mode a killed dump left (unlock.c). */
int cryo_unlock(const struct cryo_opts *opts);

#endif
