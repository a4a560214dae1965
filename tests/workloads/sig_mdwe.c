/* sig_mdwe.c: a process under memory-deny-write-execute
 * (PR_SET_MDWE, PR_MDWE_REFUSE_EXEC_GAIN), which cryo must set again at
 * the very end of the restore (once set, no mapping may gain PROT_EXEC;
 * cryo's own code page is mapped executable from the start, which MDWE
 * allows, so the dump works as usual). Set up: handlers
 * for SIGUSR1 (SA_SIGINFO|SA_RESTART, SIGUSR2 blocked during it) and
 * SIGTERM (SA_RESETHAND), SIGUSR2 ignored, SIGCHLD default with
 * SA_NOCLDSTOP, and a memory pattern. After `go`: the MDWE flags read back
 * the same, a writable executable mapping and mprotect adding PROT_EXEC are
 * still refused, every action is as
 * set (read with rt_sigaction), SIGUSR1 runs its handler, and the pattern
 * holds. */
#include "wl.h"

#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#ifndef PR_SET_MDWE
#define PR_SET_MDWE		 65
#define PR_GET_MDWE		 66
#define PR_MDWE_REFUSE_EXEC_GAIN 1
#endif

#define MEM_LEN (1 << 20)

struct ksa {
	uint64_t handler, flags, restorer, mask;
};

static volatile sig_atomic_t n_usr1;

static void h_usr1(int sig, siginfo_t *si, void *uc)
{
	(void)sig;
	(void)si;
	(void)uc;
	n_usr1++;
}

static void h_term(int sig)
{
	(void)sig;
}

static void set_action(int sig, void *handler, int flags, int blocked)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_sigaction = handler;
	sa.sa_flags = flags;
	sigemptyset(&sa.sa_mask);
	if (blocked)
		sigaddset(&sa.sa_mask, blocked);
	if (sigaction(sig, &sa, NULL))
		wl_die("sigaction %d: %s", sig, strerror(errno));
}

static void read_action(int sig, struct ksa *k)
{
	if (syscall(SYS_rt_sigaction, sig, NULL, k, 8))
		wl_die("rt_sigaction %d: %s", sig, strerror(errno));
}

int main(void)
{
	static const int sigs[] = {SIGUSR1, SIGUSR2, SIGTERM, SIGCHLD};
	struct ksa before[4], after[4];
	unsigned char *mem;
	long mdwe;
	void *x;

	wl_init();
	if (prctl(PR_SET_MDWE, PR_MDWE_REFUSE_EXEC_GAIN, 0, 0, 0)) {
		wl_not_covered("mdwe", "PR_SET_MDWE: %s", strerror(errno));
		wl_ready();
		wl_wait_go();
		wl_done();
	}
	set_action(SIGUSR1, h_usr1, SA_SIGINFO | SA_RESTART, SIGUSR2);
	set_action(SIGTERM, (void *)h_term, SA_RESETHAND, 0);
	set_action(SIGUSR2, (void *)SIG_IGN, 0, 0);
	set_action(SIGCHLD, (void *)SIG_DFL, SA_NOCLDSTOP, 0);
	for (int i = 0; i < 4; i++)
		read_action(sigs[i], &before[i]);
	mem = mmap(NULL, MEM_LEN, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (mem == MAP_FAILED)
		wl_die("mmap: %s", strerror(errno));
	wl_fill(mem, MEM_LEN, 31);
	wl_ready();
	wl_wait_go();
	mdwe = prctl(PR_GET_MDWE, 0, 0, 0, 0);
	wl_check("mdwe_flags", mdwe == PR_MDWE_REFUSE_EXEC_GAIN, "PR_GET_MDWE %ld, expected %d",
		 mdwe, PR_MDWE_REFUSE_EXEC_GAIN);
	x = mmap(NULL, 4096, PROT_READ | PROT_WRITE | PROT_EXEC, MAP_PRIVATE | MAP_ANONYMOUS, -1,
		 0);
	wl_check("mdwe_refuses_wx", x == MAP_FAILED, "a writable executable mapping was made at %p",
		 x);
	wl_check("mdwe_refuses_exec_gain", mprotect(mem, 4096, PROT_READ | PROT_EXEC) != 0,
		 "mprotect made the memory executable");
	for (int i = 0; i < 4; i++) {
		read_action(sigs[i], &after[i]);
		wl_check(
		    "sigaction", !memcmp(&before[i], &after[i], sizeof(before[i])),
		    "signal %d: handler %#llx flags %#llx mask %#llx, expected %#llx %#llx %#llx",
		    sigs[i], (unsigned long long)after[i].handler,
		    (unsigned long long)after[i].flags, (unsigned long long)after[i].mask,
		    (unsigned long long)before[i].handler, (unsigned long long)before[i].flags,
		    (unsigned long long)before[i].mask);
	}
	raise(SIGUSR1);
	wl_check("usr1_handler", n_usr1 == 1, "the SIGUSR1 handler ran %d times", (int)n_usr1);
	wl_check_pattern("memory", mem, MEM_LEN, 31);
	wl_done();
}
