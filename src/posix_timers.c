/*
 * posix_timers: the process's POSIX timers (timer_create), glibc's
 * SIGEV_THREAD timers among them (to the kernel those are SIGEV_THREAD_ID
 * timers aimed at glibc's helper thread, which is restored as any thread).
 *
 * Dump: /proc/PID/timers lists each timer's id, signal and sigev_value,
 * how it notifies (signal, none, thread; to the process or to one thread)
 * and its clock; an injected timer_gettime gives the time to its next
 * expiry and its interval, an injected timer_getoverrun its overrun count.
 * Restore: in the new process, by injected calls, with
 * prctl(PR_TIMER_CREATE_RESTORE_IDS) on so that timer_create takes the id
 * it is given (Linux 6.10+), each timer is created with its sigevent on its
 * clock and armed with what was left and its interval; the time the process
 * spent checkpointed does not count. The kernel has no call to set the
 * overrun count (timer_getoverrun) of a periodic timer, so it is made
 * again the way it came: the timer is armed with an absolute expiry as many
 * periods in the past as it overran, plus one, so it fires at once, and the
 * process takes that signal (an injected rt_sigtimedwait, in the thread it
 * is sent to): the kernel counts the periods missed as the overrun and
 * moves the expiry to exactly what was left. Not done when a signal of the
 * same number is queued (it would be taken instead) nor on CPU-time clocks
 * (which do not run while the process is stopped). A timer whose own signal
 * is queued at the checkpoint (its siginfo SI_TIMER with its id) is armed
 * in the past instead, so that the kernel queues that signal again itself
 * and rearms the timer only when the process takes it, as before; signals.c
 * leaves such a siginfo to it (posix_timers_requeues).
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>

#include "infra/inject.h"
#include "posix_timers.h"
#include "infra/log.h"

#ifndef PR_TIMER_CREATE_RESTORE_IDS
#define PR_TIMER_CREATE_RESTORE_IDS 77
#endif
#define RESTORE_IDS_OFF	 0
#define RESTORE_IDS_ON	 1
#define NOTIFY_THREAD_ID 4 /* SIGEV_THREAD_ID */

/* struct sigevent as the kernel reads it */
struct ksigevent {
	uint64_t value;
	int32_t signo;
	int32_t notify;
	int32_t tid;
	int32_t pad[11];
};

struct kitimerspec {
	struct timespec interval, value;
};

static uint64_t ts_ns(const struct timespec *ts)
{
	return ts->tv_sec * 1000000000ULL + ts->tv_nsec;
}

static struct timespec ns_ts(uint64_t ns)
{
	return (struct timespec){ns / 1000000000ULL, ns % 1000000000ULL};
}

/* "signal/pid.N", "none/tid.N", "thread/pid.N" into a sigev_notify. */
static int parse_notify(const char *s, PosixTimerEntry *e)
{
	static const char *const kinds[] = {"signal", "none", "thread"};
	char kind[16], whom[8];
	int id;

	if (sscanf(s, "%15[a-z]/%7[a-z].%d", kind, whom, &id) != 3)
		return -1;
	for (unsigned k = 0; k < 3; k++)
		if (!strcmp(kind, kinds[k])) {
			e->notify = k;
			if (!strcmp(whom, "tid")) {
				e->notify |= NOTIFY_THREAD_ID;
				e->has_tid = true;
				e->tid = id;
			}
			return 0;
		}
	return -1;
}

static PosixTimerEntry *add_timer(CoreEntry *core, int id)
{
	PosixTimerEntry *e = malloc(sizeof(*e));
	PosixTimerEntry **grown =
	    realloc(core->posix_timers, (core->n_posix_timers + 1) * sizeof(*grown));

	if (!e || !grown) {
		free(e);
		if (grown)
			core->posix_timers = grown;
		err_set("out of memory");
		return NULL;
	}
	posix_timer_entry__init(e);
	e->id = id;
	core->posix_timers = grown;
	core->posix_timers[core->n_posix_timers++] = e;
	return e;
}

/* One line of /proc/PID/timers into the timer it describes. */
static int parse_line(CoreEntry *core, const char *line, PosixTimerEntry **cur)
{
	unsigned long long value;
	int n;

	if (sscanf(line, "ID: %d", &n) == 1)
		return (*cur = add_timer(core, n)) ? 0 : -1;
	if (!*cur)
		return -1;
	if (sscanf(line, "signal: %d/%llx", &n, &value) == 2) {
		(*cur)->signo = n;
		(*cur)->value = value;
		return 0;
	}
	if (!strncmp(line, "notify: ", 8))
		return parse_notify(line + 8, *cur);
	if (sscanf(line, "ClockID: %d", &n) == 1) {
		(*cur)->clock = n;
		return 0;
	}
	return -1;
}

static int read_timers(struct dump_ctx *ctx)
{
	char path[64], line[256];
	PosixTimerEntry *cur = NULL;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/timers", ctx->pid);
	if (!(f = fopen(path, "r")))
		return err_errno("cannot open %s", path);
	while (fgets(line, sizeof(line), f))
		if (parse_line(ctx->core, line, &cur)) {
			fclose(f);
			return err_set("%s: cannot parse \"%.*s\"", path, (int)strcspn(line, "\n"),
				       line);
		}
	fclose(f);
	return 0;
}

