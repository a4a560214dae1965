/* inj_seccomp.c: a tree whose seccomp filters forbid the calls cryo injects
 * into a task to dump it (mmap, munmap, rt_sigaction, sigaltstack, prctl,
 * prlimit64, getitimer, brk):
 *   - the root's leader, with a filter that fails them with EPERM;
 *   - a thread of it, with a filter of its own failing them with EPERM;
 *   - another thread, whose filter raises SIGSYS for them (SECCOMP_RET_TRAP);
 *   - a child whose filter kills the process for them (RET_KILL_PROCESS);
 *   - a child in strict mode (only read, write, exit and sigreturn), which
 *     answers each number the root writes to a pipe with 3n+1 on another.
 * A checkpoint with -R must leave every filter in force, and a restore
 * must put each back: after `go` each
 * task finds Seccomp:, Seccomp_filters: and NoNewPrivs: of its status as
 * they were, a forbidden call still fails (or traps, or kills: a grandchild
 * tries, the strict child is made to try), no SIGSYS was raised meanwhile,
 * and its memory, timers and pipe stream are intact. The same after a
 * restore: cryo installs every filter and strict mode again. */
#include "wl.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <pthread.h>
#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#define MEM_LEN	   (1 << 20)
#define STATUS_MAX 512
#define N_PINGS	   5

/* What cryo injects to dump a task. */
static const int forbidden[] = {SYS_mmap,	  SYS_munmap,	   SYS_mprotect,
				SYS_rt_sigaction, SYS_sigaltstack, SYS_prctl,
				SYS_prlimit64,	  SYS_getitimer,   SYS_brk};
#define N_FORBIDDEN (int)(sizeof(forbidden) / sizeof(forbidden[0]))

static unsigned char mem[MEM_LEN];
static volatile sig_atomic_t n_alrm, n_sigsys, sigsys_nr;
static int go_pipe[2], set_pipe[2];

static void h_alrm(int sig)
{
	(void)sig;
	n_alrm++;
}

static void h_sys(int sig, siginfo_t *si, void *uc)
{
	(void)sig;
	(void)uc;
	n_sigsys++;
	sigsys_nr = si->si_syscall;
}

/* A filter for the calling thread: ACTION for each forbidden call. */
static void install_filter(uint32_t action)
{
	struct sock_filter f[4 + N_FORBIDDEN + 2];
	struct sock_fprog prog = {.len = 0, .filter = f};
	int n = 0;

	f[n++] = (struct sock_filter)BPF_STMT(BPF_LD | BPF_W | BPF_ABS,
					      offsetof(struct seccomp_data, arch));
	f[n++] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_X86_64, 1, 0);
	f[n++] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS);
	f[n++] = (struct sock_filter)BPF_STMT(BPF_LD | BPF_W | BPF_ABS,
					      offsetof(struct seccomp_data, nr));
	for (int i = 0; i < N_FORBIDDEN; i++)
		/* match: jump over the rest to the ACTION at the end */
		f[n++] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, forbidden[i],
						      N_FORBIDDEN - i, 0);
	f[n++] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW);
	f[n++] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, action);
	prog.len = n;
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) ||
	    syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &prog))
		wl_die("installing a seccomp filter: %s", strerror(errno));
}

/* The seccomp lines of a status file (/proc/thread-self/status, ...). */
static void seccomp_status(const char *path, char *out)
{
	static __thread char buf[8192];
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t n = fd < 0 ? -1 : read(fd, buf, sizeof(buf) - 1);
	char *save = NULL;
	size_t pos = 0;

	out[0] = '\0';
	if (fd >= 0)
		close(fd);
	if (n <= 0)
		return;
	buf[n] = '\0';
	for (char *line = strtok_r(buf, "\n", &save); line; line = strtok_r(NULL, "\n", &save))
		if (!strncmp(line, "Seccomp", 7) || !strncmp(line, "NoNewPrivs", 10))
			pos += snprintf(out + pos, STATUS_MAX - pos, "%s; ", line);
}

static void check_status(const char *name, const char *path, const char *before)
{
	char now[STATUS_MAX];

	seccomp_status(path, now);
	wl_check(name, !strcmp(now, before) && strstr(now, "Seccomp:\t2"), "now \"%s\", was \"%s\"",
		 now, before);
}

