/*
 * Unit test of the command line's parser (src/cli/options.c) on a table of
 * its own, for the kinds of values cryo's table does not use yet (numbers,
 * sizes, repeatable options, choices, an optional argument's implied value)
 * and for the parser's rules (clusters, attached and separate arguments,
 * --no-NAME, "--", operands, exit statuses). The options of cryo's own
 * table are tested through the binary by tests/test_cli.py. Prints
 * `unit: check NAME ok` or `unit: FAIL NAME: detail` per check and exits
 * non-zero if any failed. Built by `make unit` into build/unit/.
 */
#include <stdio.h>
#include <string.h>

#include "cli/options.h"

/* cryo_opts, then fields for kinds cryo_opts has none of yet. */
struct test_opts {
	struct cryo_opts o;
	unsigned timeout;
	unsigned long long limit;
	struct cryo_strv ext;
	const char *mode;
	bool lazy;
};

#define T(f) offsetof(struct test_opts, f)
#define C(f) offsetof(struct cryo_opts, f)

static const struct cli_option rows[] = {
    {"tree", 't', CLI_DUMP, ARG_REQUIRED, "PID", "pid", K_PID, C(pid), NULL, NULL},
    {"images-dir", 'D', CLI_DUMP | CLI_SHOW, ARG_REQUIRED, "DIR", "dir", K_STR, C(images_dir), NULL,
     NULL},
    {"verbosity", 'v', CLI_DUMP, ARG_OPTIONAL, "N", "level", K_LEVEL, C(verbosity), NULL, NULL},
    {"leave-running", 'R', CLI_DUMP, ARG_NONE, NULL, "flag", K_FLAG, C(leave_running), NULL, NULL},
    {"shell-job", 'j', CLI_DUMP, ARG_NONE, NULL, "flag", K_FLAG, C(shell_job), NULL, NULL},
    {"timeout", 0, CLI_DUMP, ARG_REQUIRED, "S", "uint", K_UINT, T(timeout), NULL, NULL},
    {"ghost-limit", 0, CLI_DUMP, ARG_REQUIRED, "SIZE", "size", K_SIZE, T(limit), NULL, NULL},
    {"external", 'e', CLI_DUMP, ARG_REQUIRED, "RES", "list", K_LIST, T(ext), NULL, NULL},
    {"manage-cgroups", 0, CLI_DUMP, ARG_OPTIONAL, "MODE", "mode", K_STR, T(mode), "soft",
     "none,props,soft,full"},
    {"lazy-pages", 0, CLI_DUMP, ARG_NONE, NULL, "flag", K_FLAG, T(lazy), NULL, NULL},
    {"tcp-established", 0, CLI_DUMP, ARG_NONE, NULL, "todo", K_TODO, 0, NULL, NULL},
    {"json", 0, CLI_SHOW, ARG_NONE, NULL, "show's", K_FLAG, C(json), NULL, NULL},
};

static const struct cli_command cmds[] = {
    {"dump", CLI_DUMP, "dump", "", "", "", cryo_dump, true, true, false, false},
    {"show", CLI_SHOW, "show", "", "", "", cryo_show, false, true, true, false},
};

static const struct cli_table table = {rows, sizeof(rows) / sizeof(rows[0]), cmds, 2};

static int failures;

/* Parses the words (NULL-terminated, the command first) into *t; returns cli_parse's result. */
static int parse(struct test_opts *t, const char *const *words)
{
	char *argv[32];
	int argc = 0;

	memset(t, 0, sizeof(*t));
	t->o.verbosity = 1;
	while (words[argc] && argc < 31) {
		argv[argc] = (char *)words[argc];
		argc++;
	}
	argv[argc] = NULL;
	cli_release(&table, &t->o);
	return cli_parse(&table, cli_find_command(&table, argv[0]), argc, argv, &t->o);
}

static void check(const char *name, bool ok, const char *detail)
{
	if (ok) {
		printf("unit: check %s ok\n", name);
	} else {
		printf("unit: FAIL %s: %s\n", name, detail);
		failures++;
	}
}

#define W(...) ((const char *const[]){__VA_ARGS__, NULL})

