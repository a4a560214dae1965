/*
 * testhook: lets a test kill cryo dead at a named point of its work, to
 * check what a `kill -9` there leaves behind.
 *
 * With CRYO_TEST_KILL_AT=POINT in its environment, cryo SIGKILLs itself
 * when it reaches POINT, but only while the file named by CRYO_TEST_ARM
 * exists (so that a test can let some checkpoints through first, without
 * cryo keeping any count). Nothing happens without both variables.
 *
 * With CRYO_TEST_WAIT_AT=POINT and CRYO_TEST_GO=FILE, cryo creates
 * FILE.waiting when it reaches POINT and waits (30 s at most) until FILE
 * exists: a test does something to the tree at that exact point.
 *
 * With CRYO_TEST_HOLD_AT=POINT and CRYO_TEST_HOLD_MS=N, cryo sleeps N ms
 * at POINT: a freeze long enough for a workload's own clock to see.
 */
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "infra/testhook.h"

void test_kill_point(const char *point)
{
	const char *at = getenv("CRYO_TEST_KILL_AT"), *arm = getenv("CRYO_TEST_ARM");

	if (at && arm && !strcmp(at, point) && !access(arm, F_OK))
		raise(SIGKILL);
}

void test_hold_point(const char *point)
{
	const char *at = getenv("CRYO_TEST_HOLD_AT"), *ms = getenv("CRYO_TEST_HOLD_MS");
	long n = ms ? strtol(ms, NULL, 10) : 0;
	struct timespec t;

	if (!at || strcmp(at, point) || n <= 0)
		return;
	n = n > 1000 ? 1000 : n;
	t.tv_sec = n / 1000;
	t.tv_nsec = n % 1000 * 1000000L;
	while (nanosleep(&t, &t))
		;
}

void test_wait_point(const char *point)
{
	const char *at = getenv("CRYO_TEST_WAIT_AT"), *go = getenv("CRYO_TEST_GO");
	struct timespec tick = {0, 10 * 1000 * 1000};
	char waiting[4096];
	int fd;

	if (!at || !go || strcmp(at, point))
		return;
	snprintf(waiting, sizeof(waiting), "%s.waiting", go);
	fd = open(waiting, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
	if (fd >= 0)
		close(fd);
	for (int i = 0; i < 3000 && access(go, F_OK); i++)
		nanosleep(&tick, NULL);
}
