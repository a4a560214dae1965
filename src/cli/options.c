/*
 * The table of cryo's command-line options, and the parser and help printer
 * driven by it (declared in options.h).
 *
 * Every option is one row of cli_rows[]: long and short name, the commands
 * that take it, its argument (none, required, optional as in -v[N]), a help
 * line, and how and where it is stored in struct cryo_opts. An option that
 * means different things to different commands (-D, -j) has one row per
 * meaning, for disjoint sets of commands. The rows marked TODO are CRIU's
 * options (criu(8): dump, pre-dump, restore, check) that cryo does not
 * implement yet: given to a command that takes them, they are refused with
 * "option --X is not supported yet" and exit status 1. To implement one,
 * add its field to struct cryo_opts and replace TODO with e.g.
 * FLAG(tcp_established), STR(...), UINT(...), SIZE(...) or LIST(...).
 *
 * The parser is a small one of its own rather than getopt_long, so that an
 * option can be told apart as unknown, not supported yet, or meant for
 * another command. As getopt: short options cluster (-jR), arguments may be
 * attached (-t1, --tree=1) or follow (-t 1), an optional argument is only
 * taken attached (-v4, --manage-cgroups=full), options and operands mix,
 * and "--" ends the options. As CRIU: --no-NAME negates a flag.
 */
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "cli/options.h"
#include "cli/runlock.h"
#include "cli/supervise.h"

#define DUMPS	 (CLI_DUMP | CLI_PRE_DUMP)
#define DR	 (CLI_DUMP | CLI_RESTORE)
#define DPR	 (CLI_DUMP | CLI_PRE_DUMP | CLI_RESTORE)
#define LOGS	 (DPR | CLI_RUN | CLI_CHECKPOINT | CLI_UNLOCK)
#define ALL	 (LOGS | CLI_SHOW | CLI_CHECK)
#define NONE	 ARG_NONE
#define REQ	 ARG_REQUIRED
#define OPT	 ARG_OPTIONAL
#define F(f)	 offsetof(struct cryo_opts, f)
#define FLAG(f)	 .kind = K_FLAG, .field = F(f)
#define STR(f)	 .kind = K_STR, .field = F(f)
#define PID(f)	 .kind = K_PID, .field = F(f)
#define LEVEL(f) .kind = K_LEVEL, .field = F(f)
#define UINT(f)	 .kind = K_UINT, .field = F(f)
#define SIZE(f)	 .kind = K_SIZE, .field = F(f)
#define LIST(f)	 .kind = K_LIST, .field = F(f)
#define TODO	 .kind = K_TODO
#define HELP	 .kind = K_HELP