static int read_value(struct dump_ctx *ctx, PosixTimerEntry *e)
{
	struct kitimerspec its;
	long overrun;

	if (inject_call(&ctx->inj, "reading a POSIX timer", SYS_timer_gettime, e->id,
			ctx->inj.scratch, 0, 0, 0, 0, NULL) ||
	    inject_read(ctx->pid, ctx->inj.scratch, &its, sizeof(its)) ||
	    inject_call(&ctx->inj, "reading a POSIX timer's overrun", SYS_timer_getoverrun, e->id,
			0, 0, 0, 0, 0, &overrun))
		return err_wrap("timer %d", e->id);
	e->interval_ns = ts_ns(&its.interval);
	e->value_ns = ts_ns(&its.value);
	e->overrun = overrun;
	return 0;
}

int posix_timers_dump(struct dump_ctx *ctx)
{
	if (read_timers(ctx))
		return -1;
	for (size_t i = 0; i < ctx->core->n_posix_timers; i++)
		if (read_value(ctx, ctx->core->posix_timers[i]))
			return -1;
	return 0;
}

static bool signal_queued(const ProtobufCBinaryData *q, size_t n, uint32_t signo)
{
	for (size_t i = 0; i < n; i++)
		if (q[i].len >= sizeof(int32_t) && *(const int32_t *)q[i].data == (int32_t)signo)
			return true;
	return false;
}

static struct restore_thread *signalled_thread(struct restore_ctx *ctx, const PosixTimerEntry *e)
{
	for (size_t i = 0; i < ctx->nr_threads; i++)
		if (e->has_tid ? ctx->threads[i].tid == e->tid : i == 0)
			return &ctx->threads[i];
	return NULL;
}

static bool cpu_clock(int32_t clock)
{
	return clock < 0 || clock == CLOCK_PROCESS_CPUTIME_ID || clock == CLOCK_THREAD_CPUTIME_ID;
}

static const PosixTimerEntry *timer_by_id(const CoreEntry *core, int32_t id)
{
	for (size_t i = 0; i < core->n_posix_timers; i++)
		if (core->posix_timers[i]->id == id)
			return core->posix_timers[i];
	return NULL;
}

bool posix_timers_requeues(const CoreEntry *core, const siginfo_t *si)
{
	const PosixTimerEntry *e =
	    si->si_code == SI_TIMER ? timer_by_id(core, si->si_timerid) : NULL;

	return e && (int)e->signo == si->si_signo && !cpu_clock(e->clock);
}

static bool own_signal_in(const CoreEntry *core, const ProtobufCBinaryData *q, size_t n, int32_t id)
{
	for (size_t i = 0; i < n; i++) {
		siginfo_t si;
		if (q[i].len < sizeof(si))
			continue;
		memcpy(&si, q[i].data, sizeof(si));
		if (si.si_code == SI_TIMER && si.si_timerid == id &&
		    posix_timers_requeues(core, &si))
			return true;
	}
	return false;
}

static bool own_signal_queued(struct restore_ctx *ctx, const PosixTimerEntry *e)
{
	const CoreEntry *core = ctx->core;

	if (own_signal_in(core, core->pending_shared, core->n_pending_shared, e->id))
		return true;
	for (size_t i = 0; i < ctx->nr_threads; i++)
		if (own_signal_in(core, ctx->threads[i].e->pending, ctx->threads[i].e->n_pending,
				  e->id))
			return true;
	return false;
}

/* Arms E to have expired one period ago (a one-shot: just now), so that
 * the kernel queues its signal at once. */
static int requeue_own_signal(struct restore_ctx *ctx, const PosixTimerEntry *e)
{
	struct timespec now;

	if (clock_gettime(e->clock, &now))
		return err_errno("cannot read clock %d", e->clock);
	uint64_t at = ts_ns(&now) + e->value_ns - (e->value_ns ? e->interval_ns : 1000);
	struct kitimerspec its = {ns_ts(e->interval_ns), ns_ts(at)};
	uint64_t its_addr;
	if (inject_scratch_put(&ctx->inj, 0, &its, sizeof(its), &its_addr) ||
	    inject_call(&ctx->inj, "arming a POSIX timer whose signal is queued", SYS_timer_settime,
			e->id, TIMER_ABSTIME, its_addr, 0, 0, 0, NULL))
		return err_wrap("timer %d", e->id);
	return 0;
}

static bool overrun_can_be_made(struct restore_ctx *ctx, const PosixTimerEntry *e)
{
	struct restore_thread *t = signalled_thread(ctx, e);
	const CoreEntry *core = ctx->core;

	if (e->overrun <= 0 || e->signo < 1 || !e->interval_ns || e->value_ns > e->interval_ns ||
	    !t || (e->notify & ~NOTIFY_THREAD_ID) == SIGEV_NONE || cpu_clock(e->clock))
		return false;
	if (signal_queued(core->pending_shared, core->n_pending_shared, e->signo))
		return false;
	for (size_t i = 0; i < ctx->nr_threads; i++)
		if (signal_queued(ctx->threads[i].e->pending, ctx->threads[i].e->n_pending,
				  e->signo))
			return false;
	return true;
}

