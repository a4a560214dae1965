/*
 * cryo run: the supervisor (supervise.c). It starts a job as its child,
 * checkpoints the job's whole tree into numbered generations under one
 * directory, and restores the newest one when the job is killed by a
 * signal. It is a command above the library's dump and restore (it calls
 * both, as main.c does), hence here with the command line, not in libcryo.
 */
#ifndef CRYO_SUPERVISE_H
#define CRYO_SUPERVISE_H

/* The defaults of struct cryo_opts' every, keep and max_restores (0 there). */
enum {
	RUN_DEFAULT_EVERY = 60,
	RUN_DEFAULT_KEEP = 3,
	RUN_DEFAULT_MAX_RESTORES = 10,
	RUN_DEFAULT_FULL_EVERY = 10,
};

#include "cryo/cryo.h"

/* Supervises opts->command (or, with resume, the newest generation under
 * images_dir): checkpoints it every `every` seconds into generations
 * images_dir/gen-NNNNNN, restores it when it dies by a signal; returns
 * its exit status, 128+N when signal N ended it for good, or 1. */
int cryo_run(const struct cryo_opts *opts);

#endif