static const struct cli_option cli_rows[] = {
    /* What cryo implements. */
    {"tree", 't', DUMPS, REQ, "PID", "the root of the process tree to checkpoint (required)",
     PID(pid)},
    {"images-dir", 'D', DUMPS, REQ, "DIR",
     "where to write the images, created if missing (required)", STR(images_dir)},
    {"images-dir", 'D', CLI_RESTORE, REQ, "DIR", "the checkpoint to restore (required)",
     STR(images_dir)},
    {"images-dir", 'D', CLI_SHOW, REQ, "DIR", "the checkpoint (or give DIR as the argument)",
     STR(images_dir)},
    {"images-dir", 'D', CLI_UNLOCK, REQ, "DIR", "the checkpoint whose dump was killed (required)",
     STR(images_dir)},
    {"images-dir", 'D', CLI_RUN, REQ, "DIR",
     "where the generations gen-NNNNNN are kept, created if missing (required)", STR(images_dir)},
    {"images-dir", 'D', CLI_CHECKPOINT, REQ, "DIR",
     "the directory a cryo run supervises (required)", STR(images_dir)},
    {"every", 0, CLI_RUN, REQ, "SECONDS", "checkpoint every SECONDS (default 60)", UINT(every)},
    {"keep", 0, CLI_RUN, REQ, "N", "keep the newest N generations (default 3)", UINT(keep)},
    {"max-restores", 0, CLI_RUN, REQ, "N",
     "restore the job at most N times, then exit with its status (default 10)", UINT(max_restores)},
    {"full-every", 0, CLI_RUN, REQ, "N",
     "a full checkpoint every N generations, incremental ones between (default 10; 1: all full)",
     UINT(full_every)},
    {"resume", 0, CLI_RUN, NONE, NULL,
     "restore the newest generation of DIR and supervise it (no command)", FLAG(resume)},
    {"leave-running", 'R', CLI_DUMP, NONE, NULL,
     "leave the processes running (default: kill them once the checkpoint is committed)",
     FLAG(leave_running)},
    {"leave-stopped", 's', CLI_DUMP, NONE, NULL,
     "leave the processes stopped (SIGSTOP) once the checkpoint is committed, instead of killing "
     "them",
     FLAG(leave_stopped)},
    {"leave-stopped", 's', CLI_RESTORE, NONE, NULL,
     "leave the restored processes stopped (SIGSTOP) at their saved instruction; SIGCONT resumes "
     "them",
     FLAG(leave_stopped)},
    {"restore-detached", 'd', CLI_RESTORE, NONE, NULL,
     "exit as soon as the processes run (default: wait, exit with the root's status)",
     FLAG(detach)},
    {"shell-job", 'j', DUMPS, NONE, NULL,
     "the process runs on a terminal (a shell job); restore it with -j too", FLAG(shell_job)},
    {"shell-job", 'j', CLI_RESTORE, NONE, NULL,
     "give the process this terminal, in the foreground (for a dump made with -j)",
     FLAG(shell_job)},
    {"file-locks", 'l', DUMPS, NONE, NULL,
     "save the file locks held (flock, POSIX, OFD); without it a held lock fails the dump",
     FLAG(file_locks)},
    {"file-locks", 'l', CLI_RESTORE, NONE, NULL,
     "accepted as by CRIU, no effect: the locks a dump saved are always taken again",
     FLAG(file_locks)},
    {"no-sync", 0, DUMPS, NONE, NULL, "do not fsync the images (tmpfs, benchmarks)", FLAG(no_sync)},
    {"pidfile", 0, CLI_RESTORE, REQ, "FILE", "write the restored root's pid to FILE", STR(pidfile)},
    {"no-uffd", 0, CLI_RESTORE, NONE, NULL, "fill memory without userfaultfd (debugging, testing)",
     FLAG(no_uffd)},
    {"tcp-established", 0, DR | CLI_PRE_DUMP, NONE, NULL,
     "checkpoint and restore established TCP connections (given to dump and restore)",
     FLAG(tcp_established)},
    {"tcp-close", 0, DR | CLI_PRE_DUMP, NONE, NULL,
     "do not save the state of TCP connections; restore them closed", FLAG(tcp_close)},
    {"skip-in-flight", 0, DUMPS, NONE, NULL,
     "drop connections a listener has not accepted yet (default: refuse the dump)",
     FLAG(skip_in_flight)},
    {"network-lock", 0, DR | CLI_PRE_DUMP, REQ, "METHOD",
     "how the tree's connections are locked while frozen: nftables (default) or skip; "
     "iptables is refused",
     STR(network_lock), .choices = "iptables,nftables,skip"},
    {"manage-cgroups", 0, DUMPS, OPT, "MODE",
     "ignore: leave the tree's cgroups out of the checkpoint (others: recorded, the default)",
     STR(manage_cgroups), .implied = "soft", .choices = "none,props,soft,full,strict,ignore"},
    {"manage-cgroups", 0, CLI_RESTORE, OPT, "MODE",
     "put the processes back in their cgroups: soft (default: make missing ones, with the saved "
     "limits), full (set the limits on all), strict (refuse existing ones), props (make none), "
     "none or ignore (stay in cryo's)",
     STR(manage_cgroups), .implied = "soft", .choices = "none,props,soft,full,strict,ignore"},
    {"timeout", 0, DUMPS, REQ, "SECONDS",
     "give up if a task has not stopped after SECONDS (default 10): it sleeps where no signal "
     "wakes it (a vfork parent, a hung NFS read) and is left as it was",
     UINT(timeout)},
    {"display-stats", 0, DR, NONE, NULL,
     "print the statistics (times, pages) on standard output at the end", FLAG(display_stats)},
    {"work-dir", 'W', DR | CLI_PRE_DUMP, REQ, "DIR",
     "where a relative --log-file or --pidfile goes (default: the current directory)",
     STR(work_dir)},
    {"inherit-fd", 0, CLI_RESTORE, REQ, "fd[N]:RES",
     "give the restored process cryo's fd N in place of RES: pipe:[INO], socket:[INO] or a path "
     "(repeatable)",
     LIST(inherit_fd)},
    {"external", 0, DUMPS, REQ, "unix[INO]",
     "the stream unix socket INO, connected outside, is external (restore it with "
     "--inherit-fd); only unix[] yet",
     LIST(external)},
    {"json", 0, CLI_SHOW, NONE, NULL, "print one JSON object on standard output", FLAG(json)},
    {"verbosity", 'v', LOGS, OPT, "N",
     "log level: 0 errors, 1 warnings (default), 2 info, 3+ debug; -v, -vv... raise it",
     LEVEL(verbosity)},
    {"verbosity", 'v', CLI_CHECK, OPT, "N", "with 2 or more, list every feature probed",
     LEVEL(verbosity)},
    {"log-file", 'o', LOGS | CLI_CHECK, REQ, "FILE", "write the log to FILE instead of stderr",
     STR(log_file)},
    {"help", 'h', ALL, NONE, NULL, "print this help and exit", HELP},
    {"config", 0, DPR | CLI_CHECK, REQ, "CONF",
     "read options from CONF first (CRIU's syntax: one a line, NAME [ARG], # comments); "
     "the command line's own override them",
     STR(config)},
    {"log-pid", 0, CLI_RESTORE, NONE, NULL,
     "each restored process logs what it does itself to LOG.PID (LOG: -o, needed)", FLAG(log_pid)},
    {"force-irmap", 0, DUMPS, NONE, NULL,
     "accepted as by CRIU: the paths of inotify and fanotify watches are always resolved at "
     "the dump (by file handle)",
     FLAG(force_irmap)},
    {"irmap-scan-path", 0, DUMPS, REQ, "PATH",
     "accepted as by CRIU: watch paths are found by file handle, which scans nothing",
     LIST(irmap_scan_path)},
    {"evasive-devices", 0, DUMPS, NONE, NULL,
     "a device whose node was removed is reopened by another path to the same device "
     "(under /dev) instead of making the node again",
     FLAG(evasive_devices)},
    {"file-validation", 0, DR, REQ, "CHECK",
     "how the files a checkpoint opens by path are checked at restore: filesize (cryo's: a "
     "file shorter than at the dump is refused); buildid is refused",
     STR(file_validation), .choices = "filesize,buildid"},
    {"ghost-fiemap", 0, DUMPS, NONE, NULL,
     "accepted as by CRIU: deleted files are always saved by their runs of data, holes "
     "skipped",
     FLAG(ghost_fiemap)},

    /* CRIU's common options, not yet. */
    {"log-pid", 0, DUMPS, NONE, NULL, "one log file per process", TODO},

    {"no-default-config", 0, DPR | CLI_CHECK, NONE, NULL, "read no default configuration file",
     TODO},
    {"stream", 0, DPR, NONE, NULL, "pass the images through criu-image-streamer", TODO},
    {"close", 0, DPR, REQ, "FD", "close FD before anything else", TODO},
    {"libdir", 'L', DPR, REQ, "DIR", "the directory of plugins", TODO},
    {"action-script", 0, DPR, REQ, "FILE", "run FILE at each stage of the dump or restore", TODO},
    {"unprivileged", 0, DPR | CLI_CHECK, NONE, NULL, "accept the limits of running as non-root",
     TODO},
    {"enable-fs", 0, DR, REQ, "FS,...", "dump and restore mounts of these filesystems (or all)",
     TODO},
    {"allow-uprobes", 0, DR, NONE, NULL, "allow processes with a uprobes area", TODO},

    /* CRIU's dump (and pre-dump) options, not yet. */
    {"display-stats", 0, CLI_PRE_DUMP, NONE, NULL, "print the statistics at the end",
     FLAG(display_stats)},
    {"external", 0, CLI_RESTORE, REQ, "RES", "an external resource: tty[RDEV:DEV], mnt[...]...",
     TODO},
    {"ext-unix-sk", 'x', DUMPS, NONE, NULL,
     "dump datagram unix sockets connected to a named socket outside; restore connects them "
     "to that name again",
     FLAG(ext_unix_sk)},
    {"ext-unix-sk", 'x', CLI_RESTORE, NONE, NULL,
     "accepted as by CRIU: a datagram socket dumped with it is connected to its peer's name "
     "again",
     FLAG(ext_unix_sk)},
    {"ext-mount-map", 'M', DR, REQ, "KEY:VAL", "map an external mount (old --external mnt[])",
     TODO},
    {"freeze-cgroup", 0, DUMPS, REQ, "CGROUP", "stop the processes with this cgroup's freezer",
     TODO},
    {"cgroup-root", 0, DR, REQ, "[CTRL:]/ROOT", "move the root of a cgroup controller", TODO},
    {"cgroup-props", 0, CLI_DUMP, REQ, "SPEC", "the cgroup properties to save", TODO},
    {"cgroup-props-file", 0, CLI_DUMP, REQ, "FILE", "the cgroup properties to save, from FILE",
     TODO},
    {"cgroup-dump-controller", 0, CLI_DUMP, REQ, "NAME", "save only this cgroup controller", TODO},
    {"cgroup-yard", 0, DR, REQ, "DIR", "use the cgroup mounts already made under DIR", TODO},
    {"link-remap", 0, DUMPS, NONE, NULL,
     "link a file removed from its path but still linked elsewhere back under a temporary name",
     FLAG(link_remap)},
    {"ghost-limit", 0, DUMPS, REQ, "SIZE",
     "most data of a deleted file or memfd to save, holes not counted (default 64M; K/M/G)",
     SIZE(ghost_limit)},
    {"cpu-cap", 0, DR, OPT, "CAPS", "CPU features to save or check: fpu,ins,cpu,all,none", TODO},
    {"lazy-pages", 0, DR, NONE, NULL, "serve or fill memory on demand (post-copy migration)", TODO},
    {"skip-mnt", 0, CLI_DUMP, REQ, "PATH", "ignore this mount point", TODO},
    {"enable-external-sharing", 0, CLI_DUMP, NONE, NULL, "allow shared external mounts", TODO},
    {"enable-external-masters", 0, CLI_DUMP, NONE, NULL, "allow external mounts with masters",
     TODO},
    {"page-server", 0, DUMPS, NONE, NULL, "send the pages to a page server", TODO},
    {"address", 0, DUMPS, REQ, "ADDR", "the page server's address", TODO},
    {"port", 0, DUMPS, REQ, "PORT", "the page server's port", TODO},
    {"auto-dedup", 0, DR, NONE, NULL, "drop pages of older images a dump or restore used", TODO},
    {"track-mem", 0, DUMPS, NONE, NULL,
     "track memory changes for the next, incremental checkpoint (pre-dump always does)",
     FLAG(track_mem)},
    {"prev-images-dir", 0, DUMPS, REQ, "DIR",
     "the parent checkpoint (relative to -D, as CRIU): write only the pages changed since",
     STR(prev_images_dir)},
    {"pre-dump-mode", 0, CLI_PRE_DUMP, REQ, "MODE", "how memory is read: splice or read", TODO,
     .choices = "splice,read"},

    /* CRIU's restore options, not yet. */
    {"restore-sibling", 'S', CLI_RESTORE, NONE, NULL, "restore the root as cryo's sibling (-d)",
     TODO},
    {"root", 'r', CLI_RESTORE, REQ, "DIR", "the root filesystem to restore into", TODO},
    {"join-ns", 'J', CLI_RESTORE, REQ, "NS:PID", "restore into an existing namespace", TODO},
    {"veth-pair", 0, CLI_RESTORE, REQ, "IN=OUT", "the outside name of a veth device", TODO},
    {"lsm-profile", 0, CLI_RESTORE, REQ, "TYPE:NAME", "the AppArmor or SELinux profile", TODO},
    {"lsm-mount-context", 0, CLI_RESTORE, REQ, "CTX", "the SELinux context of mounts", TODO},
    {"weak-sysctls", 0, CLI_RESTORE, NONE, NULL, "skip sysctls this kernel does not have", TODO},
    {"empty-ns", 0, CLI_RESTORE, REQ, "net", "make the namespace, leave its setup to scripts",
     TODO},
    {"mntns-compat-mode", 0, CLI_RESTORE, NONE, NULL, "restore mounts with the older engine", TODO},
    {"skip-file-rwx-check", 0, CLI_RESTORE, NONE, NULL, "do not check the files' permissions",
     TODO},
    {"exec-cmd", 0, CLI_RESTORE, NONE, NULL, "run the command after -- as the root's parent", TODO},

    /* CRIU's check options, not yet. */
    {"extra", 0, CLI_CHECK, NONE, NULL, "also check features needed in some cases", TODO},
    {"experimental", 0, CLI_CHECK, NONE, NULL, "also check experimental features", TODO},
    {"all", 0, CLI_CHECK, NONE, NULL, "check every feature", TODO},
    {"feature", 0, CLI_CHECK, REQ, "NAME", "check only this feature", TODO},
};

