/* fd_signalfd.c: workload with two signalfds (non-blocking for SIGUSR1 and SIGRTMIN+1,
 * blocking close-on-exec for SIGUSR2, with a SIGUSR2 already pending); checks their
 * masks, flags, and that signals sent after restore reach the right one. */
#include "wl.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <unistd.h>

/* The signal mask of signalfd FD from its fdinfo (all ones if missing). */
static unsigned long long fdinfo_mask(int fd)
{
	return (unsigned long long)wl_fdinfo_num(fd, "sigmask:", 16);
}

/* One siginfo from fd, or ssi_signo 0 with errno. */
static struct signalfd_siginfo get(int fd)
{
	struct signalfd_siginfo si;

	memset(&si, 0, sizeof(si));
	if (read(fd, &si, sizeof(si)) != sizeof(si))
		si.ssi_signo = 0;
	return si;
}

int main(void)
{
	sigset_t blk, m1, m2;
	int s1, s2;
	unsigned long long want1, want2;
	struct signalfd_siginfo si;

	wl_init();
	sigemptyset(&blk);
	sigaddset(&blk, SIGUSR1);
	sigaddset(&blk, SIGUSR2);
	sigaddset(&blk, SIGRTMIN + 1);
	if (sigprocmask(SIG_BLOCK, &blk, NULL))
		wl_die("sigprocmask: %s", strerror(errno));
	sigemptyset(&m1);
	sigaddset(&m1, SIGUSR1);
	sigaddset(&m1, SIGRTMIN + 1);
	sigemptyset(&m2);
	sigaddset(&m2, SIGUSR2);
	s1 = signalfd(-1, &m1, SFD_NONBLOCK);
	s2 = signalfd(-1, &m2, SFD_CLOEXEC);
	if (s1 < 0 || s2 < 0)
		wl_die("signalfd: %s", strerror(errno));
	want1 = (1ULL << (SIGUSR1 - 1)) | (1ULL << (SIGRTMIN + 1 - 1));
	want2 = 1ULL << (SIGUSR2 - 1);
	kill(getpid(), SIGUSR2); /* stays pending until read after restore */

	wl_ready();
	wl_wait_go();

	wl_check_fd_flags("s1", s1, O_RDWR | O_NONBLOCK, 0);
	wl_check_fd_flags("s2", s2, O_RDWR, FD_CLOEXEC);
	wl_check("s1_mask", fdinfo_mask(s1) == want1, "sigmask %#llx, want %#llx", fdinfo_mask(s1),
		 want1);
	wl_check("s2_mask", fdinfo_mask(s2) == want2, "sigmask %#llx, want %#llx", fdinfo_mask(s2),
		 want2);
	wl_check("s1_idle", wl_revents(s1, POLLIN) == 0, "s1 readable before any signal");

	/* the SIGUSR2 sent before the checkpoint */
	wl_check("s2_pending", wl_revents(s2, POLLIN) > 0, "s2 not readable: pending SIGUSR2 lost");
	si = get(s2);
	wl_check("s2_pending_read", si.ssi_signo == SIGUSR2, "read signo %u", si.ssi_signo);

	kill(getpid(), SIGUSR1);
	si = get(s1);
	wl_check("s1_usr1", si.ssi_signo == SIGUSR1 && si.ssi_pid == (unsigned)getpid(),
		 "read signo %u pid %u", si.ssi_signo, si.ssi_pid);
	{
		union sigval v = {.sival_int = 42};
		sigqueue(getpid(), SIGRTMIN + 1, v);
	}
	si = get(s1);
	wl_check("s1_rt", si.ssi_signo == (unsigned)SIGRTMIN + 1 && si.ssi_int == 42,
		 "read signo %u int %d", si.ssi_signo, si.ssi_int);
	errno = 0;
	si = get(s1);
	wl_check("s1_eagain", si.ssi_signo == 0 && errno == EAGAIN, "read signo %u errno %d",
		 si.ssi_signo, errno);

	kill(getpid(), SIGUSR2);
	wl_check("s1_not_usr2", wl_revents(s1, POLLIN) == 0, "s1 got SIGUSR2, not in its mask");
	si = get(s2);
	wl_check("s2_usr2", si.ssi_signo == SIGUSR2, "read signo %u", si.ssi_signo);
	wl_done();
}
