/*
 * cryo command line: finds the command, has its options parsed into struct
 * cryo_opts (the table of commands and options and the parser are in
 * options.c), and calls the library. Verbs and option letters follow
 * CRIU's, so that `criu dump -t PID -D DIR --shell-job` works with criu
 * replaced by cryo.
 *
 * Exit status: 0, or 1 when the command failed or asked for what cryo does
 * not support yet, or 2 for bad usage, or a restored process's own status.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli/config.h"
#include "cli/options.h"
#include "cryo/cryo.h"
#include "infra/log.h"

static bool is_help(const char *arg)
{
	return !strcmp(arg, "help") || !strcmp(arg, "--help") || !strcmp(arg, "-h");
}

/* cryo help [COMMAND], cryo --help */
static int help(const struct cli_table *t, int argc, char **argv)
{
	const struct cli_command *cmd;

	if (argc < 3 || is_help(argv[2])) {
		cli_usage(t, stdout);
		return 0;
	}
	cmd = cli_find_command(t, argv[2]);
	if (!cmd) {
		fprintf(stderr, "cryo: help: unknown command '%s' (see cryo --help)\n", argv[2]);
		return 2;
	}
	cli_help(t, cmd, stdout);
	return 0;
}

/* -W DIR: a relative --log-file or --pidfile names a file in DIR (as
 * CRIU's --work-dir); the images directory stays where -D says. */
static int in_work_dir(const char *dir, const char **path, char *buf, size_t len)
{
	struct stat st;

	if (!dir)
		return 0;
	if (stat(dir, &st) || !S_ISDIR(st.st_mode)) {
		fprintf(stderr, "cryo: work dir %s: %s\n", dir,
			errno ? strerror(errno) : "not a directory");
		return -1;
	}
	if (*path && (*path)[0] != '/' && strcmp(*path, "-")) {
		if ((size_t)snprintf(buf, len, "%s/%s", dir, *path) >= len) {
			fprintf(stderr, "cryo: %s/%s: path too long\n", dir, *path);
			return -1;
		}
		*path = buf;
	}
	return 0;
}

static int run(const struct cli_command *cmd, const struct cryo_opts *given)
{
	char log_path[PATH_MAX], pid_path[PATH_MAX];
	struct cryo_opts resolved = *given;
	const struct cryo_opts *opts = &resolved;
	int r;

	errno = 0;
	if (in_work_dir(given->work_dir, &resolved.log_file, log_path, sizeof(log_path)) ||
	    in_work_dir(given->work_dir, &resolved.pidfile, pid_path, sizeof(pid_path)))
		return 1;

	if (given->log_pid && (!given->log_file || !strcmp(given->log_file, "-"))) {
		fprintf(stderr,
			"cryo: %s: --log-pid needs --log-file (-o FILE): process N logs to "
			"FILE.N\n",
			cmd->name);
		return 1;
	}
	if (given->file_validation && strcmp(given->file_validation, "filesize")) {
		fprintf(stderr,
			"cryo: %s: --file-validation=%s is not supported: files are "
			"checked by their size (filesize)\n",
			cmd->name, given->file_validation);
		return 1;
	}
	if (!cmd->run) {
		fprintf(stderr, "cryo: %s is not supported yet\n", cmd->name);
		return 1;
	}
	if (log_init(opts->verbosity, opts->log_file)) {
		err_report();
		return 1;
	}
	r = cmd->run(opts);
	if (r && err_pending())
		err_report();
	log_fini();
	return r < 0 || r > 255 ? 1 : r;
}

/* The path a --config word names (argv[*i], its argument maybe next), or NULL. */
static const char *config_path(int argc, char **argv, int *i)
{
	if (!strncmp(argv[*i], "--config=", 9))
		return argv[*i] + 9;
	if (strcmp(argv[*i], "--config") || *i + 1 >= argc)
		return NULL;
	return argv[++*i];
}

/* The command's words (argv[0]: its name) with the options of each --config
 * file first and the --config words left out; the parser then lets the
 * command line's own options override the file's. */
static int with_config(int argc, char **argv, struct cli_config *conf, char ***out, int *n)
{
	char **v = malloc((argc + 1) * sizeof(*v));
	int k = 1;

	if (!v)
		return 1;
	v[0] = argv[0];
	for (int i = 1; i < argc; i++) {
		const char *path = strcmp(argv[i], "--") ? config_path(argc, argv, &i) : NULL;
		if (!strcmp(argv[i], "--")) {
			while (i < argc)
				v[k++] = argv[i++];
			break;
		}
		if (!path)
			v[k++] = argv[i];
		else if (cli_config_read(path, conf)) {
			free(v);
			return 1;
		}
	}
	char **all = malloc((k + conf->n + 1) * sizeof(*all));
	if (!all) {
		free(v);
		return 1;
	}
	all[0] = v[0];
	if (conf->n) /* words is NULL without a --config */
		memcpy(all + 1, conf->words, conf->n * sizeof(*all));
	memcpy(all + 1 + conf->n, v + 1, (k - 1) * sizeof(*all));
	all[k + conf->n] = NULL;
	free(v);
	*out = all;
	*n = k + conf->n;
	return 0;
}

int main(int argc, char **argv)
{
	const struct cli_table *t = &cli_cryo_table;
	struct cryo_opts opts = {.verbosity = 1};
	const struct cli_command *cmd;
	int r;

	if (argc < 2) {
		fprintf(stderr, "cryo: no command given (see cryo --help)\n");
		return 2;
	}
	if (!strcmp(argv[1], "--version") || !strcmp(argv[1], "-V")) {
		printf("cryo %s\n", CRYO_VERSION);
		return 0;
	}
	if (!strcmp(argv[1], "--list-options")) { /* for the tests: the table, tab-separated */
		cli_list(t, stdout);
		return 0;
	}
	if (is_help(argv[1]))
		return help(t, argc, argv);
	cmd = cli_find_command(t, argv[1]);
	if (!cmd) {
		fprintf(stderr, "cryo: unknown command '%s' (see cryo --help)\n", argv[1]);
		return 2;
	}
	struct cli_config conf = {0};
	char **args = NULL;
	int nargs = 0;
	if (with_config(argc - 1, argv + 1, &conf, &args, &nargs)) {
		cli_config_free(&conf);
		return 1;
	}
	r = cli_parse(t, cmd, nargs, args, &opts);
	if (!r)
		r = run(cmd, &opts);
	cli_release(t, &opts);
	free(args);
	cli_config_free(&conf);
	return r == CLI_HELP_SHOWN ? 0 : r;
}