/* The commands, in the order `cryo --help` lists them. */
static const struct cli_command cli_commands[] = {
    {"dump", CLI_DUMP, "cryo dump -t PID -D DIR [options]", "checkpoint a process tree",
     "Checkpoint the process tree rooted at PID (the process, its descendants and\n"
     "their threads) into the images directory DIR, created if missing. The tree is\n"
     "killed once the checkpoint is committed, unless -R.\n",
     "  cryo dump -t 4242 -D /var/lib/ckpt/a -R\n"
     "  cryo dump -t 12345 -D ckpt --shell-job -v4 -o dump.log\n",
     cryo_dump, true, true, false, false},
    {"pre-dump", CLI_PRE_DUMP, "cryo pre-dump -t PID -D DIR [options]",
     "checkpoint a tree that runs on, and track its memory",
     "Checkpoint the tree rooted at PID and let it run on (as dump -R), tracking\n"
     "its memory so that a later pre-dump or dump with --prev-images-dir writes\n"
     "only the pages changed since and refers to the rest in the parent.\n",
     "  cryo pre-dump -t 4242 -D /var/lib/ckpt/1\n"
     "  cryo dump -t 4242 -D /var/lib/ckpt/2 --prev-images-dir ../1 --track-mem\n",
     cryo_pre_dump, true, true, false, false},
    {"restore", CLI_RESTORE, "cryo restore -D DIR [options]", "restore a checkpoint",
     "Restore the checkpoint in DIR with its original pids, which must be free.\n"
     "Without -d, cryo waits for the restored root and exits with its exit status\n"
     "(128+N if signal N killed it).\n",
     "  cryo restore -D /var/lib/ckpt/a -d --pidfile /run/a.pid\n"
     "  cryo restore -D ckpt --shell-job\n",
     cryo_restore, false, true, false, false},
    {"show", CLI_SHOW, "cryo show [--json] DIR", "verify and print a checkpoint",
     "Verify every image of the checkpoint in DIR as restore would (sizes, checksums,\n"
     "headers, page checksums) and print its content, as text or as JSON.\n",
     "  cryo show ckpt\n"
     "  cryo show --json ckpt | python3 -m json.tool\n",
     cryo_show, false, true, true, false},
    {"run", CLI_RUN, "cryo run -D DIR [options] -- COMMAND [ARGS...]",
     "run a job, checkpoint it, restore it when it crashes",
     "Start COMMAND as cryo's child, checkpoint its whole tree every --every seconds\n"
     "into DIR/gen-NNNNNN (each generation committed whole, the newest --keep\n"
     "kept), and restore it from the newest one when it dies by a signal, up to\n"
     "--max-restores times. Exits with the job's status. SIGUSR1 to cryo takes a\n"
     "checkpoint now. --resume restores DIR's newest generation (after cryo or the\n"
     "machine stopped) and supervises it.\n",
     "  cryo run -D /var/lib/ckpt/train --every 3600 -- python3 train.py\n"
     "  cryo run -D /var/lib/ckpt/train --resume\n",
     cryo_run, false, true, false, true},
    {"checkpoint", CLI_CHECKPOINT, "cryo checkpoint -D DIR",
     "ask the cryo run of DIR for a checkpoint now",
     "Ask the cryo run that supervises DIR for a checkpoint now (as SIGUSR1 to it\n"
     "does), wait until it is committed and print the new generation's directory.\n"
     "Fails, with the supervisor's reason, if the checkpoint failed, and if no\n"
     "cryo run supervises DIR.\n",
     "  cryo checkpoint -D /var/lib/ckpt/train\n", cryo_checkpoint, false, true, false, false},
    {"check", CLI_CHECK, "cryo check [-v[N]]", "check the kernel's features",
     "Check that this kernel has every feature cryo needs and list the optional ones\n"
     "it lacks. Prints \"Looks good.\" and exits 0 if every required one is there.\n",
     "  cryo check\n"
     "  cryo check -v2\n",
     cryo_check, false, false, false, false},
    {"unlock", CLI_UNLOCK, "cryo unlock -D DIR", "remove the network lock a killed dump left",
     "For a cryo that was killed during a dump of DIR: delete the nftables table its\n"
     "netlock.img names, if it is still there, and take every socket recorded there\n"
     "that is still in TCP repair mode out of it. Not for a dump still running.\n",
     "  cryo unlock -D /var/lib/ckpt/a\n", cryo_unlock, false, true, false, false},
};

