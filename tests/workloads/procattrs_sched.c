/* procattrs_sched.c: threads scheduled each their own way, and the process's
 * own attributes:
 *   - main: nice 2, oom_score_adj 321, PR_SET_THP_DISABLE;
 *   - a SCHED_BATCH thread at nice 5, bound to the last CPU;
 *   - a SCHED_IDLE thread at nice 7;
 *   - a SCHED_FIFO thread, priority 10, SCHED_FLAG_RESET_ON_FORK, nice -3
 *     underneath;
 *   - a SCHED_RR thread, priority 5, bound to CPU 0;
 *   - a SCHED_OTHER thread at nice -5 with no_new_privs (per thread).
 * Each thread sets its state, checks it took, then blocks; after `go` it
 * reads policy, priority, flags, nice, affinity and no_new_privs again and
 * checks each against what it set; main checks its own. */
#include "wl.h"

#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <linux/sched.h>

#define NT	  5
#define OOM_ADJ	  321
#define MAIN_NICE 2
#define CPU_ANY	  -1
#define CPU_LAST  -2

struct sattr {
	uint32_t size, policy;
	uint64_t flags;
	int32_t nice;
	uint32_t priority;
	uint64_t runtime, deadline, period;
};

struct thr {
	const char *name;
	int policy, priority, nice, cpu, nnp;
	uint64_t flags;
};

static struct thr th[NT] = {
    {"batch", SCHED_BATCH, 0, 5, CPU_LAST, 0, 0},
    {"idle", SCHED_IDLE, 0, 7, CPU_ANY, 0, 0},
    {"fifo", SCHED_FIFO, 10, -3, CPU_ANY, 0, SCHED_FLAG_RESET_ON_FORK},
    {"rr", SCHED_RR, 5, 0, 0, 0, 0},
    {"other_nnp", SCHED_OTHER, 0, -5, CPU_ANY, 1, 0},
};
static pthread_t pt[NT];
static pthread_barrier_t set_barrier, go_barrier;
static int ncpu;

static int want_cpu(const struct thr *t)
{
	return t->cpu == CPU_LAST ? ncpu - 1 : t->cpu;
}

static void set_state(struct thr *t)
{
	struct sattr a = {.size = sizeof(a),
			  .policy = t->policy,
			  .flags = t->flags,
			  .nice = t->nice,
			  .priority = t->priority};
	cpu_set_t set;

	if (setpriority(PRIO_PROCESS, 0, t->nice))
		wl_die("%s: setpriority: %s", t->name, strerror(errno));
	if (syscall(SYS_sched_setattr, 0, &a, 0))
		wl_die("%s: sched_setattr: %s", t->name, strerror(errno));
	if (t->cpu != CPU_ANY && ncpu > 1) {
		CPU_ZERO(&set);
		CPU_SET(want_cpu(t), &set);
		if (sched_setaffinity(0, sizeof(set), &set))
			wl_die("%s: sched_setaffinity: %s", t->name, strerror(errno));
	}
	if (t->nnp && prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0))
		wl_die("%s: no_new_privs: %s", t->name, strerror(errno));
}

/* Every attribute of the calling thread against what t says. */
static void check_state(const struct thr *t, const char *when)
{
	struct sattr a = {.size = sizeof(a)};
	char name[96];
	cpu_set_t set;
	int nice;

	snprintf(name, sizeof(name), "%s_%s_policy", t->name, when);
	wl_check(name,
		 !syscall(SYS_sched_getattr, 0, &a, sizeof(a), 0) && (int)a.policy == t->policy &&
		     (int)a.priority == t->priority &&
		     (a.flags & SCHED_FLAG_RESET_ON_FORK) == t->flags,
		 "policy %u priority %u flags 0x%llx, want %d %d 0x%llx", a.policy, a.priority,
		 (unsigned long long)a.flags, t->policy, t->priority, (unsigned long long)t->flags);
	errno = 0;
	nice = getpriority(PRIO_PROCESS, 0);
	snprintf(name, sizeof(name), "%s_%s_nice", t->name, when);
	wl_check(name, !errno && nice == t->nice, "nice %d, want %d", nice, t->nice);
	snprintf(name, sizeof(name), "%s_%s_affinity", t->name, when);
	if (sched_getaffinity(0, sizeof(set), &set))
		wl_check(name, false, "sched_getaffinity: %s", strerror(errno));
	else if (t->cpu == CPU_ANY || ncpu < 2)
		wl_check(name, CPU_COUNT(&set) == ncpu, "%d CPUs, want all %d", CPU_COUNT(&set),
			 ncpu);
	else
		wl_check(name, CPU_COUNT(&set) == 1 && CPU_ISSET(want_cpu(t), &set),
			 "%d CPUs, want only CPU %d", CPU_COUNT(&set), want_cpu(t));
	snprintf(name, sizeof(name), "%s_%s_no_new_privs", t->name, when);
	wl_check(name, prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0) == t->nnp, "no_new_privs %d, want %d",
		 prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0), t->nnp);
}

static void *thread_main(void *arg)
{
	struct thr *t = arg;

	set_state(t);
	check_state(t, "set");
	pthread_barrier_wait(&set_barrier);
	pthread_barrier_wait(&go_barrier);
	check_state(t, "restored");
	return NULL;
}

static int read_oom_adj(void)
{
	FILE *f = fopen("/proc/self/oom_score_adj", "r");
	int v = -9999;

	if (!f || fscanf(f, "%d", &v) != 1)
		v = -9999;
	if (f)
		fclose(f);
	return v;
}

static void check_main(const char *when)
{
	struct thr self = {"main", SCHED_OTHER, 0, MAIN_NICE, CPU_ANY, 0, 0};
	char name[64];
	int v;

	check_state(&self, when);
	v = read_oom_adj();
	snprintf(name, sizeof(name), "main_%s_oom_score_adj", when);
	wl_check(name, v == OOM_ADJ, "oom_score_adj %d, want %d", v, OOM_ADJ);
	v = prctl(PR_GET_THP_DISABLE, 0, 0, 0, 0);
	snprintf(name, sizeof(name), "main_%s_thp_disable", when);
	wl_check(name, v & 1, "PR_GET_THP_DISABLE %d, want 1", v);
}

int main(void)
{
	FILE *f;

	wl_init();
	ncpu = (int)sysconf(_SC_NPROCESSORS_ONLN);
	if (setpriority(PRIO_PROCESS, 0, MAIN_NICE) || prctl(PR_SET_THP_DISABLE, 1, 0, 0, 0))
		wl_die("main: nice/THP: %s", strerror(errno));
	f = fopen("/proc/self/oom_score_adj", "w");
	if (!f || fprintf(f, "%d", OOM_ADJ) < 0 || fclose(f))
		wl_die("oom_score_adj: %s", strerror(errno));
	pthread_barrier_init(&set_barrier, NULL, NT + 1);
	pthread_barrier_init(&go_barrier, NULL, NT + 1);
	for (int i = 0; i < NT; i++)
		if (pthread_create(&pt[i], NULL, thread_main, &th[i]))
			wl_die("pthread_create failed");
	pthread_barrier_wait(&set_barrier);
	check_main("set");
	if (ncpu < 2)
		wl_not_covered("affinity", "one CPU online: no thread can be bound apart");

	wl_ready();
	wl_wait_go();

	check_main("restored");
	pthread_barrier_wait(&go_barrier);
	for (int i = 0; i < NT; i++)
		pthread_join(pt[i], NULL);
	wl_done();
}