static void tell_set(void)
{
	char byte = 1;

	if (write(set_pipe[1], &byte, 1) != 1)
		wl_die("set pipe: %s", strerror(errno));
}

static void wait_go_pipe(void)
{
	char byte;

	if (read(go_pipe[0], &byte, 1) != 1)
		wl_die("go pipe: %s", strerror(errno));
}

/* ---- the threads ---- */

static void *eperm_thread(void *arg)
{
	char before[STATUS_MAX];
	stack_t ss;
	char name[16];

	(void)arg;
	install_filter(SECCOMP_RET_ERRNO | EPERM);
	seccomp_status("/proc/thread-self/status", before);
	tell_set();
	wait_go_pipe();
	check_status("eperm_thread_status", "/proc/thread-self/status", before);
	errno = 0;
	wl_check("eperm_thread_sigaltstack", sigaltstack(NULL, &ss) == -1 && errno == EPERM,
		 "sigaltstack: %s", strerror(errno));
	errno = 0;
	wl_check("eperm_thread_prctl", prctl(PR_GET_NAME, name) == -1 && errno == EPERM,
		 "prctl: %s", strerror(errno));
	return NULL;
}

static void *trap_thread(void *arg)
{
	char before[STATUS_MAX];
	stack_t ss;

	(void)arg;
	install_filter(SECCOMP_RET_TRAP);
	seccomp_status("/proc/thread-self/status", before);
	tell_set();
	wait_go_pipe();
	check_status("trap_thread_status", "/proc/thread-self/status", before);
	wl_check("trap_thread_no_sigsys", n_sigsys == 0, "%d SIGSYS before the test call",
		 (int)n_sigsys);
	sigaltstack(NULL, &ss);
	wl_check("trap_thread_traps", n_sigsys == 1 && sigsys_nr == SYS_sigaltstack,
		 "%d SIGSYS (last for call %d)", (int)n_sigsys, (int)sigsys_nr);
	return NULL;
}

/* ---- the children ---- */

/* Strict mode: only read, write, exit and sigreturn. */
static void strict_child(int in, int out)
{
	uint64_t n;

	if (prctl(PR_SET_SECCOMP, SECCOMP_MODE_STRICT))
		wl_die("strict mode: %s", strerror(errno));
	for (;;) {
		if (read(in, &n, sizeof(n)) != sizeof(n))
			syscall(SYS_exit, 3);
		if (n == UINT64_MAX)
			getpid(); /* forbidden: the kernel kills it */
		n = 3 * n + 1;
		if (write(out, &n, sizeof(n)) != sizeof(n))
			syscall(SYS_exit, 4);
	}
}

static void kill_child(void)
{
	char before[STATUS_MAX];
	struct itimerval it;
	pid_t g;
	int st = 0;

	install_filter(SECCOMP_RET_KILL_PROCESS);
	seccomp_status("/proc/self/status", before);
	tell_set();
	wl_wait_go();
	check_status("kill_child_status", "/proc/self/status", before);
	wl_check_pattern("kill_child_memory", mem, MEM_LEN, 2);
	g = fork();
	if (g == 0) {
		syscall(SYS_getitimer, ITIMER_REAL, &it);
		_exit(0);
	}
	wl_check("kill_child_kills",
		 g > 0 && waitpid(g, &st, 0) == g && WIFSIGNALED(st) && WTERMSIG(st) == SIGSYS,
		 "a forbidden call in a grandchild: status 0x%x", st);
	wl_done();
}

static pid_t fork_or_die(void)
{
	pid_t pid = fork();

	if (pid < 0)
		wl_die("fork: %s", strerror(errno));
	return pid;
}

static bool ping(int out, int in, uint64_t n)
{
	uint64_t got = 0;

	return write(out, &n, sizeof(n)) == sizeof(n) &&
	       read(in, &got, sizeof(got)) == sizeof(got) && got == 3 * n + 1;
}

/* ---- the root ---- */