const struct cli_table cli_cryo_table = {
    cli_rows,
    sizeof(cli_rows) / sizeof(cli_rows[0]),
    cli_commands,
    sizeof(cli_commands) / sizeof(cli_commands[0]),
};

const struct cli_command *cli_find_command(const struct cli_table *t, const char *name)
{
	for (size_t i = 0; i < t->ncmds; i++)
		if (!strcmp(t->cmds[i].name, name))
			return &t->cmds[i];
	return NULL;
}

/* ------------------------------------------------------------------ lookup */

/* The state of one parse: what is parsed, for which command, into what. */
struct parse {
	const struct cli_table *t;
	const struct cli_command *cmd;
	struct cryo_opts *o;
	int argc, i; /* argv[i] is the next word */
	char **argv;
	const char *operand; /* the one operand a dir_arg command takes */
};

/* The row of NAME (len bytes) for commands `bits`, or NULL. */
static const struct cli_option *find_long(const struct cli_table *t, unsigned bits,
					  const char *name, size_t len)
{
	for (size_t i = 0; i < t->n; i++)
		if ((t->rows[i].cmds & bits) && strlen(t->rows[i].name) == len &&
		    !strncmp(t->rows[i].name, name, len))
			return &t->rows[i];
	return NULL;
}

static const struct cli_option *find_short(const struct cli_table *t, unsigned bits, char c)
{
	for (size_t i = 0; i < t->n; i++)
		if ((t->rows[i].cmds & bits) && t->rows[i].short_name == c)
			return &t->rows[i];
	return NULL;
}

