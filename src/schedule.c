/*
 * schedule: how each thread is scheduled and what the process told the kernel
 * about itself: per thread its policy (SCHED_OTHER, BATCH, IDLE, FIFO, RR,
 * DEADLINE) with priority, SCHED_FLAG_RESET_ON_FORK and nice, its CPU
 * affinity and its no_new_privs bit; per process oom_score_adj,
 * PR_SET_THP_DISABLE and memory-deny-write-execute (PR_SET_MDWE).
 *
 * Dump: cryo reads the policy (sched_getattr), nice (getpriority) and
 * affinity of any tid from outside; no_new_privs and the THP flag only the
 * task can tell, by injected prctl. Restore: oom_score_adj is written to
 * /proc/PID/oom_score_adj by cryo; the rest by calls injected into each
 * thread, late in the rebuild (an idle or real-time policy would otherwise
 * slow or race the injections that follow). nice goes first: a real-time
 * policy keeps the nice value underneath, which sched_setattr does not set.
 * An affinity is restored on the CPUs of it that exist here; one with none
 * of them is refused before anything is created.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <linux/sched.h>

#include "images.h"
#include "infra/inject.h"
#include "infra/log.h"
#include "schedule.h"

#define MASK_WORDS 16 /* 1024 CPUs */

/* struct sched_attr of the kernel ABI (the first, 48-byte version). */
struct cryo_sched_attr {
	uint32_t size;
	uint32_t policy;
	uint64_t flags;
	int32_t nice;
	uint32_t priority;
	uint64_t runtime, deadline, period;
};

/* ---- dump ---- */

static int read_policy(pid_t tid, SchedEntry *e)
{
	struct cryo_sched_attr a = {.size = sizeof(a)};

	if (syscall(SYS_sched_getattr, tid, &a, sizeof(a), 0))
		return err_errno("cannot read the scheduling policy of thread %d", tid);
	e->policy = a.policy;
	e->priority = a.priority;
	e->flags = a.flags & SCHED_FLAG_RESET_ON_FORK;
	if (a.policy == SCHED_DEADLINE) {
		e->has_runtime = e->has_deadline = e->has_period = true;
		e->runtime = a.runtime;
		e->deadline = a.deadline;
		e->period = a.period;
	}
	errno = 0;
	e->nice = getpriority(PRIO_PROCESS, tid);
	if (errno)
		return err_errno("cannot read the nice value of thread %d", tid);
	return 0;
}

static int read_affinity(pid_t tid, SchedEntry *e)
{
	uint64_t mask[MASK_WORDS] = {0};
	long n = syscall(SYS_sched_getaffinity, tid, sizeof(mask), mask);

	if (n < 0)
		return err_errno("cannot read the CPU affinity of thread %d", tid);
	e->n_affinity = n / sizeof(uint64_t);
	e->affinity = malloc(sizeof(*e->affinity) * (e->n_affinity + 1));
	if (!e->affinity)
		return err_set("out of memory");
	memcpy(e->affinity, mask, e->n_affinity * sizeof(uint64_t));
	return 0;
}

int sched_dump_thread(struct dump_ctx *ctx, struct dump_thread *t)
{
	SchedEntry *e = malloc(sizeof(*e));
	long nnp;

	(void)ctx;
	if (!e)
		return err_set("out of memory");
	sched_entry__init(e);
	t->e->sched = e;
	if (read_policy(t->tid, e) || read_affinity(t->tid, e))
		return -1;
	if (inject_call(t->inj, "reading no_new_privs", SYS_prctl, PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0,
			0, &nnp))
		return -1;
	e->no_new_privs = nnp != 0;
	return 0;
}

#ifndef PR_SET_MDWE
#define PR_SET_MDWE 65
#define PR_GET_MDWE 66
#endif

/* A kernel without MDWE (EINVAL) has nothing to keep. */
static int read_mdwe(struct dump_ctx *ctx)
{
	long mdwe;

	if (inject_syscall(&ctx->inj, SYS_prctl, PR_GET_MDWE, 0, 0, 0, 0, 0, &mdwe))
		return -1;
	if (mdwe < 0 && mdwe != -EINVAL)
		return err_set("cannot read the MDWE flags of pid %d: %s", ctx->pid,
			       strerror((int)-mdwe));
	ctx->core->has_mdwe = mdwe > 0;
	ctx->core->mdwe = mdwe > 0 ? (uint32_t)mdwe : 0;
	return 0;
}

int sched_dump(struct dump_ctx *ctx)
{
	char *buf;
	long thp;

	if (proc_read(ctx->pid, "oom_score_adj", &buf, NULL))
		return -1;
	ctx->core->has_oom_score_adj = true;
	ctx->core->oom_score_adj = atoi(buf);
	free(buf);
	if (inject_call(&ctx->inj, "reading the THP-disable flag", SYS_prctl, PR_GET_THP_DISABLE, 0,
			0, 0, 0, 0, &thp))
		return -1;
	ctx->core->has_thp_disable = true;
	ctx->core->thp_disable = (uint32_t)thp;
	return read_mdwe(ctx);
}

/* ---- restore ---- */

