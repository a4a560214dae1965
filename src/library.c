/*
 * library: what a program linked with libcryo needs beside the four
 * commands (cryo_dump, cryo_restore, cryo_show, cryo_check): setting up the
 * log the commands write to, and the text of the error a command failed
 * with. Errors are kept per thread (infra/log.c), so a program may run
 * commands from several threads and read each one's own error.
 */
#include <cryo/cryo.h>

#include <stddef.h>

#include "infra/log.h"

int cryo_log_open(int verbosity, const char *log_file)
{
	return log_init(verbosity, log_file) ? 1 : 0;
}

void cryo_log_close(void)
{
	log_fini();
}

const char *cryo_strerror(void)
{
	return err_pending() ? err_text() : NULL;
}

void cryo_clear_error(void)
{
	err_clear();
}