/* The commands that take the option r names: "restore", "dump and pre-dump". */
static void cmds_of(const struct cli_table *t, const struct cli_option *r, char *buf, size_t len)
{
	unsigned bits = 0, left;
	size_t off = 0;

	for (size_t i = 0; i < t->n; i++)
		if (!strcmp(t->rows[i].name, r->name))
			bits |= t->rows[i].cmds;
	buf[0] = 0;
	for (size_t c = 0; c < t->ncmds; c++) {
		if (!(bits & t->cmds[c].bit) || off >= len)
			continue;
		bits &= ~t->cmds[c].bit;
		left = 0;
		for (size_t d = c + 1; d < t->ncmds; d++)
			left += !!(bits & t->cmds[d].bit);
		off += snprintf(buf + off, len - off, "%s%s", t->cmds[c].name,
				left > 1 ? ", "
				: left	 ? " and "
					 : "");
	}
}

/* ------------------------------------------------------------------ errors */

static int usage_error(const struct parse *p, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static int usage_error(const struct parse *p, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "cryo: %s: ", p->cmd->name);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, " (see cryo %s --help)\n", p->cmd->name);
	return 2;
}

/* How the user wrote the option, for messages: "--tree" or "-t (--tree)". */
static const char *typed(const struct cli_option *r, bool is_short, char *buf, size_t len)
{
	if (is_short)
		snprintf(buf, len, "-%c (--%s)", r->short_name, r->name);
	else
		snprintf(buf, len, "--%s", r->name);
	return buf;
}

