/* rseq_robust.c: workload checking that glibc's rseq registration stays live
 * (the kernel keeps updating cpu_id), a custom robust futex list head,
 * clear_child_tid (set_tid_address), the parent-death signal and the pid/tid
 * survive checkpoint/restore. */
#include "wl.h"

#include <errno.h>
#include <linux/futex.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/rseq.h>
#include <sys/syscall.h>
#include <unistd.h>

#define SIG_RSEQ 0x53053053 /* glibc's x86 RSEQ_SIG */

static struct robust_list_head head;
static int tid_word = 12345;
static volatile int pdeath_hits;

static void h_usr2(int sig)
{
	(void)sig;
	pdeath_hits++;
}

static struct rseq *rs(void)
{
	return (struct rseq *)((char *)__builtin_thread_pointer() + __rseq_offset);
}

/* re-registering the same area must say EBUSY (registered, same sig and len) */
static int rseq_reregister_errno(void)
{
	long r = syscall(SYS_rseq, rs(), 32, 0, SIG_RSEQ);

	return r == 0 ? 0 : errno;
}

/* pin to CPU c, then return the cpu_id the kernel wrote into the rseq area */
static int cpu_after_pin(int c, int *getcpu_out)
{
	cpu_set_t set;
	unsigned cpu = 99999;

	CPU_ZERO(&set);
	CPU_SET(c, &set);
	if (sched_setaffinity(0, sizeof(set), &set))
		return -1000 - errno;
	syscall(SYS_getcpu, &cpu, NULL, NULL);
	*getcpu_out = (int)cpu;
	return (int)((volatile struct rseq *)rs())->cpu_id;
}

int main(void)
{
	int busy_before, busy_after, pdeath = -1, pid, tid, i, ncpu = 0;
	struct robust_list_head *hp = NULL;
	size_t hlen = 0;
	int *tidp = NULL;
	cpu_set_t allowed;
	struct sigaction sa;

	wl_init();
	if (__rseq_size == 0)
		wl_die("glibc did not register rseq");
	busy_before = rseq_reregister_errno();

	head.list.next = &head.list;
	head.futex_offset = 16;
	head.list_op_pending = NULL;
	if (syscall(SYS_set_robust_list, &head, sizeof(head)))
		wl_die("set_robust_list: %s", strerror(errno));
	syscall(SYS_set_tid_address, &tid_word);
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = h_usr2;
	sigaction(SIGUSR2, &sa, NULL);
	if (prctl(PR_SET_PDEATHSIG, SIGUSR2))
		wl_die("PR_SET_PDEATHSIG: %s", strerror(errno));
	pid = getpid();
	tid = syscall(SYS_gettid);
	sched_getaffinity(0, sizeof(allowed), &allowed);

	wl_ready();
	wl_wait_go();

	wl_check("pid", syscall(SYS_getpid) == pid && syscall(SYS_gettid) == tid,
		 "pid %ld tid %ld, expected %d %d", syscall(SYS_getpid), syscall(SYS_gettid), pid,
		 tid);

	/* rseq */
	busy_after = rseq_reregister_errno();
	wl_check("rseq_registered", busy_before == EBUSY && busy_after == EBUSY,
		 "re-registration errno %d before, %d after (expected EBUSY %d)", busy_before,
		 busy_after, EBUSY);
	{
		int c = (int)((volatile struct rseq *)rs())->cpu_id;
		wl_check("rseq_cpu_id_valid", c >= 0 && c < CPU_SETSIZE, "cpu_id %d", c);
	}
	for (i = 0; i < CPU_SETSIZE && ncpu < 4; i++) {
		int got, gc = -1;
		char name[32];

		if (!CPU_ISSET(i, &allowed))
			continue;
		ncpu++;
		got = cpu_after_pin(i, &gc);
		snprintf(name, sizeof(name), "rseq_cpu_follows_%d", i);
		wl_check(name, got == i && gc == i, "pinned to cpu %d: rseq cpu_id %d, getcpu %d",
			 i, got, gc);
	}
	sched_setaffinity(0, sizeof(allowed), &allowed);

	/* robust list */
	if (syscall(SYS_get_robust_list, 0, &hp, &hlen))
		hp = NULL;
	wl_check("robust_list", hp == &head && hlen == sizeof(head),
		 "head %p len %zu, expected %p %zu", (void *)hp, hlen, (void *)&head, sizeof(head));
	wl_check("robust_head_intact",
		 head.list.next == &head.list && head.futex_offset == 16 && !head.list_op_pending,
		 "head contents changed");

	/* clear_child_tid */
	if (prctl(PR_GET_TID_ADDRESS, &tidp) == 0)
		wl_check("clear_child_tid", tidp == &tid_word, "tid address %p, expected %p",
			 (void *)tidp, (void *)&tid_word);
	else
		printf("wl: PR_GET_TID_ADDRESS unavailable (%s), not checked\n", strerror(errno));
	wl_check("tid_word", tid_word == 12345, "tid word %d", tid_word);

	/* parent-death signal */
	prctl(PR_GET_PDEATHSIG, &pdeath);
	wl_check("pdeathsig", pdeath == SIGUSR2, "pdeathsig %d, expected %d", pdeath, SIGUSR2);
	wl_done();
}
