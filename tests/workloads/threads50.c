/* threads50.c: fifty threads waiting on one condition variable, and one more
 * thread creating and joining short-lived threads without pause, so that the
 * freeze has to catch threads born while it runs. After `go` all fifty must
 * wake with their own tids, and the spawner must keep working. */
#include "wl.h"

#include <pthread.h>
#include <stdio.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define NT 50

static pthread_mutex_t m = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t c = PTHREAD_COND_INITIALIZER;
static int go_flag, woke, waiting, tid_changed, stop;
static pid_t tids[NT];

static void *waiter(void *a)
{
	long i = (long)a;

	tids[i] = syscall(SYS_gettid);
	pthread_mutex_lock(&m);
	waiting++;
	while (!go_flag)
		pthread_cond_wait(&c, &m);
	woke++;
	if (syscall(SYS_gettid) != tids[i])
		tid_changed++;
	pthread_mutex_unlock(&m);
	return NULL;
}

static void *nothing(void *a)
{
	return a;
}

static long spawned;

static void *spawner(void *a)
{
	while (!__atomic_load_n(&stop, __ATOMIC_SEQ_CST)) {
		pthread_t t;
		if (pthread_create(&t, NULL, nothing, NULL))
			return (void *)-1L;
		pthread_join(t, NULL);
		__atomic_add_fetch(&spawned, 1, __ATOMIC_SEQ_CST);
	}
	return a;
}

int main(void)
{
	pthread_t t[NT], sp;
	long before, after;
	void *ret;

	wl_init();
	for (long i = 0; i < NT; i++)
		if (pthread_create(&t[i], NULL, waiter, (void *)i))
			wl_die("pthread_create %ld failed", i);
	if (pthread_create(&sp, NULL, spawner, NULL))
		wl_die("pthread_create spawner failed");
	wl_wait_count(&m, &waiting, NT);
	wl_ready();
	wl_wait_go();
	wl_broadcast_flag(&m, &c, &go_flag);
	for (int i = 0; i < NT; i++)
		pthread_join(t[i], NULL);
	/* the spawner still creates threads after the restore */
	before = __atomic_load_n(&spawned, __ATOMIC_SEQ_CST);
	nanosleep(&(struct timespec){0, 100 * 1000 * 1000}, NULL);
	__atomic_store_n(&stop, 1, __ATOMIC_SEQ_CST);
	pthread_join(sp, &ret);
	after = __atomic_load_n(&spawned, __ATOMIC_SEQ_CST);
	wl_check("threads50_woke", woke == NT, "%d of %d threads woke", woke, NT);
	wl_check("threads50_tids", tid_changed == 0, "%d threads changed tid", tid_changed);
	wl_check("threads50_spawner", ret == NULL && after > before,
		 "spawner made %ld threads after go (error %d)", after - before, ret != NULL);
	wl_done();
}