static int not_supported(const struct parse *p, const struct cli_option *r, bool is_short)
{
	char name[96];

	fprintf(stderr, "cryo: %s: option %s is not supported yet\n", p->cmd->name,
		typed(r, is_short, name, sizeof(name)));
	return 1;
}

/* An option some other command takes: say which. */
static int wrong_command(const struct parse *p, const struct cli_option *r, bool is_short)
{
	char name[96], cmds[128];

	cmds_of(p->t, r, cmds, sizeof(cmds));
	return usage_error(p, "option %s is for %s, not %s", typed(r, is_short, name, sizeof(name)),
			   cmds, p->cmd->name);
}

/* ------------------------------------------------------------------ values */

static int parse_ulong(const char *arg, unsigned long long max, unsigned long long *v)
{
	char *end;

	if (*arg < '0' || *arg > '9')
		return -1;
	errno = 0;
	*v = strtoull(arg, &end, 10);
	return errno || *end || *v > max ? -1 : 0;
}

/* "4096", "64K", "16M", "2G" -> bytes. */
static int parse_size(const char *arg, unsigned long long *v)
{
	static const char units[] = "KMG";
	char num[32];
	size_t len = strlen(arg);
	const char *u = len ? strchr(units, arg[len - 1]) : NULL;
	int shift = u && *u ? 10 * (int)(u - units + 1) : 0;

	if (shift)
		len--;
	if (!len || len >= sizeof(num))
		return -1;
	memcpy(num, arg, len);
	num[len] = 0;
	if (parse_ulong(num, ULLONG_MAX >> shift, v))
		return -1;
	*v <<= shift;
	return 0;
}

/* -v (NULL): at least 2, else one more; -vv...: one more per further v; -vN: N. */
static int parse_level(const char *arg, int *v)
{
	unsigned long long n;

	if (!arg || strspn(arg, "v") == strlen(arg)) {
		*v = (*v < 2 ? 2 : *v + 1) + (arg ? (int)strlen(arg) : 0);
		return 0;
	}
	if (parse_ulong(arg, 9, &n))
		return -1;
	*v = n;
	return 0;
}

static bool in_choices(const char *choices, const char *arg)
{
	size_t len = strlen(arg);

	for (const char *c = choices; c; c = strchr(c, ',') ? strchr(c, ',') + 1 : NULL)
		if (!strncmp(c, arg, len) && (c[len] == ',' || !c[len]))
			return true;
	return false;
}

static int add_to_list(struct cryo_strv *l, const char *arg)
{
	const char **v = realloc(l->v, (l->n + 1) * sizeof(*v));

	if (!v)
		return -1;
	v[l->n++] = arg;
	l->v = v;
	return 0;
}

/* Stores arg (NULL: none given) in r's field; returns 0 or an exit status. */
static int store(const struct parse *p, const struct cli_option *r, bool is_short, const char *arg,
		 bool negated)
{
	void *f = (char *)p->o + r->field;
	unsigned long long n;
	char name[96];

	typed(r, is_short, name, sizeof(name));
	if (r->kind != K_FLAG && r->kind != K_LEVEL && !arg && !(arg = r->implied))
		return usage_error(p, "option %s needs an argument (%s)", name, r->metavar);
	if (arg && !*arg)
		return usage_error(p, "option %s: empty argument", name);
	switch (r->kind) {
	case K_FLAG:
		*(bool *)f = !negated;
		return 0;
	case K_STR:
		if (r->choices && !in_choices(r->choices, arg))
			return usage_error(p, "option %s: '%s' is not one of %s", name, arg,
					   r->choices);
		*(const char **)f = arg;
		return 0;
	case K_PID:
		if (parse_ulong(arg, 4194304, &n) || !n)
			return usage_error(p, "option %s: '%s' is not a pid", name, arg);
		*(pid_t *)f = n;
		return 0;
	case K_LEVEL:
		if (parse_level(arg, (int *)f))
			return usage_error(p, "option %s: bad verbosity '%s' (0 to 9)", name, arg);
		return 0;
	case K_UINT:
		if (parse_ulong(arg, UINT_MAX, &n))
			return usage_error(p, "option %s: '%s' is not a number", name, arg);
		*(unsigned *)f = n;
		return 0;
	case K_SIZE:
		if (parse_size(arg, (unsigned long long *)f))
			return usage_error(p, "option %s: '%s' is not a size (N, NK, NM, NG)", name,
					   arg);
		return 0;
	case K_LIST:
		if (add_to_list(f, arg))
			return usage_error(p, "option %s: out of memory", name);
		return 0;
	default:
		return usage_error(p, "option %s cannot be stored", name);
	}
}

