/* signals.c: workload with signal handlers of distinct flags/masks/restorers, a
 * blocked mask, queued (pending) signals with siginfo and a sigaltstack; checks
 * all of it after checkpoint/restore, then delivers the pending signals. */
#include "wl.h"

#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

struct ksa {
	void *handler;
	unsigned long flags;
	void *restorer;
	uint64_t mask;
};

static struct ksa before[65];
static uint64_t blocked_before;

#define ALT_SIZE (64 * 1024)
static char *alt_mem;

/* records of deliveries */
static volatile int ev_sig[16], ev_val[16], ev_code[16], ev_pid[16], nev;
static volatile int usr2_on_alt, usr2_ss_flags, usr2_hits;
static volatile int hup_depth, hup_max, hup_hits;
static volatile int winch_hits;

static void rec(int sig, siginfo_t *si)
{
	int i = nev;

	if (i < 16) {
		ev_sig[i] = sig;
		ev_val[i] = si ? si->si_value.sival_int : -1;
		ev_code[i] = si ? si->si_code : -1;
		ev_pid[i] = si ? si->si_pid : -1;
		nev = i + 1;
	}
}

static void h_usr1(int sig, siginfo_t *si, void *uc)
{
	(void)uc;
	rec(sig, si);
}

static void h_rt1(int sig, siginfo_t *si, void *uc)
{
	(void)uc;
	rec(sig, si);
}

static void h_usr2(int sig, siginfo_t *si, void *uc)
{
	char here;
	stack_t ss;

	(void)sig;
	(void)si;
	(void)uc;
	usr2_hits++;
	usr2_on_alt = &here >= alt_mem && &here < alt_mem + ALT_SIZE;
	if (sigaltstack(NULL, &ss) == 0)
		usr2_ss_flags = ss.ss_flags;
}

static void h_hup(int sig)
{
	hup_hits++;
	hup_depth++;
	if (hup_depth > hup_max)
		hup_max = hup_depth;
	if (hup_hits == 1)
		raise(sig); /* SA_NODEFER: delivered at once, nested */
	hup_depth--;
}

static void h_winch(int sig, siginfo_t *si, void *uc)
{
	(void)sig;
	(void)si;
	(void)uc;
	winch_hits++;
}

static void get_ksa(int sig, struct ksa *k)
{
	memset(k, 0, sizeof(*k));
	if (syscall(SYS_rt_sigaction, sig, NULL, k, 8))
		memset(k, 0xff, sizeof(*k));
}

static uint64_t get_blocked(void)
{
	uint64_t m = 0;

	syscall(SYS_rt_sigprocmask, SIG_BLOCK, NULL, &m, 8);
	return m;
}

static uint64_t bit(int sig)
{
	return 1ULL << (sig - 1);
}

static void set(int sig, void *h, int flags, int siginfo, const int *maskv)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	if (siginfo)
		sa.sa_sigaction = h;
	else
		sa.sa_handler = h;
	sa.sa_flags = flags | (siginfo ? SA_SIGINFO : 0);
	sigemptyset(&sa.sa_mask);
	for (; maskv && *maskv; maskv++)
		sigaddset(&sa.sa_mask, *maskv);
	if (sigaction(sig, &sa, NULL))
		wl_die("sigaction %d: %s", sig, strerror(errno));
}

/* SigPnd / ShdPnd from /proc/self/status */
static void proc_pending(uint64_t *priv, uint64_t *shd)
{
	FILE *f = fopen("/proc/self/status", "r");
	char line[256];

	*priv = *shd = ~0ULL;
	if (!f)
		return;
	while (fgets(line, sizeof(line), f)) {
		if (!strncmp(line, "SigPnd:", 7))
			*priv = strtoull(line + 7, NULL, 16);
		else if (!strncmp(line, "ShdPnd:", 7))
			*shd = strtoull(line + 7, NULL, 16);
	}
	fclose(f);
}

