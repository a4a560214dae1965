/*
 * progress: a progress line on the terminal for a step that takes more
 * than a second (progress.c).
 */
#ifndef CRYO_PROGRESS_H
#define CRYO_PROGRESS_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

struct progress {
	const char *step;      /* "dump", "restore" */
	const char *done_word; /* "written", "restored" */
	const uint64_t *pages; /* the step's counter, updated as it goes */
	unsigned long long t0;
	pthread_t thread;
	int stop; /* eventfd that ends the thread */
	bool running;
};

/* Shows "cryo STEP: N MiB of memory DONE_WORD (R MiB/s)" from a second on,
 * while the log goes to a terminal; otherwise does nothing. */
void progress_start(struct progress *p, const char *step, const char *done_word,
		    const uint64_t *pages);
/* Ends the line (cleared); a no-op if it never started. */
void progress_stop(struct progress *p);

#endif