/* ------------------------------------------------------------------ parser */

/* Applies row r (TODO and help first); arg is NULL if none was given. */
static int apply(const struct parse *p, const struct cli_option *r, bool is_short, const char *arg,
		 bool negated)
{
	if (r->kind == K_TODO)
		return negated ? 0 : not_supported(p, r, is_short);
	if (r->kind == K_HELP) {
		cli_help(p->t, p->cmd, stdout);
		return CLI_HELP_SHOWN;
	}
	return store(p, r, is_short, arg, negated);
}

/* --NAME, --NAME=ARG, --NAME ARG, --no-NAME; word is argv[p->i - 1] past "--". */
static int parse_long(struct parse *p, const char *word)
{
	const char *eq = strchr(word, '=');
	size_t len = eq ? (size_t)(eq - word) : strlen(word);
	const struct cli_option *r = find_long(p->t, p->cmd->bit, word, len);
	bool negated = false;

	if (!r && len > 3 && !strncmp(word, "no-", 3)) {
		r = find_long(p->t, p->cmd->bit, word + 3, len - 3);
		negated = r && r->arg == ARG_NONE;
		r = negated ? r : NULL;
	}
	if (!r) {
		r = find_long(p->t, ~0u, word, len);
		if (r)
			return wrong_command(p, r, false);
		return usage_error(p, "unknown option --%.*s", (int)len, word);
	}
	if (r->kind != K_TODO && eq && (r->arg == ARG_NONE || negated))
		return usage_error(p, "option --%s takes no argument", r->name);
	if (r->kind != K_TODO && !eq && r->arg == ARG_REQUIRED && p->i < p->argc)
		return apply(p, r, false, p->argv[p->i++], false);
	return apply(p, r, false, eq ? eq + 1 : NULL, negated);
}

/* -X, clustered (-jR), with its argument attached (-t1, -v4) or next (-t 1). */
static int parse_short(struct parse *p, const char *word)
{
	for (const char *c = word; *c; c++) {
		const struct cli_option *r = find_short(p->t, p->cmd->bit, *c);
		const char *arg = c[1] ? c + 1 : NULL;
		int ret;

		if (!r) {
			r = find_short(p->t, ~0u, *c);
			if (r)
				return wrong_command(p, r, true);
			return usage_error(p, "unknown option -%c", *c);
		}
		if (r->arg == ARG_NONE || r->kind == K_TODO) {
			if ((ret = apply(p, r, true, NULL, false)))
				return ret;
			continue;
		}
		if (!arg && r->arg == ARG_REQUIRED && p->i < p->argc)
			arg = p->argv[p->i++];
		return apply(p, r, true, arg, false);
	}
	return 0;
}

/* run: the command is every word from here on, options included. */
static bool take_command(struct parse *p)
{
	if (!p->cmd->command_arg)
		return false;
	p->o->command.v = (const char **)(p->argv + p->i);
	p->o->command.n = p->argc - p->i;
	p->i = p->argc;
	return true;
}

static int parse_operand(struct parse *p, const char *word)
{
	if (p->cmd->command_arg) {
		p->i--;
		take_command(p);
		return 0;
	}
	if (!p->cmd->dir_arg || p->operand)
		return usage_error(p, "unexpected argument '%s'", word);
	p->operand = word;
	return 0;
}

/* What the command needs once every word is parsed. */
static int check_needed(struct parse *p)
{
	if (p->operand && p->o->images_dir)
		return usage_error(p, "give DIR either with -D or as the argument, not both");
	if (p->operand)
		p->o->images_dir = p->operand;
	if (!p->cmd->run)
		return 0;
	if (p->cmd->needs_pid && !p->o->pid)
		return usage_error(p, "-t PID is required");
	if (p->cmd->needs_dir && !p->o->images_dir)
		return usage_error(p, "-D DIR is required");
	if (p->cmd->command_arg && !p->o->resume && !p->o->command.n)
		return usage_error(p, "give the command to run after --");
	if (p->cmd->command_arg && p->o->resume && p->o->command.n)
		return usage_error(p, "--resume takes no command: it resumes DIR's job");
	return 0;
}

int cli_parse(const struct cli_table *t, const struct cli_command *cmd, int argc, char **argv,
	      struct cryo_opts *o)
{
	struct parse p = {.t = t, .cmd = cmd, .o = o, .argc = argc, .i = 1, .argv = argv};
	bool options = true;
	int ret = 0;

	while (!ret && p.i < argc) {
		const char *word = argv[p.i++];

		if (options && !strcmp(word, "--")) {
			options = false;
			take_command(&p);
		} else if (options && word[0] == '-' && word[1] == '-')
			ret = parse_long(&p, word + 2);
		else if (options && word[0] == '-' && word[1])
			ret = parse_short(&p, word + 1);
		else
			ret = parse_operand(&p, word);
	}
	return ret ? ret : check_needed(&p);
}