int main(void)
{
	int rt1 = SIGRTMIN + 1, sig, i, pid;
	int m_usr1[] = {SIGINT, 0, 0}, m_usr2[] = {SIGTERM, 0, 0}, m_none[] = {0};
	sigset_t bl, pend;
	stack_t ss, ss2;
	union sigval v;
	uint64_t priv, shd;

	wl_init();
	m_usr1[1] = rt1; /* keeps the queued RT signals out of the SIGUSR1 handler */
	m_usr2[1] = SIGRTMIN + 3;
	set(SIGUSR1, h_usr1, SA_RESTART, 1, m_usr1);
	set(SIGUSR2, h_usr2, SA_ONSTACK, 1, m_usr2);
	set(SIGHUP, h_hup, SA_NODEFER, 0, m_none);
	set(SIGWINCH, h_winch, SA_RESETHAND, 1, m_none);
	set(rt1, h_rt1, 0, 1, m_none);
	set(SIGPIPE, SIG_IGN, 0, 0, m_none);
	set(SIGQUIT, SIG_DFL, 0, 0, m_none);

	alt_mem = malloc(ALT_SIZE);
	memset(alt_mem, 0x5a, ALT_SIZE);
	ss.ss_sp = alt_mem;
	ss.ss_size = ALT_SIZE;
	ss.ss_flags = 0;
	if (sigaltstack(&ss, NULL))
		wl_die("sigaltstack: %s", strerror(errno));

	sigemptyset(&bl);
	sigaddset(&bl, SIGUSR1);
	sigaddset(&bl, rt1);
	sigaddset(&bl, SIGTERM);
	sigaddset(&bl, SIGRTMAX);
	sigprocmask(SIG_BLOCK, &bl, NULL);

	raise(SIGUSR1); /* thread-directed, pending */
	v.sival_int = 111;
	sigqueue(getpid(), rt1, v); /* process-directed, queued twice */
	v.sival_int = 222;
	sigqueue(getpid(), rt1, v);

	for (sig = 1; sig <= 64; sig++)
		get_ksa(sig, &before[sig]);
	blocked_before = get_blocked();
	pid = getpid();

	wl_ready();
	wl_wait_go();

	/* dispositions, flags, restorers, masks: all 64 */
	for (sig = 1; sig <= 64; sig++) {
		struct ksa now;
		char name[32];

		get_ksa(sig, &now);
		snprintf(name, sizeof(name), "sigaction_%d", sig);
		wl_check(
		    name, memcmp(&now, &before[sig], sizeof(now)) == 0,
		    "handler %p/%p flags %#lx/%#lx restorer %p/%p mask %#llx/%#llx (now/before)",
		    now.handler, before[sig].handler, now.flags, before[sig].flags, now.restorer,
		    before[sig].restorer, (unsigned long long)now.mask,
		    (unsigned long long)before[sig].mask);
	}
	{
		uint64_t b = get_blocked();
		wl_check("blocked_mask", b == blocked_before, "blocked %#llx, expected %#llx",
			 (unsigned long long)b, (unsigned long long)blocked_before);
	}

	/* sigaltstack */
	memset(&ss2, 0, sizeof(ss2));
	sigaltstack(NULL, &ss2);
	wl_check("sigaltstack",
		 ss2.ss_sp == alt_mem && ss2.ss_size == ALT_SIZE && ss2.ss_flags == 0,
		 "sp %p size %zu flags %d; expected %p %d 0", ss2.ss_sp, ss2.ss_size, ss2.ss_flags,
		 alt_mem, ALT_SIZE);

	/* pending set */
	sigemptyset(&pend);
	sigpending(&pend);
	{
		int ok = 1;
		for (sig = 1; sig <= 64; sig++) {
			int want = sig == SIGUSR1 || sig == rt1;
			if (sigismember(&pend, sig) != want)
				ok = 0;
		}
		wl_check("sigpending", ok, "usr1 %d rt1 %d (others must be 0)",
			 sigismember(&pend, SIGUSR1), sigismember(&pend, rt1));
	}
	proc_pending(&priv, &shd);
	wl_check("pending_private", priv == bit(SIGUSR1), "SigPnd %#llx, expected %#llx",
		 (unsigned long long)priv, (unsigned long long)bit(SIGUSR1));
	wl_check("pending_shared", shd == bit(rt1), "ShdPnd %#llx, expected %#llx",
		 (unsigned long long)shd, (unsigned long long)bit(rt1));
	wl_check("no_delivery_yet", nev == 0, "%d signals delivered while blocked", nev);

	/* deliver: SIGUSR1 first (its handler blocks rt1), then rt1 111, 222 */
	sigprocmask(SIG_UNBLOCK, &bl, NULL);
	wl_check("delivered_count", nev == 3, "%d deliveries, expected 3", nev);
	wl_check("delivered_usr1",
		 nev >= 1 && ev_sig[0] == SIGUSR1 && ev_code[0] == SI_TKILL && ev_pid[0] == pid,
		 "first: sig %d code %d pid %d", ev_sig[0], ev_code[0], ev_pid[0]);
	for (i = 1; i <= 2; i++) {
		char name[32];
		snprintf(name, sizeof(name), "delivered_rt1_%d", i);
		wl_check(name,
			 nev > i && ev_sig[i] == rt1 && ev_val[i] == 111 * i &&
			     ev_code[i] == SI_QUEUE && ev_pid[i] == pid,
			 "sig %d value %d code %d pid %d; expected %d %d %d %d", ev_sig[i],
			 ev_val[i], ev_code[i], ev_pid[i], rt1, 111 * i, SI_QUEUE, pid);
	}
	sigpending(&pend);
	wl_check("nothing_pending", !sigismember(&pend, SIGUSR1) && !sigismember(&pend, rt1),
		 "still pending");

	/* SA_ONSTACK handler runs on the alternate stack */
	raise(SIGUSR2);
	wl_check("onstack_ran", usr2_hits == 1, "SIGUSR2 handler ran %d times", usr2_hits);
	wl_check("onstack_on_alt", usr2_on_alt && (usr2_ss_flags & SS_ONSTACK),
		 "on alt stack %d, ss_flags %#x", usr2_on_alt, usr2_ss_flags);

	/* SA_NODEFER: nested delivery */
	raise(SIGHUP);
	wl_check("nodefer", hup_hits == 2 && hup_max == 2, "hits %d max depth %d", hup_hits,
		 hup_max);

	/* SA_RESETHAND: runs once, then back to SIG_DFL */
	raise(SIGWINCH);
	{
		struct ksa k;
		get_ksa(SIGWINCH, &k);
		wl_check("resethand", winch_hits == 1 && k.handler == SIG_DFL,
			 "hits %d handler now %p", winch_hits, k.handler);
	}

	/* SIG_IGN for SIGPIPE */
	{
		int p[2];
		ssize_t r;
		if (pipe(p) == 0) {
			close(p[0]);
			errno = 0;
			r = write(p[1], "x", 1);
			wl_check("sigpipe_ignored", r < 0 && errno == EPIPE, "write %zd errno %d",
				 r, errno);
			close(p[1]);
		}
	}
	wl_done();
}
