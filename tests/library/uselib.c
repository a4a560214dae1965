/* uselib.c: a program built against an installed libcryo, as a user would
 * (pkg-config --cflags --libs cryo). It checks what the public header
 * promises: a failed command returns non-zero and cryo_strerror() names
 * the cause; cryo_clear_error() forgets it; the log can be sent to a file
 * that then holds the command's lines; a command that works returns 0 with
 * no error pending. Prints "uselib: ok" when every check held. */
#include <cryo/cryo.h>

#include <stdio.h>
#include <string.h>

static int failures;

static void check(int ok, const char *what)
{
	if (!ok) {
		printf("uselib: FAIL %s\n", what);
		failures++;
	}
}

static void show_of_missing_dir(const char *dir)
{
	struct cryo_opts opts = {.images_dir = dir};
	const char *err;

	check(cryo_show(&opts) != 0, "cryo_show of a missing directory fails");
	err = cryo_strerror();
	check(err && strstr(err, dir), "cryo_strerror names the missing directory");
	if (err)
		printf("uselib: error line: %s\n", err);
	cryo_clear_error();
	check(cryo_strerror() == NULL, "cryo_clear_error forgets the error");
}

static void check_into_log(const char *log)
{
	struct cryo_opts opts = {.verbosity = 2};
	char line[512];
	int lines = 0;
	FILE *f;

	check(cryo_log_open(2, log) == 0, "cryo_log_open opens the log file");
	check(cryo_check(&opts) == 0, "cryo_check works on this machine");
	check(cryo_strerror() == NULL, "no error pending after a command that worked");
	cryo_log_close();
	f = fopen(log, "r");
	check(f != NULL, "the log file exists");
	while (f && fgets(line, sizeof(line), f))
		lines++;
	if (f)
		fclose(f);
	check(lines > 0, "the log file holds the command's lines");
}

int main(int argc, char **argv)
{
	if (argc != 3) {
		fprintf(stderr, "usage: uselib MISSING_DIR LOG_FILE\n");
		return 2;
	}
	printf("uselib: libcryo %s\n", CRYO_VERSION);
	show_of_missing_dir(argv[1]);
	check_into_log(argv[2]);
	if (failures)
		return 1;
	printf("uselib: ok\n");
	return 0;
}
