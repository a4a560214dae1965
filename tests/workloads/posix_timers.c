/* posix_timers.c: POSIX timers of every kind, checkpointed, checked after
 * restore by timer_gettime, by the signals they send (signal, sigev_value,
 * si_timerid, which thread) and by their ids, which must be the same:
 *   - one-shot on CLOCK_MONOTONIC, 3 s, SIGEV_SIGNAL with a sigev_value: it
 *     fires once, when its time left at the freeze has run after restore;
 *   - periodic on CLOCK_REALTIME every 100 ms, SIGEV_SIGNAL: it keeps firing;
 *   - SIGEV_NONE on CLOCK_BOOTTIME, 20 s with a 7 s interval: still counting;
 *   - a disarmed one on CLOCK_MONOTONIC: still disarmed;
 *   - SIGEV_THREAD_ID to a worker thread, periodic 100 ms: only that thread
 *     gets its signals;
 *   - glibc's SIGEV_THREAD, periodic 100 ms: its function keeps running;
 *   - SIGEV_NONE on CLOCK_PROCESS_CPUTIME_ID, 100 s of CPU time;
 *   - CLOCK_REALTIME_ALARM and CLOCK_BOOTTIME_ALARM if the machine has an
 *     RTC to wake it (else: not covered here).
 *   - periodic on CLOCK_MONOTONIC every 5 s, armed 11.5 s in the past: it
 *     fired at once with an overrun of 2, which timer_getoverrun still
 *     gives after restore, its next expiry still 3.5 s after it was armed
 *     (not counting the checkpoint);
 *   - periodic on CLOCK_MONOTONIC every 200 ms, its signal blocked and
 *     queued at the checkpoint: still queued once (not twice) after it,
 *     and taken, it comes with the periods missed as its overrun;
 * A timer deleted before the checkpoint leaves a hole in the ids: the ids
 * after it must stay where they are. */
#include "wl.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define SIG_ONESHOT  (SIGRTMIN + 1)
#define SIG_PERIODIC (SIGRTMIN + 2)
#define SIG_THREAD   (SIGRTMIN + 3)
#define SIG_OVERRUN  (SIGRTMIN + 4)
#define SIG_PENDING  (SIGRTMIN + 5)
#define ONESHOT_S    3.0

static timer_t overrun, pending;
static volatile int n_pending, pending_overrun;
static volatile int n_overrun, overrun_seen = -1;
static timer_t oneshot, periodic, none_boot, disarmed, to_thread, sev_thread, cpu, hole;
static timer_t alarms[2];
static bool have_alarm[2];
static volatile int n_periodic, n_to_thread, n_wrong_thread, n_sev_thread, n_oneshot;
static volatile int bad_value;
static volatile double oneshot_at;
static volatile pid_t worker_tid;

static void on_signal(int sig, siginfo_t *si, void *uc)
{
	(void)uc;
	if (sig == SIG_ONESHOT) {
		n_oneshot++;
		oneshot_at = wl_now();
		bad_value |= si->si_value.sival_ptr != (void *)0x5eed || si->si_code != SI_TIMER;
	} else if (sig == SIG_PERIODIC) {
		n_periodic++;
		bad_value |= si->si_value.sival_int != 77;
	} else if (sig == SIG_PENDING) {
		n_pending++;
		pending_overrun = si->si_overrun;
	} else if (sig == SIG_OVERRUN) {
		n_overrun++;
		overrun_seen = si->si_overrun;
	} else if (sig == SIG_THREAD) {
		if (syscall(SYS_gettid) == worker_tid)
			n_to_thread++;
		else
			n_wrong_thread++;
	}
}

static void on_thread_timer(union sigval v)
{
	if (v.sival_int == 99)
		n_sev_thread++;
}

static void *worker(void *arg)
{
	sigset_t s;

	(void)arg;
	worker_tid = syscall(SYS_gettid);
	sigemptyset(&s);
	sigaddset(&s, SIG_THREAD);
	pthread_sigmask(SIG_UNBLOCK, &s, NULL);
	for (;;)
		pause();
	return NULL;
}

/* Sleeps S seconds whatever signals come meanwhile. */
static void sleep_for(double s)
{
	struct timespec dl;

	clock_gettime(CLOCK_MONOTONIC, &dl);
	double end = dl.tv_sec + dl.tv_nsec / 1e9 + s;
	dl = (struct timespec){(time_t)end, (long)((end - (time_t)end) * 1e9)};
	while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &dl, NULL) == EINTR)
		;
}

