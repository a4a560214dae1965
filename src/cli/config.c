/*
 * config: CRIU's --config FILE, options read from a file (config.h).
 *
 * The syntax is CRIU's: one option a line, its name without the leading
 * "--", then its argument if it takes one, after white space; an argument
 * with white space in it is written in double quotes (a \" inside stands
 * for a quote); '#' outside quotes starts a comment. Each line becomes one
 * word "--NAME" or "--NAME=ARG", placed before the command line's own
 * options, so that those (parsed later) override the file, as in CRIU.
 * cryo reads no default configuration file (CRIU's /etc/criu/default.conf
 * is CRIU's).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/config.h"

#define LINE_MAX_LEN 4096

/* The argument at p (quoted or not) into out; -1 if a quote is not closed. */
static int read_arg(const char *p, char *out, size_t len)
{
	size_t n = 0;

	if (*p != '"') {
		while (*p && *p != '#' && *p != ' ' && *p != '\t' && n + 1 < len)
			out[n++] = *p++;
		out[n] = 0;
		return 0;
	}
	for (p++; *p && *p != '"' && n + 1 < len; p++)
		out[n++] = (p[0] == '\\' && p[1] == '"') ? *++p : *p;
	out[n] = 0;
	return *p == '"' ? 0 : -1;
}

/* One line into "--NAME[=ARG]" (NULL *word: nothing on it). */
static int parse_line(const char *line, char **word)
{
	char name[256], arg[LINE_MAX_LEN];
	size_t n = 0;

	*word = NULL;
	line += strspn(line, " \t");
	while (*line && *line != '#' && *line != ' ' && *line != '\t' && *line != '\n' &&
	       n + 1 < sizeof(name))
		name[n++] = *line++;
	name[n] = 0;
	if (!n)
		return 0;
	line += strspn(line, " \t");
	arg[0] = 0;
	if (*line && *line != '#' && *line != '\n' && read_arg(line, arg, sizeof(arg)))
		return -1;
	if (asprintf(word, arg[0] ? "--%s=%s" : "--%s", name, arg) < 0)
		return -1;
	return 0;
}

static int add_word(struct cli_config *c, char *w)
{
	char **grown = realloc(c->words, (c->n + 1) * sizeof(*grown));

	if (!grown)
		return -1;
	c->words = grown;
	c->words[c->n++] = w;
	return 0;
}

int cli_config_read(const char *path, struct cli_config *c)
{
	char line[LINE_MAX_LEN];
	FILE *f = fopen(path, "re");
	int no = 0;

	if (!f) {
		fprintf(stderr, "cryo: cannot read the configuration file %s: %s\n", path,
			strerror(errno));
		return -1;
	}
	while (fgets(line, sizeof(line), f)) {
		char *w;
		no++;
		line[strcspn(line, "\n")] = 0;
		if (parse_line(line, &w) || (w && add_word(c, w))) {
			fprintf(stderr, "cryo: %s:%d: cannot read this line (an unclosed quote?)\n",
				path, no);
			free(w);
			fclose(f);
			return -1;
		}
	}
	fclose(f);
	return 0;
}

void cli_config_free(struct cli_config *c)
{
	for (size_t i = 0; i < c->n; i++)
		free(c->words[i]);
	free(c->words);
	c->words = NULL;
	c->n = 0;
}
