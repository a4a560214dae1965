/*
 * progress: a line on the terminal while a long step runs.
 *
 * "cryo dump: 812 MiB of memory written (405 MiB/s)", rewritten every
 * quarter of a second by a thread that reads the step's page counter,
 * once the step has run for a second, and only when the log goes to a
 * terminal (log_on_terminal: stderr is one, no -o, no -v): a step that is
 * quick, or a log in a file, never sees it. The counter is the step's own
 * statistic (pages written or restored), read with relaxed atomic loads:
 * the thread only displays it. CRYO_PROGRESS_AFTER_MS sets the first
 * delay (tests).
 */
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "infra/log.h"
#include "infra/progress.h"

#define FIRST_MS 1000
#define EVERY_MS 250

static void show(const struct progress *p)
{
	uint64_t pages = __atomic_load_n(p->pages, __ATOMIC_RELAXED);
	double secs = (now_us() - p->t0) / 1e6;
	double mib = pages * 4096.0 / (1 << 20);
	char line[200];

	snprintf(line, sizeof(line), "cryo %s: %.0f MiB of memory %s (%.0f MiB/s)", p->step, mib,
		 p->done_word, secs > 0 ? mib / secs : 0.0);
	log_progress(line);
}

static void *tick(void *arg)
{
	struct progress *p = arg;
	struct pollfd pfd = {p->stop, POLLIN, 0};
	const char *env = getenv("CRYO_PROGRESS_AFTER_MS");
	int ms = env ? atoi(env) : FIRST_MS;

	while (poll(&pfd, 1, ms) == 0) {
		show(p);
		ms = EVERY_MS;
	}
	return NULL;
}

void progress_start(struct progress *p, const char *step, const char *done_word,
		    const uint64_t *pages)
{
	*p = (struct progress){
	    .step = step, .done_word = done_word, .pages = pages, .t0 = now_us(), .stop = -1};
	if (!log_on_terminal())
		return;
	p->stop = eventfd(0, EFD_CLOEXEC);
	if (p->stop < 0)
		return;
	if (pthread_create(&p->thread, NULL, tick, p)) {
		close(p->stop);
		p->stop = -1;
		return;
	}
	p->running = true;
}

void progress_stop(struct progress *p)
{
	uint64_t one = 1;

	if (!p->running)
		return;
	if (write(p->stop, &one, sizeof(one)) != sizeof(one))
		pthread_cancel(p->thread); /* poll() is a cancellation point */
	pthread_join(p->thread, NULL);
	close(p->stop);
	p->running = false;
	log_progress(NULL);
}
