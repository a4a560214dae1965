/* fd_async.c: O_ASYNC descriptions with their owners (set again late, once
 * every process exists): a pipe's read end owned by this process with
 * F_SETSIG SIGUSR1, and a unix socket owned by the child (SIGIO, the
 * default). After go: F_GETOWN, F_GETSIG and O_ASYNC are as they were; a
 * write into the pipe brings SIGUSR1 here with si_fd naming its read end
 * and si_code POLL_IN; a write into the socket pair brings SIGIO to the
 * child, which exits 0 on it (1 if it has not come in 10 s). */
#include "wl.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

static volatile sig_atomic_t got_sig, got_fd, got_code;

static void on_usr1(int sig, siginfo_t *si, void *uc)
{
	(void)uc;
	got_sig = sig;
	got_fd = si->si_fd;
	got_code = si->si_code;
}

static void kid_on_sigio(int sig)
{
	(void)sig;
	_exit(0);
}

static void kid_on_alarm(int sig)
{
	(void)sig;
	_exit(1);
}

static void set_async(int fd, pid_t owner, int sig)
{
	int fl = fcntl(fd, F_GETFL);

	if (fl < 0 || fcntl(fd, F_SETOWN, owner) || (sig && fcntl(fd, F_SETSIG, sig)) ||
	    fcntl(fd, F_SETFL, fl | O_ASYNC | O_NONBLOCK))
		wl_die("O_ASYNC: %s", strerror(errno));
}

int main(void)
{
	struct sigaction sa = {.sa_sigaction = on_usr1, .sa_flags = SA_SIGINFO | SA_RESTART};
	int p[2], s[2];
	pid_t kid;

	wl_init();
	if (pipe(p) || socketpair(AF_UNIX, SOCK_STREAM, 0, s) || sigaction(SIGUSR1, &sa, NULL))
		wl_die("setup: %s", strerror(errno));
	kid = fork();
	if (kid == 0) {
		wl_on_signal(SIGIO, kid_on_sigio);
		wl_on_signal(SIGALRM, kid_on_alarm);
		wl_wait_go();
		alarm(10);
		for (;;)
			pause();
	}
	set_async(p[0], getpid(), SIGUSR1);
	set_async(s[0], kid, 0);

	wl_ready();
	wl_wait_go();

	wl_check("pipe_owner", fcntl(p[0], F_GETOWN) == getpid(), "F_GETOWN %d, expected %d",
		 fcntl(p[0], F_GETOWN), getpid());
	wl_check("pipe_sig", fcntl(p[0], F_GETSIG) == SIGUSR1, "F_GETSIG %d",
		 fcntl(p[0], F_GETSIG));
	wl_check("pipe_async", fcntl(p[0], F_GETFL) & O_ASYNC, "no O_ASYNC");
	wl_check("sk_owner", fcntl(s[0], F_GETOWN) == kid, "F_GETOWN %d, expected %d",
		 fcntl(s[0], F_GETOWN), kid);
	wl_check("sk_sig", fcntl(s[0], F_GETSIG) == 0, "F_GETSIG %d", fcntl(s[0], F_GETSIG));
	wl_check("sk_async", fcntl(s[0], F_GETFL) & O_ASYNC, "no O_ASYNC");
	if (write(p[1], "x", 1) != 1)
		wl_die("write: %s", strerror(errno));
	for (int i = 0; i < 1000 && !got_sig; i++)
		usleep(1000);
	wl_check("pipe_signal", got_sig == SIGUSR1 && got_fd == p[0] && got_code == POLL_IN,
		 "signal %d fd %d code %d, expected %d on fd %d code %d", got_sig, got_fd, got_code,
		 SIGUSR1, p[0], POLL_IN);
	if (write(s[1], "x", 1) != 1)
		wl_die("write: %s", strerror(errno));
	wl_check_child("kid_got_sigio", kid);
	wl_done();
}