static void check_values(void)
{
	struct test_opts t;
	int r;

	r = parse(&t, W("dump", "-t1", "-D", "d", "--timeout=30", "--ghost-limit", "16M"));
	check("values",
	      !r && t.o.pid == 1 && !strcmp(t.o.images_dir, "d") && t.timeout == 30 &&
		  t.limit == 16ull << 20,
	      "pid, dir, uint or size wrong");
	r = parse(&t, W("dump", "-t", "1", "-D", "d", "--ghost-limit=4096", "--timeout", "0"));
	check("size-plain", !r && t.limit == 4096 && t.timeout == 0, "4096 / 0 not taken");
	check("size-bad", parse(&t, W("dump", "-t1", "-Dd", "--ghost-limit=1T")) == 2, "1T taken");
	check("size-bad-empty-number", parse(&t, W("dump", "-t1", "-Dd", "--ghost-limit=K")) == 2,
	      "K taken");
	check("uint-bad", parse(&t, W("dump", "-t1", "-Dd", "--timeout=-1")) == 2, "-1 taken");
	check("uint-too-big", parse(&t, W("dump", "-t1", "-Dd", "--timeout=4294967296")) == 2,
	      "2^32 taken");
	r = parse(&t, W("dump", "-t1", "-Dd", "--external", "a", "-eb", "--external=c"));
	check("list",
	      !r && t.ext.n == 3 && !strcmp(t.ext.v[0], "a") && !strcmp(t.ext.v[1], "b") &&
		  !strcmp(t.ext.v[2], "c"),
	      "three --external not kept in order");
	cli_release(&table, &t.o);
	check("list-release", !t.ext.v && !t.ext.n, "list not freed");
}

static void check_choices_and_flags(void)
{
	struct test_opts t;
	int r;

	r = parse(&t, W("dump", "-t1", "-Dd", "--manage-cgroups"));
	check("implied", !r && t.mode && !strcmp(t.mode, "soft"), "no implied 'soft'");
	r = parse(&t, W("dump", "-t1", "-Dd", "--manage-cgroups=full"));
	check("choice", !r && !strcmp(t.mode, "full"), "full not taken");
	check("choice-bad", parse(&t, W("dump", "-t1", "-Dd", "--manage-cgroups=ful")) == 2,
	      "'ful' taken");
	check("optional-not-separate",
	      parse(&t, W("dump", "-t1", "-Dd", "--manage-cgroups", "full")) == 2,
	      "an optional argument was taken from the next word");
	r = parse(&t, W("dump", "-jR", "-t1", "-Dd", "--lazy-pages", "--no-lazy-pages"));
	check("cluster-and-negation", !r && t.o.shell_job && t.o.leave_running && !t.lazy,
	      "-jR or --no-lazy-pages wrong");
	check("negated-todo-accepted",
	      parse(&t, W("dump", "-t1", "-Dd", "--no-tcp-established")) == 0,
	      "--no-tcp-established refused");
	check("todo-refused", parse(&t, W("dump", "-t1", "-Dd", "--tcp-established")) == 1,
	      "--tcp-established not exit 1");
	check("negated-with-arg", parse(&t, W("dump", "-t1", "-Dd", "--no-lazy-pages=1")) == 2,
	      "--no-lazy-pages=1 taken");
	check("no-of-option-with-arg", parse(&t, W("dump", "-t1", "-Dd", "--no-timeout")) == 2,
	      "--no-timeout taken");
}

static void check_words(void)
{
	struct test_opts t;
	int r;

	r = parse(&t, W("dump", "-t1", "-v", "-Dd"));
	check("v", !r && t.o.verbosity == 2, "-v is not 2");
	r = parse(&t, W("dump", "-t1", "-vvv", "-Dd"));
	check("vvv", !r && t.o.verbosity == 4, "-vvv is not 4");
	r = parse(&t, W("dump", "-t1", "-v0", "--verbosity=7", "-Dd"));
	check("v-number", !r && t.o.verbosity == 7, "--verbosity=7 not taken");
	check("v-bad", parse(&t, W("dump", "-t1", "-v10", "-Dd")) == 2, "-v10 taken");
	check("pid-bad", parse(&t, W("dump", "-t4194305", "-Dd")) == 2, "pid 4194305 taken");
	check("operand-refused", parse(&t, W("dump", "-t1", "-Dd", "x")) == 2, "operand taken");
	r = parse(&t, W("show", "--json", "--", "-dir"));
	check("double-dash", !r && t.o.json && !strcmp(t.o.images_dir, "-dir"),
	      "'--' did not end the options");
	check("wrong-command", parse(&t, W("show", "-t1", "x")) == 2, "show took -t");
	check("missing-pid", parse(&t, W("dump", "-Dd")) == 2, "no -t taken");
	check("missing-arg", parse(&t, W("dump", "-Dd", "-t")) == 2, "-t without PID taken");
}

int main(void)
{
	if (!freopen("/dev/null", "w", stderr))
		return 1;
	check_values();
	check_choices_and_flags();
	check_words();
	return failures ? 1 : 0;
}
