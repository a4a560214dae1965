/*
 * cryo run: the supervisor (supervise.c). It starts a job as its child,
 * checkpoints the job's whole tree into numbered generations under one
 * directory, and restores the newest one when the job is killed by a
 * signal. The library entry is cryo_run() (include/cryo/cryo.h).
 */
#ifndef CRYO_SUPERVISE_H
#define CRYO_SUPERVISE_H

/* The defaults of struct cryo_opts' every, keep and max_restores (0 there). */
enum {
	RUN_DEFAULT_EVERY = 60,
	RUN_DEFAULT_KEEP = 3,
	RUN_DEFAULT_MAX_RESTORES = 10,
};

#endif
