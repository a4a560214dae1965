/* threads.c: five threads, each blocked a different way (condition variable,
 * mutex, pthread_join, futex with a timeout, nanosleep) and each with its own
 * name, blocked mask, thread-directed pending signal (with its own si_value),
 * signal stack and robust list. After `go` main wakes them; each thread checks
 * its own state and main checks what the threads recorded. pthread_join
 * itself checks clear_child_tid: glibc waits for the kernel to clear the tid. */
#include "wl.h"

#include <errno.h>
#include <linux/futex.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/rseq.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define NT 5

struct thr {
	pthread_t pt;
	int idx;
	pid_t tid_before, tid_after;
	char name[16];
	sigset_t mask_before, mask_after;
	void *altstack;
	long robust_before;
	/* results, filled by the thread after it wakes */
	int name_ok, mask_ok, tid_ok, pending_ok, value_ok, altstack_ok, robust_ok, rseq_ok;
	int got_value;
	char name_after[16];
};

static struct thr th[NT];
static pthread_mutex_t m = PTHREAD_MUTEX_INITIALIZER, held = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t c = PTHREAD_COND_INITIALIZER;
static int go_flag, started;
static uint32_t fword;
static volatile int sleeping_done;
static __thread int value_seen = -1;

static void on_rt(int sig, siginfo_t *si, void *uc)
{
	(void)sig, (void)uc;
	value_seen = si->si_value.sival_int;
}

static int rt_sig(int idx)
{
	return SIGRTMIN + 2 + idx;
}

/* Per-thread state set before blocking. */
static void setup(struct thr *t)
{
	union sigval v = {.sival_int = 1000 + t->idx};
	stack_t ss = {.ss_size = 65536};
	sigset_t s;
	size_t len;

	t->tid_before = syscall(SYS_gettid);
	snprintf(t->name, sizeof(t->name), "wl-thr-%d", t->idx);
	prctl(PR_SET_NAME, t->name);
	sigemptyset(&s);
	sigaddset(&s, rt_sig(t->idx));
	sigaddset(&s, SIGUSR1 + (t->idx % 2)); /* masks differ between threads */
	pthread_sigmask(SIG_BLOCK, &s, NULL);
	sigemptyset(&t->mask_before); /* the kernel fills only its 64 bits */
	pthread_sigmask(SIG_BLOCK, NULL, &t->mask_before);
	pthread_sigqueue(pthread_self(), rt_sig(t->idx), v);
	t->altstack = malloc(ss.ss_size);
	ss.ss_sp = t->altstack;
	sigaltstack(&ss, NULL);
	syscall(SYS_get_robust_list, 0, &t->robust_before, &len);
	pthread_mutex_lock(&m);
	started++;
	pthread_mutex_unlock(&m);
}

static void check_self(struct thr *t)
{
	sigset_t now, pend, s;
	stack_t ss;
	long head;
	size_t len;
	struct rseq *rs = (struct rseq *)((char *)__builtin_thread_pointer() + __rseq_offset);

	t->tid_after = syscall(SYS_gettid);
	t->tid_ok = t->tid_after == t->tid_before;
	prctl(PR_GET_NAME, t->name_after);
	t->name_ok = !strcmp(t->name_after, t->name);
	sigemptyset(&now);
	pthread_sigmask(SIG_BLOCK, NULL, &now);
	t->mask_after = now;
	t->mask_ok = !memcmp(&now, &t->mask_before, 8); /* the kernel's 64 signals */
	sigpending(&pend);
	t->pending_ok = sigismember(&pend, rt_sig(t->idx));
	sigaltstack(NULL, &ss);
	t->altstack_ok =
	    ss.ss_sp == t->altstack && ss.ss_size == 65536 && !(ss.ss_flags & SS_DISABLE);
	syscall(SYS_get_robust_list, 0, &head, &len);
	t->robust_ok = head == t->robust_before && head != 0;
	t->rseq_ok = __rseq_size == 0 || (int)rs->cpu_id >= 0;
	sigemptyset(&s);
	sigaddset(&s, rt_sig(t->idx));
	pthread_sigmask(SIG_UNBLOCK, &s, NULL); /* delivers the queued signal here */
	t->got_value = value_seen;
	t->value_ok = value_seen == 1000 + t->idx;
}

