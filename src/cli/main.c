/*
 * cryo command line: parses one command's options into struct cryo_opts and
 * calls the library. Verbs and option letters follow CRIU's, so that
 * `criu dump -t PID -D DIR --shell-job` works with criu replaced by cryo.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cryo/cryo.h"
#include "infra/log.h"

enum { OPT_PIDFILE = 256, OPT_JSON, OPT_NO_SYNC, OPT_FILE_LOCKS };

struct command {
	const char *name;
	const char *shortopts;
	const struct option *longopts;
	const char *usage;
	int (*run)(const struct cryo_opts *opts);
	bool needs_pid, needs_dir;
};

static const struct option dump_longopts[] = {
    {"tree", required_argument, 0, 't'},
    {"images-dir", required_argument, 0, 'D'},
    {"verbosity", optional_argument, 0, 'v'},
    {"log-file", required_argument, 0, 'o'},
    {"shell-job", no_argument, 0, 'j'},
    {"leave-running", no_argument, 0, 'R'},
    {"no-sync", no_argument, 0, OPT_NO_SYNC},
    {"file-locks", no_argument, 0, OPT_FILE_LOCKS},
    {"help", no_argument, 0, 'h'},
    {0, 0, 0, 0},
};

static const struct option restore_longopts[] = {
    {"images-dir", required_argument, 0, 'D'},
    {"restore-detached", no_argument, 0, 'd'},
    {"shell-job", no_argument, 0, 'j'},
    {"pidfile", required_argument, 0, OPT_PIDFILE},
    {"verbosity", optional_argument, 0, 'v'},
    {"log-file", required_argument, 0, 'o'},
    {"help", no_argument, 0, 'h'},
    {0, 0, 0, 0},
};

static const struct option show_longopts[] = {
    {"images-dir", required_argument, 0, 'D'},
    {"json", no_argument, 0, OPT_JSON},
    {"help", no_argument, 0, 'h'},
    {0, 0, 0, 0},
};

static const struct option check_longopts[] = {
    {"verbosity", optional_argument, 0, 'v'},
    {"log-file", required_argument, 0, 'o'},
    {"help", no_argument, 0, 'h'},
    {0, 0, 0, 0},
};

static const struct command commands[] = {
    {"dump", "t:D:v::o:jRh", dump_longopts,
     "usage: cryo dump -t PID -D DIR [options]\n"
     "Checkpoint process PID into the images directory DIR (created if missing).\n"
     "The process is killed once the checkpoint is committed, unless -R.\n\n"
     "  -t, --tree PID          the process to checkpoint\n"
     "  -D, --images-dir DIR    where to write the images\n"
     "  -R, --leave-running     leave the process running after the checkpoint\n"
     "  -j, --shell-job         the process runs on a terminal (a shell job)\n"
     "      --no-sync           do not fsync the images (tmpfs, benchmarks)\n"
     "      --file-locks        save the file locks held (flock, POSIX, OFD)\n"
     "  -v[N], --verbosity[=N]  log level: 0 errors, 1 warnings, 2 info, 4 debug\n"
     "  -o, --log-file FILE     write the log to FILE instead of stderr\n"
     "  -h, --help              this text\n",
     cryo_dump, true, true},
    {"restore", "D:dv::o:jh", restore_longopts,
     "usage: cryo restore -D DIR [options]\n"
     "Restore the checkpoint in DIR with its original pid. Without -d, cryo waits\n"
     "for the restored process and exits with its exit status (128+N if killed by\n"
     "signal N).\n\n"
     "  -D, --images-dir DIR        the checkpoint to restore\n"
     "  -d, --restore-detached      exit as soon as the process runs\n"
     "  -j, --shell-job             give the process this terminal, in the foreground\n"
     "      --pidfile FILE          write the restored pid to FILE\n"
     "  -v[N], --verbosity[=N]      log level: 0 errors, 1 warnings, 2 info, 4 debug\n"
     "  -o, --log-file FILE         write the log to FILE instead of stderr\n"
     "  -h, --help                  this text\n",
     cryo_restore, false, true},
    {"show", "D:h", show_longopts,
     "usage: cryo show [--json] DIR\n"
     "Verify and print every image of the checkpoint in DIR, as text or as JSON.\n\n"
     "  -D, --images-dir DIR    the checkpoint (or give DIR as the argument)\n"
     "      --json              one JSON object on standard output\n"
     "  -h, --help              this text\n",
     cryo_show, false, true},
    {"check", "v::o:h", check_longopts,
     "usage: cryo check [-v N]\n"
     "Check that this kernel has every feature cryo needs; list optional ones.\n"
     "Prints \"Looks good.\" and exits 0 if so.\n\n"
     "  -v[N], --verbosity[=N]  with 2 or more, list every feature probed\n"
     "  -h, --help              this text\n",
     cryo_check, false, false},
};

static void usage(FILE *out)
{
	fprintf(out,
		"usage: cryo COMMAND [options]\n\n"
		"cryo checkpoints a running Linux process to a directory of image files and\n"
		"restores it later, with the same pid, from the instruction where it stopped.\n\n"
		"Commands:\n"
		"  dump -t PID -D DIR     checkpoint a process\n"
		"  restore -D DIR         restore a checkpoint\n"
		"  show DIR               print a checkpoint (--json for JSON)\n"
		"  check                  check the kernel's features\n"
		"  help [COMMAND]         show help\n\n"
		"Run 'cryo COMMAND --help' for a command's options. cryo --version prints\n"
		"the version.\n");
}

static int bad_usage(const struct command *cmd, const char *fmt, const char *arg)
{
	fprintf(stderr, "cryo: %s: ", cmd->name);
	fprintf(stderr, fmt, arg);
	fprintf(stderr, " (see 'cryo %s --help')\n", cmd->name);
	return 2;
}

static int parse_verbosity(const char *arg, int *v)
{
	char *end;

	if (!arg) {
		*v = *v < 2 ? 2 : *v + 1;
		return 0;
	}
	long n = strtol(arg, &end, 10);
	if (*end || n < 0 || n > 9)
		return -1;
	*v = n;
	return 0;
}

static int parse_pid(const char *arg, pid_t *pid)
{
	char *end;
	long n;

	errno = 0;
	n = strtol(arg, &end, 10);
	if (errno || *end || end == arg || n <= 0 || n > 4194304)
		return -1;
	*pid = n;
	return 0;
}

static int parse_option(const struct command *cmd, int c, struct cryo_opts *o)
{
	switch (c) {
	case 't':
		return parse_pid(optarg, &o->pid) ? bad_usage(cmd, "'%s' is not a pid", optarg) : 0;
	case 'D':
		o->images_dir = optarg;
		return 0;
	case 'v':
		return parse_verbosity(optarg, &o->verbosity)
			   ? bad_usage(cmd, "bad verbosity '%s'", optarg)
			   : 0;
	case 'o':
		o->log_file = optarg;
		return 0;
	case 'j':
		o->shell_job = true;
		return 0;
	case 'R':
		o->leave_running = true;
		return 0;
	case 'd':
		o->detach = true;
		return 0;
	case OPT_PIDFILE:
		o->pidfile = optarg;
		return 0;
	case OPT_JSON:
		o->json = true;
		return 0;
	case OPT_NO_SYNC:
		o->no_sync = true;
		return 0;
	case OPT_FILE_LOCKS:
		o->file_locks = true;
		return 0;
	default:
		return bad_usage(cmd, "%s", "bad option");
	}
}

static int parse_args(const struct command *cmd, int argc, char **argv, struct cryo_opts *o)
{
	int c, r;

	opterr = 0;
	optind = 1;
	while ((c = getopt_long(argc, argv, cmd->shortopts, cmd->longopts, NULL)) != -1) {
		if (c == 'h') {
			fputs(cmd->usage, stdout);
			return -1;
		}
		if (c == '?')
			return bad_usage(cmd, "unknown or incomplete option '%s'",
					 argv[optind - 1]);
		if ((r = parse_option(cmd, c, o)))
			return r;
	}
	if (!strcmp(cmd->name, "show") && !o->images_dir && optind < argc)
		o->images_dir = argv[optind++];
	if (optind < argc)
		return bad_usage(cmd, "unexpected argument '%s'", argv[optind]);
	if (cmd->needs_pid && !o->pid)
		return bad_usage(cmd, "%s", "-t PID is required");
	if (cmd->needs_dir && !o->images_dir)
		return bad_usage(cmd, "%s", "-D DIR is required");
	return 0;
}

static const struct command *find_command(const char *name)
{
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		if (!strcmp(commands[i].name, name))
			return &commands[i];
	return NULL;
}

static int help(int argc, char **argv)
{
	bool asked = argc > 2 && strcmp(argv[2], "--help") && strcmp(argv[2], "-h");
	const struct command *cmd = asked ? find_command(argv[2]) : NULL;

	if (asked && !cmd) {
		fprintf(stderr, "cryo: help: unknown command '%s'\n", argv[2]);
		return 2;
	}
	if (cmd)
		fputs(cmd->usage, stdout);
	else
		usage(stdout);
	return 0;
}

int main(int argc, char **argv)
{
	struct cryo_opts opts = {.verbosity = 1};
	const struct command *cmd;
	int r;

	if (argc < 2) {
		fprintf(stderr, "cryo: no command given (see 'cryo --help')\n");
		return 2;
	}
	if (!strcmp(argv[1], "--version") || !strcmp(argv[1], "-V")) {
		printf("cryo %s\n", CRYO_VERSION);
		return 0;
	}
	if (!strcmp(argv[1], "help") || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))
		return help(argc, argv);
	cmd = find_command(argv[1]);
	if (!cmd) {
		fprintf(stderr, "cryo: unknown command '%s' (see 'cryo --help')\n", argv[1]);
		return 2;
	}
	r = parse_args(cmd, argc - 1, argv + 1, &opts);
	if (r)
		return r < 0 ? 0 : r;
	if (log_init(opts.verbosity, opts.log_file)) {
		err_report();
		return 1;
	}
	r = cmd->run(&opts);
	if (r && err_pending())
		err_report();
	log_fini();
	return r < 0 || r > 255 ? 1 : r;
}
