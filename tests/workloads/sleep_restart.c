/* sleep_restart.c: fifteen threads, each checkpointed about 1.2 s into a
 * 4 s sleep of its own kind, and a watcher that sees when the process was
 * frozen and when it ran again (wl_gap). Restored, a call the kernel would
 * resume through its restart block returns EINTR as soon as the process
 * runs again, with the time left at the freeze written where the caller gave
 * room for it, and sleeping that much more takes exactly that long (±100
 * ms): relative nanosleep and clock_nanosleep on MONOTONIC, REALTIME and
 * BOOTTIME, with and without room, poll and FUTEX_WAIT with a timeout. Left
 * running (-R), the kernel resumes them to their first deadline, no EINTR
 * (the futex then times out). Either way an absolute
 * clock_nanosleep (MONOTONIC, REALTIME) ends at its deadline, and select,
 * pselect6 and ppoll, which updated their timeout when interrupted, end once
 * what was left at the freeze has passed since the process ran again, their
 * timeout then zero. */
#include "wl.h"

#include <errno.h>
#include <linux/futex.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/select.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define SLEEP_S 4.0

enum how { NANO, REL, ABS, POLL, FUTEX, SELECT, PSELECT, PPOLL };

struct variant {
	const char *name;
	enum how how;
	clockid_t clock;
	bool room;
	/* results */
	double t0, t_ret, t_end;
	int ret;
	bool eintr;
	struct timespec rem;
};

static struct variant variants[] = {
    {.name = "nanosleep_room", .how = NANO, .clock = CLOCK_MONOTONIC, .room = true},
    {.name = "nanosleep_noroom", .how = NANO, .clock = CLOCK_MONOTONIC, .room = false},
    {.name = "clock_mono_rel_room", .how = REL, .clock = CLOCK_MONOTONIC, .room = true},
    {.name = "clock_mono_rel_noroom", .how = REL, .clock = CLOCK_MONOTONIC, .room = false},
    {.name = "clock_real_rel_room", .how = REL, .clock = CLOCK_REALTIME, .room = true},
    {.name = "clock_real_rel_noroom", .how = REL, .clock = CLOCK_REALTIME, .room = false},
    {.name = "clock_boot_rel_room", .how = REL, .clock = CLOCK_BOOTTIME, .room = true},
    {.name = "clock_boot_rel_noroom", .how = REL, .clock = CLOCK_BOOTTIME, .room = false},
    {.name = "clock_mono_abs", .how = ABS, .clock = CLOCK_MONOTONIC, .room = false},
    {.name = "clock_real_abs", .how = ABS, .clock = CLOCK_REALTIME, .room = false},
    {.name = "poll", .how = POLL, .clock = CLOCK_MONOTONIC, .room = false},
    {.name = "futex_wait", .how = FUTEX, .clock = CLOCK_MONOTONIC, .room = false},
    {.name = "select", .how = SELECT, .clock = CLOCK_MONOTONIC, .room = true},
    {.name = "pselect6", .how = PSELECT, .clock = CLOCK_MONOTONIC, .room = true},
    {.name = "ppoll", .how = PPOLL, .clock = CLOCK_MONOTONIC, .room = true},
};
#define NVAR (sizeof(variants) / sizeof(variants[0]))

static int idle_pipe[2];
static uint32_t futex_word; /* never woken */

static struct timespec ts_of(double s)
{
	return (struct timespec){(time_t)s, (long)((s - (time_t)s) * 1e9)};
}

static double secs(const struct timespec *ts)
{
	return ts->tv_sec + ts->tv_nsec / 1e9;
}

/* One call of the variant's kind, for SLEEP_S; the result as 0 or an errno. */
static int sleep_once(struct variant *v)
{
	struct timespec req = ts_of(SLEEP_S), *rem = v->room ? &v->rem : NULL;
	struct pollfd pf = {.fd = idle_pipe[0], .events = POLLIN};
	struct timeval tv = {(time_t)SLEEP_S, 0};
	fd_set rf;

	FD_ZERO(&rf);
	FD_SET(idle_pipe[0], &rf);
	switch (v->how) {
	case NANO:
		return nanosleep(&req, rem) ? errno : 0;
	case REL:
		return clock_nanosleep(v->clock, 0, &req, rem);
	case ABS: {
		struct timespec dl;
		clock_gettime(v->clock, &dl);
		dl = ts_of(secs(&dl) + SLEEP_S);
		return clock_nanosleep(v->clock, TIMER_ABSTIME, &dl, NULL);
	}
	case POLL:
		return poll(&pf, 1, (int)(SLEEP_S * 1000)) < 0 ? errno : 0;
	case FUTEX: /* a word nobody wakes: it times out */
		return syscall(SYS_futex, &futex_word, FUTEX_WAIT_PRIVATE, 0, &req, NULL, 0) < 0
			   ? errno
			   : 0;
	case SELECT: {
		long r = syscall(SYS_select, idle_pipe[0] + 1, &rf, NULL, NULL, &tv);
		v->rem = (struct timespec){tv.tv_sec, tv.tv_usec * 1000};
		return r < 0 ? errno : 0;
	}
	case PSELECT:
		v->rem = req;
		return syscall(SYS_pselect6, idle_pipe[0] + 1, &rf, NULL, NULL, &v->rem, NULL) < 0
			   ? errno
			   : 0;
	case PPOLL:
		v->rem = req;
		return syscall(SYS_ppoll, &pf, 1, &v->rem, NULL, 0) < 0 ? errno : 0;
	}
	return EINVAL;
}

