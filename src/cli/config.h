/* config: --config FILE, CRIU's configuration files (config.c). */
#ifndef CRYO_CLI_CONFIG_H
#define CRYO_CLI_CONFIG_H

#include <stddef.h>

/* The options a file gives, as command-line words "--NAME[=ARG]". */
struct cli_config {
	char **words;
	size_t n;
};

/* Appends the options of the file at path to c; -1 with one line said on
 * stderr if it cannot be read or a line cannot be parsed. */
int cli_config_read(const char *path, struct cli_config *c);
void cli_config_free(struct cli_config *c);

#endif