static timer_t make(clockid_t clock, int notify, int sig, union sigval v, double value,
		    double interval)
{
	struct sigevent sev = {.sigev_notify = notify, .sigev_signo = sig, .sigev_value = v};
	struct itimerspec its = {{(time_t)interval, (long)((interval - (time_t)interval) * 1e9)},
				 {(time_t)value, (long)((value - (time_t)value) * 1e9)}};
	timer_t t;

	if (notify == SIGEV_THREAD_ID)
		sev._sigev_un._tid = worker_tid;
	if (notify == SIGEV_THREAD)
		sev.sigev_notify_function = on_thread_timer;
	if (timer_create(clock, &sev, &t))
		wl_die("timer_create clock %d: %s", clock, strerror(errno));
	if (value && timer_settime(t, 0, &its, NULL))
		wl_die("timer_settime: %s", strerror(errno));
	return t;
}

static void make_alarms(void)
{
	static const clockid_t clocks[2] = {CLOCK_REALTIME_ALARM, CLOCK_BOOTTIME_ALARM};
	static const char *const names[2] = {"realtime_alarm", "boottime_alarm"};

	for (int i = 0; i < 2; i++) {
		struct sigevent sev = {.sigev_notify = SIGEV_NONE};
		struct itimerspec its = {{0, 0}, {30, 0}};
		have_alarm[i] = !timer_create(clocks[i], &sev, &alarms[i]);
		if (!have_alarm[i]) {
			wl_not_covered(names[i], "timer_create: %s (no RTC or no CAP_WAKE_ALARM)",
				       strerror(errno));
			continue;
		}
		if (timer_settime(alarms[i], 0, &its, NULL))
			wl_die("timer_settime %s: %s", names[i], strerror(errno));
	}
}

/* Arms a 5 s periodic timer 11.5 s in the past and waits for its signal:
 * overrun 2, next expiry 3.5 s on. Returns when it was armed. */
static double make_overrun(void)
{
	struct sigevent sev = {.sigev_notify = SIGEV_SIGNAL, .sigev_signo = SIG_OVERRUN};
	struct itimerspec its = {{5, 0}, {0, 0}};
	struct timespec now;

	if (timer_create(CLOCK_MONOTONIC, &sev, &overrun))
		wl_die("timer_create: %s", strerror(errno));
	clock_gettime(CLOCK_MONOTONIC, &now);
	its.it_value = (struct timespec){now.tv_sec - 12, now.tv_nsec + 500000000L};
	if (its.it_value.tv_nsec >= 1000000000L)
		its.it_value.tv_sec++, its.it_value.tv_nsec -= 1000000000L;
	if (timer_settime(overrun, TIMER_ABSTIME, &its, NULL))
		wl_die("timer_settime: %s", strerror(errno));
	while (!n_overrun)
		sleep_for(0.001);
	if (overrun_seen != 2 || timer_getoverrun(overrun) != 2)
		wl_die("the overrun timer overran %d (timer_getoverrun %d), expected 2",
		       overrun_seen, timer_getoverrun(overrun));
	return now.tv_sec + now.tv_nsec / 1e9;
}

static double left_of(timer_t t, double *interval)
{
	struct itimerspec its;

	if (timer_gettime(t, &its))
		return -1;
	if (interval)
		*interval = its.it_interval.tv_sec + its.it_interval.tv_nsec / 1e9;
	return its.it_value.tv_sec + its.it_value.tv_nsec / 1e9;
}

static void check_left(const char *name, timer_t t, double lo, double hi, double interval)
{
	double iv = -1, left = left_of(t, &iv);

	wl_check(name, left >= lo && left <= hi && iv > interval - 1e-6 && iv < interval + 1e-6,
		 "left %.3f s (expected %.3f to %.3f), interval %.3f s (expected %.3f)", left, lo,
		 hi, iv, interval);
}

