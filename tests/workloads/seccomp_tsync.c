/* seccomp_tsync.c: a seccomp chain the threads share, and one a child
 * inherited across fork:
 *   - main installs filter A (sysinfo fails with EPERM) with
 *     SECCOMP_FILTER_FLAG_TSYNC, so its three threads share it;
 *   - a child forked after that inherits A.
 * After restore every thread and the child find Seccomp: 2 with one filter
 * and sysinfo refused; then main installs filter B (times fails with EACCES)
 * with TSYNC again, which the kernel allows only if every thread still
 * shares main's chain: it must succeed, and every thread then finds two
 * filters and times refused. */
#include "wl.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <pthread.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/sysinfo.h>
#include <sys/times.h>
#include <sys/wait.h>
#include <unistd.h>

#define NT 3

static pthread_barrier_t set_barrier, go_barrier, tsync_barrier;
static pthread_t pt[NT];

/* nr fails with err; everything else is allowed. */
static long install(int nr, int err, unsigned flags)
{
	struct sock_filter f[] = {
	    BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch)),
	    BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_X86_64, 1, 0),
	    BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS),
	    BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
	    BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, nr, 0, 1),
	    BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | err),
	    BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
	};
	struct sock_fprog prog = {.len = sizeof(f) / sizeof(f[0]), .filter = f};

	return syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, flags, &prog);
}

/* The Seccomp_filters: count of /proc/thread-self/status; -1: unreadable. */
static int nr_filters(const char *path)
{
	char buf[8192], *p;
	int fd = open(path, O_RDONLY), mode = -1, n = -1;
	ssize_t len = fd < 0 ? -1 : read(fd, buf, sizeof(buf) - 1);

	if (fd >= 0)
		close(fd);
	if (len <= 0)
		return -1;
	buf[len] = '\0';
	if ((p = strstr(buf, "\nSeccomp:")))
		mode = atoi(p + 9);
	if ((p = strstr(buf, "\nSeccomp_filters:")))
		n = atoi(p + 17);
	return mode == 2 ? n : -1;
}

static void check_filters(const char *who, const char *when, int want)
{
	char name[64];
	struct sysinfo si;
	struct tms t;
	int n = nr_filters("/proc/thread-self/status");

	snprintf(name, sizeof(name), "%s_%s_filters", who, when);
	wl_check(name, n == want, "Seccomp_filters %d (or not mode 2), want %d", n, want);
	errno = 0;
	snprintf(name, sizeof(name), "%s_%s_sysinfo_refused", who, when);
	wl_check(name, sysinfo(&si) == -1 && errno == EPERM, "sysinfo: %s", strerror(errno));
	errno = 0;
	snprintf(name, sizeof(name), "%s_%s_times", who, when);
	if (want == 2)
		wl_check(name, syscall(SYS_times, &t) == -1 && errno == EACCES, "times: %s",
			 strerror(errno));
	else
		wl_check(name, syscall(SYS_times, &t) != -1, "times: %s", strerror(errno));
}

static void *thread_main(void *arg)
{
	char who[16];

	snprintf(who, sizeof(who), "thread%d", (int)(long)arg);
	pthread_barrier_wait(&set_barrier);
	check_filters(who, "set", 1);
	pthread_barrier_wait(&go_barrier);
	check_filters(who, "restored", 1);
	pthread_barrier_wait(&tsync_barrier); /* main adds B */
	pthread_barrier_wait(&tsync_barrier);
	check_filters(who, "tsynced", 2);
	return NULL;
}

static void child_main(int go_fd)
{
	char byte;

	check_filters("child", "set", 1);
	if (read(go_fd, &byte, 1) != 1)
		_exit(3);
	check_filters("child", "restored", 1);
	wl_done();
}

int main(void)
{
	int go[2];
	long r = 0;
	pid_t kid;

	wl_init();
	pthread_barrier_init(&set_barrier, NULL, NT + 1);
	pthread_barrier_init(&go_barrier, NULL, NT + 1);
	pthread_barrier_init(&tsync_barrier, NULL, NT + 1);
	if (pipe(go))
		wl_die("pipe: %s", strerror(errno));
	for (long i = 0; i < NT; i++)
		if (pthread_create(&pt[i], NULL, thread_main, (void *)i))
			wl_die("pthread_create failed");
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) ||
	    (r = install(SYS_sysinfo, EPERM, SECCOMP_FILTER_FLAG_TSYNC)) != 0)
		wl_die("filter A with TSYNC: %ld %s", r, strerror(errno));
	kid = fork();
	if (kid < 0)
		wl_die("fork: %s", strerror(errno));
	if (kid == 0)
		child_main(go[0]);
	pthread_barrier_wait(&set_barrier);
	check_filters("main", "set", 1);

	wl_ready();
	wl_wait_go();

	if (write(go[1], "g", 1) != 1)
		wl_die("go pipe: %s", strerror(errno));
	pthread_barrier_wait(&go_barrier);
	check_filters("main", "restored", 1);
	pthread_barrier_wait(&tsync_barrier);
	r = install(SYS_times, EACCES, SECCOMP_FILTER_FLAG_TSYNC);
	wl_check("main_tsync_again", r == 0, "TSYNC of filter B: %ld (%s)", r,
		 r < 0 ? strerror(errno) : "a thread that does not share the chain");
	pthread_barrier_wait(&tsync_barrier);
	check_filters("main", "tsynced", r == 0 ? 2 : 1);
	for (int i = 0; i < NT; i++)
		pthread_join(pt[i], NULL);
	wl_check_child("child", kid);
	wl_done();
}
