/*
 * testhook: lets a test kill cryo dead at a named point of its work, to
 * check what a `kill -9` there leaves behind.
 *
 * With CRYO_TEST_KILL_AT=POINT in its environment, cryo SIGKILLs itself
 * when it reaches POINT, but only while the file named by CRYO_TEST_ARM
 * exists (so that a test can let some checkpoints through first, without
 * cryo keeping any count). Nothing happens without both variables.
 */
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "infra/testhook.h"

void test_kill_point(const char *point)
{
	const char *at = getenv("CRYO_TEST_KILL_AT"), *arm = getenv("CRYO_TEST_ARM");

	if (at && arm && !strcmp(at, point) && !access(arm, F_OK))
		raise(SIGKILL);
}