static void check_root(const char *before, pid_t strict, int to_strict, int from_strict,
		       const char *strict_before)
{
	char strict_path[64], now[STATUS_MAX];
	struct itimerval it;
	uint64_t n = 0;
	int st = 0, ok = 0, alrm0 = n_alrm;

	check_status("root_status", "/proc/thread-self/status", before);
	errno = 0;
	wl_check("root_eperm", syscall(SYS_getitimer, ITIMER_REAL, &it) == -1 && errno == EPERM,
		 "getitimer: %s", strerror(errno));
	wl_check_pattern("root_memory", mem, MEM_LEN, 1);
	for (int i = 0; i < 100 && n_alrm < alrm0 + 2; i++)
		usleep(10 * 1000);
	wl_check("root_itimer", n_alrm >= alrm0 + 2, "%d SIGALRM in 1 s", (int)(n_alrm - alrm0));
	snprintf(strict_path, sizeof(strict_path), "/proc/%d/status", strict);
	seccomp_status(strict_path, now);
	wl_check("strict_status", !strcmp(now, strict_before) && strstr(now, "Seccomp:\t1"),
		 "now \"%s\", was \"%s\"", now, strict_before);
	for (int i = 0; i < N_PINGS; i++)
		ok += ping(to_strict, from_strict, 1000 + i);
	wl_check("strict_answers", ok == N_PINGS, "%d of %d answers right", ok, N_PINGS);
	n = UINT64_MAX;
	wl_check("strict_kills",
		 write(to_strict, &n, sizeof(n)) == sizeof(n) &&
		     waitpid(strict, &st, 0) == strict && WIFSIGNALED(st) &&
		     WTERMSIG(st) == SIGKILL,
		 "a forbidden call in strict mode: status 0x%x", st);
}

int main(void)
{
	char before[STATUS_MAX], strict_before[STATUS_MAX], path[64];
	struct itimerval r = {{0, 50 * 1000}, {0, 50 * 1000}};
	struct sigaction sa = {.sa_sigaction = h_sys, .sa_flags = SA_SIGINFO | SA_RESTART};
	int to_strict[2], from_strict[2], ok = 0;
	pthread_t th[2];
	pid_t strict, killer;
	char byte;

	wl_init();
	if (pipe(to_strict) || pipe(from_strict) || pipe(go_pipe) || pipe(set_pipe))
		wl_die("pipe: %s", strerror(errno));
	sigemptyset(&sa.sa_mask);
	if (sigaction(SIGSYS, &sa, NULL))
		wl_die("sigaction: %s", strerror(errno));
	wl_fill(mem, MEM_LEN, 2);
	strict = fork_or_die();
	if (strict == 0)
		strict_child(to_strict[0], from_strict[1]);
	killer = fork_or_die();
	if (killer == 0)
		kill_child();
	wl_fill(mem, MEM_LEN, 1);
	if (pthread_create(&th[0], NULL, eperm_thread, NULL) ||
	    pthread_create(&th[1], NULL, trap_thread, NULL))
		wl_die("pthread_create failed");
	for (int i = 0; i < 3; i++)
		if (read(set_pipe[0], &byte, 1) != 1)
			wl_die("set pipe: %s", strerror(errno));
	for (int i = 0; i < N_PINGS; i++)
		ok += ping(to_strict[1], from_strict[0], i);
	if (ok != N_PINGS)
		wl_die("the strict child answered %d of %d", ok, N_PINGS);
	snprintf(path, sizeof(path), "/proc/%d/status", strict);
	seccomp_status(path, strict_before);
	wl_on_signal(SIGALRM, h_alrm);
	if (setitimer(ITIMER_REAL, &r, NULL))
		wl_die("setitimer: %s", strerror(errno));
	install_filter(SECCOMP_RET_ERRNO | EPERM);
	seccomp_status("/proc/thread-self/status", before);

	wl_ready();
	wl_wait_go();

	if (write(go_pipe[1], "gg", 2) != 2)
		wl_die("go pipe: %s", strerror(errno));
	pthread_join(th[0], NULL);
	pthread_join(th[1], NULL);
	check_root(before, strict, to_strict[1], from_strict[0], strict_before);
	wl_check_child("kill_child", killer);
	wl_done();
}