int main(void)
{
	struct sigaction sa = {.sa_sigaction = on_signal, .sa_flags = SA_SIGINFO | SA_RESTART};
	sigset_t s;
	pthread_t th;
	double t0, gs, ge;

	wl_init();
	sigemptyset(&s);
	sigaddset(&s, SIG_THREAD);
	sigaddset(&s, SIG_PENDING);	      /* blocked in every thread */
	pthread_sigmask(SIG_BLOCK, &s, NULL); /* only the worker takes SIG_THREAD */
	for (int sig = SIG_ONESHOT; sig <= SIG_PENDING; sig++)
		sigaction(sig, &sa, NULL);
	pthread_create(&th, NULL, worker, NULL);
	while (!worker_tid)
		usleep(1000);
	wl_gap_watch();
	t0 = wl_now();
	hole = make(CLOCK_MONOTONIC, SIGEV_NONE, 0, (union sigval){0}, 0, 0);
	oneshot = make(CLOCK_MONOTONIC, SIGEV_SIGNAL, SIG_ONESHOT,
		       (union sigval){.sival_ptr = (void *)0x5eed}, ONESHOT_S, 0);
	periodic = make(CLOCK_REALTIME, SIGEV_SIGNAL, SIG_PERIODIC, (union sigval){77}, 0.1, 0.1);
	none_boot = make(CLOCK_BOOTTIME, SIGEV_NONE, 0, (union sigval){0}, 20, 7);
	disarmed = make(CLOCK_MONOTONIC, SIGEV_SIGNAL, SIG_ONESHOT, (union sigval){0}, 0, 0);
	to_thread = make(CLOCK_MONOTONIC, SIGEV_THREAD_ID, SIG_THREAD, (union sigval){0}, 0.1, 0.1);
	sev_thread = make(CLOCK_MONOTONIC, SIGEV_THREAD, 0, (union sigval){99}, 0.1, 0.1);
	cpu = make(CLOCK_PROCESS_CPUTIME_ID, SIGEV_NONE, 0, (union sigval){0}, 100, 0);
	make_alarms();
	double overrun_armed = make_overrun();
	pending = make(CLOCK_MONOTONIC, SIGEV_SIGNAL, SIG_PENDING, (union sigval){5}, 0.05, 0.2);
	sleep_for(0.1);
	timer_delete(hole);
	timer_t all[9] = {oneshot,    periodic, none_boot, disarmed, to_thread,
			  sev_thread, cpu,	alarms[0], alarms[1]};
	wl_ready();
	wl_wait_go();
	/* ids: the same timer_t still names each timer; a wrong one is EINVAL */
	for (int i = 0; i < 7 + have_alarm[0] + have_alarm[1]; i++) {
		char name[32];
		struct itimerspec its;
		timer_t t = i < 7 ? all[i] : alarms[i == 7 && have_alarm[0] ? 0 : 1];
		snprintf(name, sizeof(name), "timer_%ld_exists", (long)t);
		wl_check(name, timer_gettime(t, &its) == 0, "timer_gettime: %s", strerror(errno));
	}
	wl_check("hole_deleted", left_of(hole, NULL) < 0 && errno == EINVAL,
		 "the deleted timer 0 exists again");
	/* left running, nothing below uses the freeze, and one shorter than
	 * the watcher's resolution (5 ms) may pass unseen */
	if (!wl_gap(&gs, &ge) && wl_restored() && !wl_check("frozen", false, "no checkpoint seen"))
		wl_done();
	int ovr = timer_getoverrun(overrun);
	wl_check("overrun_kept", ovr == 2, "timer_getoverrun gives %d, expected 2", ovr);
	wl_check("overrun_not_fired_again", n_overrun == 1, "fired %d times", n_overrun);
	double ovr_left = overrun_armed + 3.5 + (wl_restored() ? ge - gs : 0) - wl_now();
	check_left("overrun_next", overrun, ovr_left - 0.2, ovr_left + 0.2, 5);
	/* the one-shot: what was left at the freeze, counted from the restore */
	double left = t0 + ONESHOT_S - gs;
	while (!n_oneshot && wl_now() < ge + left + 1)
		sleep_for(0.001);
	wl_check("oneshot_fired_once", n_oneshot == 1, "fired %d times", n_oneshot);
	wl_check_near("oneshot_fired_at", oneshot_at, (wl_restored() ? ge : gs) + left, t0);
	check_left("oneshot_disarmed_after", oneshot, 0, 0, 0);
	check_left("disarmed_still", disarmed, 0, 0, 0);
	double boot_left = 20 - (wl_now() - t0) + (wl_restored() ? ge - gs : 0);
	check_left("none_boottime", none_boot, boot_left - 0.2, boot_left + 0.2, 7);
	check_left("none_cpu", cpu, 99, 100, 0);
	for (int i = 0; i < 2; i++)
		if (have_alarm[i])
			check_left(i ? "boottime_alarm" : "realtime_alarm", alarms[i], 1, 30, 0);
	sigset_t queued;
	sigpending(&queued);
	wl_check("pending_still_queued", sigismember(&queued, SIG_PENDING), "not queued");
	sigemptyset(&s);
	sigaddset(&s, SIG_PENDING);
	pthread_sigmask(SIG_UNBLOCK, &s, NULL);
	wl_check("pending_once", n_pending == 1, "taken %d times", n_pending);
	wl_check("pending_overrun", pending_overrun >= 5, "overrun %d, expected some periods",
		 pending_overrun);
	int p0 = n_periodic, th0 = n_to_thread, st0 = n_sev_thread;
	sleep_for(0.5);
	wl_check("periodic_fires", n_periodic - p0 >= 3, "%d signals in 0.5 s", n_periodic - p0);
	wl_check("thread_id_fires", n_to_thread - th0 >= 3, "%d signals in 0.5 s",
		 n_to_thread - th0);
	wl_check("thread_id_only_worker", n_wrong_thread == 0, "%d to another thread",
		 n_wrong_thread);
	wl_check("sigev_thread_fires", n_sev_thread - st0 >= 3, "%d calls in 0.5 s",
		 n_sev_thread - st0);
	wl_check("sigev_values", !bad_value, "a signal came with the wrong value or code");
	wl_done();
}