void cli_release(const struct cli_table *t, struct cryo_opts *o)
{
	for (size_t i = 0; i < t->n; i++) {
		if (t->rows[i].kind != K_LIST)
			continue;
		struct cryo_strv *l = (void *)((char *)o + t->rows[i].field);
		free(l->v);
		l->v = NULL;
		l->n = 0;
	}
}

/* ------------------------------------------------------------------ help */

/* Prints words from column col on, breaking lines at width to column indent. */
static void wrap(FILE *out, const char *text, int col, int indent, int width)
{
	while (*text) {
		int len = strcspn(text, " ");

		if (col > indent && col + 1 + len > width) {
			fprintf(out, "\n%*s", indent, "");
			col = indent;
		} else if (col > indent) {
			fputc(' ', out);
			col++;
		}
		fprintf(out, "%.*s", len, text);
		col += len;
		text += len + strspn(text + len, " ");
	}
	fputc('\n', out);
}

/* "-t, --tree PID", "-v[N], --verbosity[=N]", "    --no-sync" */
static void option_label(const struct cli_option *r, char *buf, size_t len)
{
	const char *m = r->metavar ? r->metavar : "";
	int off;

	if (!r->short_name)
		off = snprintf(buf, len, "    --%s", r->name);
	else if (r->arg == ARG_OPTIONAL)
		off = snprintf(buf, len, "-%c[%s], --%s", r->short_name, m, r->name);
	else
		off = snprintf(buf, len, "-%c, --%s", r->short_name, r->name);
	if (r->arg != ARG_NONE)
		snprintf(buf + off, len - off, r->arg == ARG_REQUIRED ? " %s" : "[=%s]", m);
}

static void print_options(const struct cli_table *t, unsigned bit, FILE *out)
{
	enum { COL = 28 };
	char label[96];

	fputs("\nOptions:\n", out);
	for (size_t i = 0; i < t->n; i++) {
		const struct cli_option *r = &t->rows[i];

		if (!(r->cmds & bit) || r->kind == K_TODO)
			continue;
		option_label(r, label, sizeof(label));
		if (strlen(label) + 3 > COL)
			fprintf(out, "  %s\n%*s", label, COL, "");
		else
			fprintf(out, "  %-*s", COL - 2, label);
		wrap(out, r->help, COL, COL, 79);
	}
}

static void print_refused(const struct cli_table *t, unsigned bit, FILE *out)
{
	char list[4096];
	size_t off = 0;

	for (size_t i = 0; i < t->n && off < sizeof(list); i++)
		if ((t->rows[i].cmds & bit) && t->rows[i].kind == K_TODO)
			off += snprintf(list + off, sizeof(list) - off, "%s--%s", off ? " " : "",
					t->rows[i].name);
	if (!off)
		return;
	fputs("\nOptions of CRIU's that cryo does not support yet (refused, exit status 1):\n  ",
	      out);
	wrap(out, list, 2, 2, 79);
}

void cli_usage(const struct cli_table *t, FILE *out)
{
	fputs("usage: cryo COMMAND [options]\n\n"
	      "cryo checkpoints a running Linux process tree to a directory of image files\n"
	      "and restores it later, with the same pids, from the instruction where it\n"
	      "stopped. Its commands and options are CRIU's.\n\nCommands:\n",
	      out);
	for (size_t i = 0; i < t->ncmds; i++)
		fprintf(out, "  %-16s %s\n", t->cmds[i].name, t->cmds[i].brief);
	fprintf(out, "  %-16s %s\n", "help [COMMAND]", "this text, or a command's options");
	fputs("\nRun 'cryo COMMAND --help' for a command's options; 'cryo --version' prints\n"
	      "the version.\n",
	      out);
}

void cli_help(const struct cli_table *t, const struct cli_command *cmd, FILE *out)
{
	fprintf(out, "usage: %s\n\n%s", cmd->synopsis, cmd->about);
	if (!cmd->run)
		fprintf(out, "cryo %s is not supported yet: it is refused with exit status 1.\n",
			cmd->name);
	fprintf(out, "\nExample:\n%s", cmd->example);
	print_options(t, cmd->bit, out);
	print_refused(t, cmd->bit, out);
}

void cli_list(const struct cli_table *t, FILE *out)
{
	static const char *const args[] = {"none", "required", "optional"};

	for (size_t c = 0; c < t->ncmds; c++)
		fprintf(out, "command\t%s\t%s\n", t->cmds[c].name, t->cmds[c].run ? "yes" : "todo");
	for (size_t c = 0; c < t->ncmds; c++)
		for (size_t i = 0; i < t->n; i++) {
			const struct cli_option *r = &t->rows[i];
			const char *state = r->kind == K_TODO	? "todo"
					    : r->kind == K_HELP ? "help"
								: "yes";
			char sh[3] = {'-', r->short_name, 0};

			if (!(r->cmds & t->cmds[c].bit))
				continue;
			fprintf(out, "option\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", t->cmds[c].name,
				r->name, sh, args[r->arg], state, r->metavar ? r->metavar : "-",
				r->help);
		}
}