static void *in_cond(void *a)
{
	struct thr *t = a;
	setup(t);
	pthread_mutex_lock(&m);
	while (!go_flag)
		pthread_cond_wait(&c, &m);
	pthread_mutex_unlock(&m);
	check_self(t);
	return NULL;
}

static void *in_mutex(void *a)
{
	struct thr *t = a;
	setup(t);
	pthread_mutex_lock(&held);
	pthread_mutex_unlock(&held);
	check_self(t);
	return NULL;
}

static void *in_join(void *a)
{
	struct thr *t = a;
	setup(t);
	pthread_join(th[0].pt, NULL); /* the condition-variable thread */
	check_self(t);
	return NULL;
}

static void *in_futex(void *a)
{
	struct thr *t = a;
	struct timespec to = {60, 0};
	setup(t);
	while (!__atomic_load_n(&fword, __ATOMIC_SEQ_CST))
		syscall(SYS_futex, &fword, FUTEX_WAIT_PRIVATE, 0, &to, NULL, 0);
	check_self(t);
	return NULL;
}

static void *in_sleep(void *a)
{
	struct thr *t = a;
	struct timespec ts = {0, 20 * 1000 * 1000};
	setup(t);
	while (!sleeping_done)
		nanosleep(&ts, NULL);
	check_self(t);
	return NULL;
}

int main(void)
{
	void *(*fn[NT])(void *) = {in_cond, in_mutex, in_join, in_futex, in_sleep};
	struct sigaction sa = {.sa_sigaction = on_rt, .sa_flags = SA_SIGINFO | SA_ONSTACK};
	char name[32];

	wl_init();
	for (int i = 0; i < NT; i++)
		sigaction(rt_sig(i), &sa, NULL);
	pthread_mutex_lock(&held);
	for (int i = 0; i < NT; i++) {
		th[i].idx = i;
		if (pthread_create(&th[i].pt, NULL, fn[i], &th[i]))
			wl_die("pthread_create failed");
	}
	wl_wait_count(&m, &started, NT);
	wl_ready();
	wl_wait_go();

	wl_broadcast_flag(&m, &c, &go_flag);
	pthread_mutex_unlock(&held);
	__atomic_store_n(&fword, 1, __ATOMIC_SEQ_CST);
	syscall(SYS_futex, &fword, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0);
	sleeping_done = 1;
	for (int i = 1; i < NT; i++) /* th[0] is joined by th[2] */
		pthread_join(th[i].pt, NULL);

	for (int i = 0; i < NT; i++) {
		struct thr *t = &th[i];
#define CHECK(field, fmt, ...)                                                                     \
	snprintf(name, sizeof(name), "thread%d_%s", i, #field);                                    \
	wl_check(name, t->field##_ok, fmt, __VA_ARGS__)
		CHECK(tid, "tid %d became %d", t->tid_before, t->tid_after);
		CHECK(name, "name '%s' became '%s'", t->name, t->name_after);
		CHECK(mask, "blocked mask 0x%llx became 0x%llx",
		      *(unsigned long long *)&t->mask_before,
		      *(unsigned long long *)&t->mask_after);
		CHECK(pending, "thread-directed signal %d no longer pending", rt_sig(i));
		CHECK(value, "si_value %d, want %d", t->got_value, 1000 + i);
		CHECK(altstack, "signal stack lost (%d)", 0);
		CHECK(robust, "robust list head changed from 0x%lx", t->robust_before);
		CHECK(rseq, "rseq cpu_id invalid (%d)", 0);
	}
	wl_done();
}