/* Sleeps as coreutils' sleep does: again for what is left after an EINTR. */
static void *sleeper(void *arg)
{
	struct variant *v = arg;

	v->t0 = wl_now();
	v->ret = sleep_once(v);
	v->t_ret = v->t_end = wl_now();
	v->eintr = v->ret == EINTR;
	if (v->eintr && v->room && (v->how == NANO || v->how == REL)) {
		struct timespec left = v->rem;
		while (clock_nanosleep(v->clock, 0, &left, &left) == EINTR)
			;
		v->t_end = wl_now();
	}
	return NULL;
}

static bool resumed_by_kernel(const struct variant *v)
{
	return v->how == NANO || v->how == REL || v->how == POLL || v->how == FUTEX;
}

/* Checks one variant against the freeze [gs, ge]. */
static void check_variant(const struct variant *v, double gs, double ge)
{
	char name[96];
	double left = v->t0 + SLEEP_S - gs; /* time left at the freeze */
	bool want_eintr = wl_restored() && resumed_by_kernel(v);
	int want = want_eintr ? EINTR : v->how == FUTEX ? ETIMEDOUT : 0;

	snprintf(name, sizeof(name), "%s_frozen_inside", v->name);
	if (!wl_check(name, gs > v->t0 && gs < v->t0 + SLEEP_S, "frozen at +%.3f s of %.1f s",
		      gs - v->t0, SLEEP_S))
		return;
	snprintf(name, sizeof(name), "%s_ret", v->name);
	wl_check(name, v->ret == want, "returned %s, expected %s", v->ret ? strerror(v->ret) : "0",
		 want ? strerror(want) : "0");
	snprintf(name, sizeof(name), "%s_returned_at", v->name);
	if (want_eintr)
		wl_check_near(name, v->t_ret, ge, v->t0);
	else if (resumed_by_kernel(v) || v->how == ABS)
		wl_check_near(name, v->t_ret, ge > v->t0 + SLEEP_S ? ge : v->t0 + SLEEP_S, v->t0);
	else /* select, pselect6, ppoll: what was left, from when it ran again */
		wl_check_near(name, v->t_ret, ge + left, v->t0);
	if (v->how >= SELECT) {
		snprintf(name, sizeof(name), "%s_timeout_updated", v->name);
		wl_check(name, secs(&v->rem) < 0.01, "timeout left %.3f s", secs(&v->rem));
	}
	if (want_eintr && v->room) {
		snprintf(name, sizeof(name), "%s_rem", v->name);
		wl_check_near(name, secs(&v->rem), left, 0);
		snprintf(name, sizeof(name), "%s_slept_after_restore", v->name);
		wl_check_near(name, v->t_end, v->t_ret + secs(&v->rem), v->t_ret);
	}
}

int main(void)
{
	pthread_t th[NVAR];
	struct timespec settle = {1, 0};
	double gs, ge;

	wl_init();
	if (pipe(idle_pipe))
		wl_die("pipe: %s", strerror(errno));
	wl_gap_watch();
	for (size_t i = 0; i < NVAR; i++)
		if (pthread_create(&th[i], NULL, sleeper, &variants[i]))
			wl_die("pthread_create");
	nanosleep(&settle, NULL);
	wl_ready();
	for (size_t i = 0; i < NVAR; i++)
		pthread_join(th[i], NULL);
	wl_wait_go();
	if (!wl_check("frozen", wl_gap(&gs, &ge), "no checkpoint seen by the watcher"))
		wl_done();
	printf("wl: frozen %.3f s (%s)\n", ge - gs, wl_restored() ? "restored" : "left running");
	for (size_t i = 0; i < NVAR; i++)
		check_variant(&variants[i], gs, ge);
	wl_done();
}
