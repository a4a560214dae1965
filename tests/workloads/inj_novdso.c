/* inj_novdso.c: processes without a vDSO, which cryo cannot borrow a
 * `syscall` instruction from. The root unmaps its [vdso], [vvar] and
 * [vvar_vclock] (as with vdso=0), a forked child only its [vdso]. Each sets
 * up a memory pattern, a signal handler and interval timers; after the
 * checkpoint each checks them, and that cryo left nothing behind: its
 * /proc/self/maps reads the same (no scratch or code page of cryo's stays
 * mapped, no vDSO came back) and so do the bytes of every executable mapping
 * (no syscall instruction poked into the code stayed there).
 *
 * Once the vDSO is gone, glibc's clock_gettime, gettimeofday and time would
 * jump into it: time is read with raw syscalls only. */
#include "wl.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/auxv.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#define MAPS_MAX (256 * 1024)
#define MEM_LEN	 (4 << 20)

struct ksa {
	uint64_t handler, flags, restorer, mask;
};

static char maps_before[MAPS_MAX], maps_after[MAPS_MAX];
static volatile sig_atomic_t n_usr1, n_alrm, usr1_code;

static void h_usr1(int sig, siginfo_t *si, void *uc)
{
	(void)sig;
	(void)uc;
	n_usr1++;
	usr1_code = si->si_code;
}

static void h_alrm(int sig)
{
	(void)sig;
	n_alrm++;
}

