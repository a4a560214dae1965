/*
 * The command line's table of commands and options (src/cli/options.c) and
 * its parser.
 *
 * One row per option and set of commands: its long and short name, the
 * commands that take it, whether it takes an argument, a help text, and
 * where its value goes in struct cryo_opts (kind + field) -- or K_TODO, an
 * option of CRIU's that cryo does not implement yet, which the parser
 * refuses with one line and exit status 1. Help, the option lists of
 * `cryo COMMAND --help` and `cryo --list-options` (read by the tests) are
 * all printed from the table.
 */
#ifndef CRYO_CLI_OPTIONS_H
#define CRYO_CLI_OPTIONS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "cryo/cryo.h"

/* The commands, as bits: a row names the set of commands that take it. */
enum cli_cmd {
	CLI_DUMP = 1 << 0,
	CLI_PRE_DUMP = 1 << 1,
	CLI_RESTORE = 1 << 2,
	CLI_SHOW = 1 << 3,
	CLI_CHECK = 1 << 4,
	CLI_RUN = 1 << 5,
	CLI_CHECKPOINT = 1 << 6,
	CLI_UNLOCK = 1 << 7,
};

enum cli_arg { ARG_NONE, ARG_REQUIRED, ARG_OPTIONAL };

/* How a row's argument is stored in its field of struct cryo_opts. */
enum cli_kind {
	K_TODO,	 /* CRIU's option, not implemented: refused (no field) */
	K_HELP,	 /* -h/--help: print the command's help (no field) */
	K_FLAG,	 /* bool: true; --no-NAME sets false */
	K_STR,	 /* const char *: the argument (or .implied if it is optional) */
	K_PID,	 /* pid_t: 1..4194304 */
	K_LEVEL, /* int verbosity: -vN sets N (0-9); -v, -vv... add 1 each (at least 2) */
	K_UINT,	 /* unsigned int: a decimal number */
	K_SIZE,	 /* unsigned long long: bytes, with an optional K, M or G */
	K_LIST,	 /* struct cryo_strv: each use adds its argument (repeatable) */
};

struct cli_option {
	const char *name;    /* long name, without "--" */
	char short_name;     /* 0: none */
	unsigned cmds;	     /* enum cli_cmd bits */
	enum cli_arg arg;    /* ARG_OPTIONAL: only attached (-vN, --name=ARG), as CRIU */
	const char *metavar; /* the argument's name in help: "PID", "DIR", "MODE" */
	const char *help;    /* one short line */
	enum cli_kind kind;  /* K_TODO: not supported yet */
	size_t field;	     /* offsetof(struct cryo_opts, ...) */
	const char *implied; /* K_STR with ARG_OPTIONAL: the value when none is given */
	const char *choices; /* K_STR: the accepted values, comma-separated, or NULL */
};

struct cli_command {
	const char *name;
	unsigned bit;				  /* enum cli_cmd */
	const char *synopsis;			  /* "cryo dump -t PID -D DIR [options]" */
	const char *brief;			  /* for `cryo --help`'s list of commands */
	const char *about;			  /* a paragraph, lines broken at 76 columns */
	const char *example;			  /* one or more command lines */
	int (*run)(const struct cryo_opts *opts); /* NULL: not supported yet */
	bool needs_pid, needs_dir;
	bool dir_arg;	  /* DIR may also be given as the only argument (show) */
	bool command_arg; /* the first operand (or what follows --) is a command (run) */
};

struct cli_table {
	const struct cli_option *rows;
	size_t n;
	const struct cli_command *cmds;
	size_t ncmds;
};

/* What cli_parse returns besides 0 and exit statuses. */
enum { CLI_HELP_SHOWN = -1 };

/* cryo's own table of options and commands (options.c). */
extern const struct cli_table cli_cryo_table;

const struct cli_command *cli_find_command(const struct cli_table *t, const char *name);

/*
 * Parses argv[1..argc-1] (argv[0] is the command's name) into o. Returns 0,
 * CLI_HELP_SHOWN (--help printed on stdout), or an exit status after one
 * "cryo: CMD: ..." line on stderr: 1 for an option not supported yet, 2
 * for bad usage. K_LIST fields are allocated: cli_release() frees them.
 */
int cli_parse(const struct cli_table *t, const struct cli_command *cmd, int argc, char **argv,
	      struct cryo_opts *o);
void cli_release(const struct cli_table *t, struct cryo_opts *o);
/* `cryo --help`: what cryo is and the list of commands. */
void cli_usage(const struct cli_table *t, FILE *out);
/* `cryo COMMAND --help`: synopsis, about, example, the options, the refused ones. */
void cli_help(const struct cli_table *t, const struct cli_command *cmd, FILE *out);
/*
 * `cryo --list-options`, for the tests: one line per command,
 * "command NAME yes|todo", then one per command and option,
 * "option COMMAND LONG SHORT ARG STATE METAVAR HELP", tab-separated, with
 * "-" for no short name or metavar; ARG none|required|optional; STATE
 * yes|todo|help.
 */
void cli_list(const struct cli_table *t, FILE *out);

#endif