/* Arms E overrun + 1 periods in the past and takes the signal it sends. */
static int make_overrun(struct restore_ctx *ctx, const PosixTimerEntry *e)
{
	struct timespec now;
	struct restore_thread *t = signalled_thread(ctx, e);
	uint64_t set = 1ULL << (e->signo - 1), back = (e->overrun + 1ULL) * e->interval_ns;
	struct timespec wait = {1, 0};

	if (clock_gettime(e->clock, &now))
		return err_errno("cannot read clock %d", e->clock);
	uint64_t at = ts_ns(&now) + e->value_ns;
	if (at < back)
		return err_set("timer %d: overrun %d too far in the past", e->id, e->overrun);
	struct kitimerspec its = {ns_ts(e->interval_ns), ns_ts(at - back)};
	uint64_t its_addr, set_addr, wait_addr;
	if (inject_scratch_put(&ctx->inj, 0, &its, sizeof(its), &its_addr) ||
	    inject_scratch_put(&ctx->inj, 64, &set, sizeof(set), &set_addr) ||
	    inject_scratch_put(&ctx->inj, 128, &wait, sizeof(wait), &wait_addr) ||
	    inject_call(&ctx->inj, "arming a POSIX timer in the past", SYS_timer_settime, e->id,
			TIMER_ABSTIME, its_addr, 0, 0, 0, NULL) ||
	    inject_call(t->inj, "taking the signal of a POSIX timer", SYS_rt_sigtimedwait, set_addr,
			0, wait_addr, sizeof(set), 0, 0, NULL))
		return err_wrap("timer %d (restoring its overrun)", e->id);
	return 0;
}

static int create_one(struct restore_ctx *ctx, const PosixTimerEntry *e)
{
	struct ksigevent sev = {.value = e->value,
				.signo = e->signo,
				.notify = e->notify,
				.tid = e->has_tid ? e->tid : 0};
	int32_t id = e->id;
	struct kitimerspec its = {ns_ts(e->interval_ns), ns_ts(e->value_ns)};
	uint64_t sev_addr, id_addr, its_addr;

	if (inject_scratch_put(&ctx->inj, 0, &sev, sizeof(sev), &sev_addr) ||
	    inject_scratch_put(&ctx->inj, 128, &id, sizeof(id), &id_addr))
		return -1;
	if (inject_call(&ctx->inj, "creating a POSIX timer", SYS_timer_create, e->clock, sev_addr,
			id_addr, 0, 0, 0, NULL) ||
	    inject_read(ctx->child, id_addr, &id, sizeof(id)))
		return err_wrap("timer %d on clock %d", e->id, e->clock);
	if (id != e->id)
		return err_set("timer %d was created as timer %d", e->id, id);
	if (own_signal_queued(ctx, e))
		return requeue_own_signal(ctx, e);
	if (!e->value_ns)
		return 0; /* disarmed */
	if (overrun_can_be_made(ctx, e))
		return make_overrun(ctx, e);
	if (inject_scratch_put(&ctx->inj, 0, &its, sizeof(its), &its_addr) ||
	    inject_call(&ctx->inj, "arming a POSIX timer", SYS_timer_settime, e->id, 0, its_addr, 0,
			0, 0, NULL))
		return err_wrap("timer %d", e->id);
	return 0;
}

int posix_timers_restore(struct restore_ctx *ctx)
{
	const CoreEntry *core = ctx->core;
	int ret = 0;

	if (!core->n_posix_timers)
		return 0;
	if (inject_call(&ctx->inj, "asking for timer ids (PR_TIMER_CREATE_RESTORE_IDS)", SYS_prctl,
			PR_TIMER_CREATE_RESTORE_IDS, RESTORE_IDS_ON, 0, 0, 0, 0, NULL))
		return err_wrap("pid %d has POSIX timers, which keep their ids only on Linux 6.10+",
				ctx->pid);
	for (size_t i = 0; i < core->n_posix_timers && !ret; i++)
		ret = create_one(ctx, core->posix_timers[i]);
	if (inject_call(&ctx->inj, "ending PR_TIMER_CREATE_RESTORE_IDS", SYS_prctl,
			PR_TIMER_CREATE_RESTORE_IDS, RESTORE_IDS_OFF, 0, 0, 0, 0, NULL))
		ret = -1;
	return ret;
}

int posix_timers_validate(struct restore_ctx *ctx)
{
	for (size_t i = 0; i < ctx->core->n_posix_timers; i++) {
		const PosixTimerEntry *e = ctx->core->posix_timers[i];
		if (e->id < 0 || e->signo > 64 || (e->notify & ~NOTIFY_THREAD_ID) > 2 ||
		    ((e->notify & NOTIFY_THREAD_ID) != 0) != e->has_tid)
			return err_set("core-%d.img: bad POSIX timer %d", ctx->pid, e->id);
	}
	return 0;
}