static double raw_now(void)
{
	struct timespec ts;

	syscall(SYS_clock_gettime, CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void read_maps(char *buf)
{
	int fd = open("/proc/self/maps", O_RDONLY | O_CLOEXEC);
	ssize_t n, got = 0;

	if (fd < 0)
		wl_die("open /proc/self/maps: %s", strerror(errno));
	while (got < MAPS_MAX - 1 && (n = read(fd, buf + got, MAPS_MAX - 1 - got)) > 0)
		got += n;
	close(fd);
	buf[got] = '\0';
}

static bool has_map(const char *maps, const char *name)
{
	char want[32];

	snprintf(want, sizeof(want), " %s\n", name);
	return strstr(maps, want) != NULL;
}

/* Unmaps the mappings named in names[] (a NULL-ended list). */
static void unmap_named(const char *const *names)
{
	char *line, *save = NULL;
	static char maps[MAPS_MAX];

	read_maps(maps);
	for (line = strtok_r(maps, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		unsigned long start, end;
		const char *name = strrchr(line, ' ') + 1;
		if (sscanf(line, "%lx-%lx", &start, &end) != 2)
			continue;
		for (const char *const *n = names; *n; n++)
			if (!strcmp(name, *n) && munmap((void *)start, end - start))
				wl_die("munmap %s: %s", name, strerror(errno));
	}
}

/* FNV-1a over the bytes of every executable mapping but [vsyscall] (read
 * through /proc/self/mem, which reads even execute-only memory). */
static uint64_t code_hash(const char *maps)
{
	static char copy[MAPS_MAX];
	static unsigned char buf[65536];
	char *line, *save = NULL;
	uint64_t h = 1469598103934665603ULL;
	int fd = open("/proc/self/mem", O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		wl_die("open /proc/self/mem: %s", strerror(errno));
	strcpy(copy, maps);
	for (line = strtok_r(copy, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		unsigned long start, end;
		char perms[8];
		if (sscanf(line, "%lx-%lx %7s", &start, &end, perms) != 3 || perms[2] != 'x' ||
		    strstr(line, "[vsyscall]"))
			continue;
		for (unsigned long a = start; a < end; a += sizeof(buf)) {
			size_t len = end - a < sizeof(buf) ? end - a : sizeof(buf);
			if (pread(fd, buf, len, a) != (ssize_t)len)
				wl_die("reading code at 0x%lx: %s", a, strerror(errno));
			for (size_t i = 0; i < len; i++)
				h = (h ^ buf[i]) * 1099511628211ULL;
		}
	}
	close(fd);
	return h;
}

static void get_ksa(int sig, struct ksa *k)
{
	memset(k, 0, sizeof(*k));
	if (syscall(SYS_rt_sigaction, sig, NULL, k, 8))
		memset(k, 0xff, sizeof(*k));
}

static void setup_signals(void)
{
	struct sigaction sa;
	struct itimerval r = {{0, 100 * 1000}, {0, 100 * 1000}};
	struct itimerval v = {{100, 0}, {50, 0}};

	memset(&sa, 0, sizeof(sa));
	sa.sa_sigaction = h_usr1;
	sa.sa_flags = SA_SIGINFO | SA_RESTART;
	sigemptyset(&sa.sa_mask);
	sigaddset(&sa.sa_mask, SIGUSR2);
	if (sigaction(SIGUSR1, &sa, NULL))
		wl_die("sigaction: %s", strerror(errno));
	wl_on_signal(SIGALRM, h_alrm);
	if (setitimer(ITIMER_VIRTUAL, &v, NULL) || setitimer(ITIMER_REAL, &r, NULL))
		wl_die("setitimer: %s", strerror(errno));
}

static void check_signals(const struct ksa *usr1_before)
{
	struct ksa now;
	struct itimerval v;
	double t0 = raw_now();
	int alrm0 = n_alrm;

	get_ksa(SIGUSR1, &now);
	wl_check("handler", !memcmp(&now, usr1_before, sizeof(now)),
		 "SIGUSR1: handler 0x%llx flags 0x%llx mask 0x%llx, was 0x%llx 0x%llx 0x%llx",
		 (unsigned long long)now.handler, (unsigned long long)now.flags,
		 (unsigned long long)now.mask, (unsigned long long)usr1_before->handler,
		 (unsigned long long)usr1_before->flags, (unsigned long long)usr1_before->mask);
	raise(SIGUSR1);
	wl_check("handler_runs", n_usr1 == 1 && usr1_code == SI_TKILL,
		 "SIGUSR1 handled %d times (code %d)", (int)n_usr1, (int)usr1_code);
	getitimer(ITIMER_VIRTUAL, &v);
	wl_check("itimer_virtual", v.it_value.tv_sec > 40 && v.it_interval.tv_sec == 100,
		 "remaining %ld s, interval %ld s", (long)v.it_value.tv_sec,
		 (long)v.it_interval.tv_sec);
	while (n_alrm < alrm0 + 3 && raw_now() - t0 < 3) {
		struct timespec ts = {0, 5 * 1000 * 1000};
		nanosleep(&ts, NULL);
	}
	wl_check("itimer_real_fires", n_alrm >= alrm0 + 3, "%d SIGALRM in %.2f s",
		 (int)(n_alrm - alrm0), raw_now() - t0);
}

/* The part both processes run: set up, wait for the checkpoint, check. The
 * child tells the root on fd `set` when it is set up; the root waits for
 * that on fd `set` before it is ready. */
static void run(const char *const *unmap, int seed, bool keep_vvar, int set)
{
	char byte = 1;
	unsigned char *mem;
	uint64_t hash;
	struct ksa usr1;

	unmap_named(unmap);
	mem = mmap(NULL, MEM_LEN, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (mem == MAP_FAILED)
		wl_die("mmap: %s", strerror(errno));
	wl_fill(mem, MEM_LEN, seed);
	setup_signals();
	get_ksa(SIGUSR1, &usr1);
	read_maps(maps_before);
	if (has_map(maps_before, "[vdso]"))
		wl_die("[vdso] is still mapped");
	hash = code_hash(maps_before);

	if (seed == 1 ? read(set, &byte, 1) != 1 : write(set, &byte, 1) != 1)
		wl_die("the child did not get set up");
	if (seed == 1)
		wl_ready();
	wl_wait_go();

	read_maps(maps_after);
	wl_check("maps_same", !strcmp(maps_before, maps_after),
		 "/proc/self/maps changed: before:\n%s\nafter:\n%s", maps_before, maps_after);
	wl_check("no_vdso", !has_map(maps_after, "[vdso]"), "a [vdso] is mapped again");
	wl_check("vvar", has_map(maps_after, "[vvar]") == keep_vvar, "[vvar] %s",
		 keep_vvar ? "is gone" : "is mapped again");
	wl_check("code_same", code_hash(maps_after) == hash,
		 "the bytes of an executable mapping changed");
	wl_check_pattern("memory", mem, MEM_LEN, seed);
	check_signals(&usr1);
}

int main(void)
{
	static const char *const all[] = {"[vdso]", "[vvar]", "[vvar_vclock]", NULL};
	static const char *const vdso_only[] = {"[vdso]", NULL};
	pid_t kid;
	int p[2];

	wl_init();
	if (pipe(p))
		wl_die("pipe: %s", strerror(errno));
	if (!getauxval(AT_SYSINFO_EHDR))
		wl_die("no vDSO to begin with");
	kid = fork();
	if (kid < 0)
		wl_die("fork: %s", strerror(errno));
	if (kid == 0) {
		close(p[0]);
		run(vdso_only, 2, true, p[1]);
		wl_done();
	}
	close(p[1]);
	run(all, 1, false, p[0]);
	wl_check_child("child", kid);
	wl_done();
}
