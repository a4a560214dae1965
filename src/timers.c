/*
 * timers: the three interval timers (ITIMER_REAL, _VIRTUAL, _PROF), and
 * through posix_timers.c the POSIX ones.
 * Read by injected getitimer, set again by injected setitimer; the time
 * left keeps counting from where it was when the task was frozen. The
 * kernel adds one scheduler tick to every CPU-time timer it arms (and reads
 * it back as time left), so that tick is taken off again on restore, or each
 * checkpoint would push the expiry one tick further out.
 */
#include <stdlib.h>
#include <sys/syscall.h>
#include <sys/time.h>

#include "infra/inject.h"
#include "posix_timers.h"
#include "timers.h"
#include "infra/log.h"

static uint64_t tv_us(const struct timeval *tv)
{
	return tv->tv_sec * 1000000ULL + tv->tv_usec;
}

int timers_dump(struct dump_ctx *ctx)
{
	CoreEntry *core = ctx->core;

	core->itimers = calloc(3, sizeof(*core->itimers));
	if (!core->itimers)
		return err_set("out of memory");
	for (int which = ITIMER_REAL; which <= ITIMER_PROF; which++) {
		struct itimerval it;
		ItimerEntry *e;
		if (inject_call(&ctx->inj, "reading an interval timer", SYS_getitimer, which,
				ctx->inj.scratch, 0, 0, 0, 0, NULL) ||
		    inject_read(ctx->pid, ctx->inj.scratch, &it, sizeof(it)))
			return -1;
		/* An ITIMER_REAL that expired while its SIGALRM is still pending
		 * (the task is frozen, or blocks it) reads 0 left: the kernel
		 * arms it again only once that signal is dequeued. It is armed
		 * still: its next expiry is one interval on. */
		if (which == ITIMER_REAL && !timerisset(&it.it_value))
			it.it_value = it.it_interval;
		if (!timerisset(&it.it_value))
			continue; /* disarmed */
		e = malloc(sizeof(*e));
		if (!e)
			return err_set("out of memory");
		itimer_entry__init(e);
		e->which = which;
		e->interval_us = tv_us(&it.it_interval);
		e->value_us = tv_us(&it.it_value);
		core->itimers[core->n_itimers++] = e;
	}
	return posix_timers_dump(ctx);
}

/* The tick the kernel adds when arming a CPU-time timer, measured on cryo
 * itself (which has none armed) and rounded to the nearest usual HZ. */
static uint64_t cpu_timer_tick_us(void)
{
	static const uint64_t ticks_us[] = {1000, 3333, 4000, 10000};
	struct itimerval probe = {.it_value = {1, 0}}, got, off = {0};
	uint64_t extra, best = ticks_us[0];

	if (setitimer(ITIMER_VIRTUAL, &probe, NULL) || getitimer(ITIMER_VIRTUAL, &got))
		return 0;
	setitimer(ITIMER_VIRTUAL, &off, NULL);
	extra = tv_us(&got.it_value) > 1000000 ? tv_us(&got.it_value) - 1000000 : 0;
	for (size_t i = 1; i < sizeof(ticks_us) / sizeof(ticks_us[0]); i++)
		if (llabs((long long)(ticks_us[i] - extra)) < llabs((long long)(best - extra)))
			best = ticks_us[i];
	return extra ? best : 0;
}

int timers_restore(struct restore_ctx *ctx)
{
	uint64_t tick_us = 0;

	for (size_t i = 0; i < ctx->core->n_itimers; i++) {
		const ItimerEntry *e = ctx->core->itimers[i];
		/* 0 left (an image that saved a timer as due): due at once, as a
		 * value of 0 would disarm it, interval and all */
		uint64_t value = e->value_us ? e->value_us : 1;
		if (e->which != ITIMER_REAL) {
			if (!tick_us)
				tick_us = cpu_timer_tick_us();
			value = value > tick_us ? value - tick_us : 1;
		}
		struct itimerval it = {
		    .it_interval = {e->interval_us / 1000000, e->interval_us % 1000000},
		    .it_value = {value / 1000000, value % 1000000},
		};
		if (e->which > ITIMER_PROF)
			return err_set("core-%d.img: bad timer %u", ctx->pid, e->which);
		uint64_t addr;
		if (inject_scratch_put(&ctx->inj, 0, &it, sizeof(it), &addr) ||
		    inject_call(&ctx->inj, "restoring an interval timer", SYS_setitimer, e->which,
				addr, 0, 0, 0, 0, NULL))
			return -1;
	}
	return posix_timers_restore(ctx);
}