/* The CPUs online here, from a list like "0-3,6,8-9". */
static int online_cpus(uint64_t *mask)
{
	char buf[4096] = "", *p;
	FILE *f = fopen("/sys/devices/system/cpu/online", "r");

	memset(mask, 0, MASK_WORDS * sizeof(uint64_t));
	if (!f || !fgets(buf, sizeof(buf), f)) {
		if (f)
			fclose(f);
		return err_errno("cannot read /sys/devices/system/cpu/online");
	}
	fclose(f);
	for (p = buf; *p && *p != '\n';) {
		unsigned long lo = strtoul(p, &p, 10), hi = lo;
		if (*p == '-')
			hi = strtoul(p + 1, &p, 10);
		for (unsigned long c = lo; c <= hi && c < MASK_WORDS * 64; c++)
			mask[c / 64] |= 1ULL << (c % 64);
		if (*p == ',')
			p++;
		else if (*p && *p != '\n')
			break;
	}
	return 0;
}

/* The saved affinity, on the CPUs of it that exist here; 0 words: none. */
static size_t usable_affinity(const SchedEntry *e, const uint64_t *online, uint64_t *out)
{
	size_t n = e->n_affinity < MASK_WORDS ? e->n_affinity : MASK_WORDS;
	bool any = false;

	memset(out, 0, MASK_WORDS * sizeof(uint64_t));
	for (size_t i = 0; i < n; i++) {
		out[i] = e->affinity[i] & online[i];
		any |= out[i] != 0;
	}
	return any ? MASK_WORDS : 0;
}

int sched_validate(struct restore_ctx *ctx)
{
	uint64_t online[MASK_WORDS], use[MASK_WORDS];

	if (online_cpus(online))
		return -1;
	for (size_t i = 0; i < ctx->core->n_threads; i++) {
		const ThreadEntry *t = ctx->core->threads[i];
		if (t->sched && t->sched->n_affinity && !usable_affinity(t->sched, online, use))
			return err_set("thread %d of pid %d may run only on CPUs that this machine "
				       "does not have (first word of its mask 0x%llx): cannot "
				       "restore its CPU affinity",
				       t->tid, ctx->pid, (unsigned long long)t->sched->affinity[0]);
	}
	return 0;
}

static int restore_policy(struct restore_thread *t, const SchedEntry *e)
{
	struct cryo_sched_attr a = {.size = sizeof(a),
				    .policy = e->policy,
				    .flags = e->flags & SCHED_FLAG_RESET_ON_FORK,
				    .nice = e->nice,
				    .priority = e->priority,
				    .runtime = e->runtime,
				    .deadline = e->deadline,
				    .period = e->period};
	uint64_t addr;

	if (inject_call(t->inj, "setting the nice value", SYS_setpriority, PRIO_PROCESS, 0,
			(uint64_t)(int64_t)e->nice, 0, 0, 0, NULL) ||
	    inject_scratch_put(t->inj, 0, &a, sizeof(a), &addr))
		return -1;
	return inject_call(t->inj, "setting the scheduling policy", SYS_sched_setattr, 0, addr, 0,
			   0, 0, 0, NULL);
}

static int restore_thread(struct restore_thread *t, const uint64_t *online)
{
	const SchedEntry *e = t->e->sched;
	uint64_t mask[MASK_WORDS], addr;

	if (!e)
		return 0;
	if (e->no_new_privs && inject_call(t->inj, "setting no_new_privs", SYS_prctl,
					   PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0, 0, NULL))
		return -1;
	if (e->n_affinity) {
		size_t n = usable_affinity(e, online, mask);
		if (memcmp(mask, e->affinity, e->n_affinity * sizeof(uint64_t)))
			pr_warn("thread %d: CPU affinity restored only on the CPUs that exist here",
				t->tid);
		if (inject_scratch_put(t->inj, 0, mask, sizeof(mask), &addr) ||
		    inject_call(t->inj, "setting the CPU affinity", SYS_sched_setaffinity, 0,
				n * sizeof(uint64_t), addr, 0, 0, 0, NULL))
			return -1;
	}
	return restore_policy(t, e);
}

static int restore_oom_score_adj(struct restore_ctx *ctx)
{
	char path[64];
	FILE *f;

	if (!ctx->core->has_oom_score_adj)
		return 0;
	snprintf(path, sizeof(path), "/proc/%d/oom_score_adj", ctx->child);
	f = fopen(path, "w");
	if (!f || fprintf(f, "%d", ctx->core->oom_score_adj) < 0 || fclose(f)) {
		int e = errno;
		return err_errno("cannot set oom_score_adj %d of pid %d%s",
				 ctx->core->oom_score_adj, ctx->pid,
				 e == EACCES ? " (lowering it needs CAP_SYS_RESOURCE)" : "");
	}
	return 0;
}

int sched_restore(struct restore_ctx *ctx)
{
	uint64_t online[MASK_WORDS];
	uint32_t thp = ctx->core->thp_disable;

	if (restore_oom_score_adj(ctx) || online_cpus(online))
		return -1;
	/* always: the new process inherited cryo's flag */
	if (ctx->core->has_thp_disable &&
	    inject_call(&ctx->inj, "setting the THP-disable flag", SYS_prctl, PR_SET_THP_DISABLE,
			thp != 0, thp & ~1U, 0, 0, 0, NULL))
		return -1;
	for (size_t i = 0; i < ctx->nr_threads; i++)
		if (restore_thread(&ctx->threads[i], online))
			return err_wrap("thread %d", ctx->threads[i].tid);
	/* last: once set, no mapping of this process may become executable */
	if (ctx->core->mdwe &&
	    inject_call(&ctx->inj, "setting memory-deny-write-execute", SYS_prctl, PR_SET_MDWE,
			ctx->core->mdwe, 0, 0, 0, 0, NULL))
		return -1;
	return 0;
}
