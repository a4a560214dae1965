/* clone_vm.c: not a workload of list.txt but the process test
 * bad/dump-refuses-clone-vm dumps: a kid made by clone(CLONE_VM) without
 * CLONE_THREAD, on a stack of its own, which waits (system calls only: it
 * runs in its parent's memory) for `go` and exits. The parent makes
 * `child-ready`, waits for `go` too, reaps the kid and exits 0 if it
 * exited 0: it was not harmed by the refused dump. */
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static char kid_stack[65536] __attribute__((aligned(16)));

static void wait_go(void)
{
	struct timespec t = {0, 10 * 1000 * 1000};

	while (syscall(SYS_access, "go", F_OK) != 0)
		syscall(SYS_nanosleep, &t, NULL);
}

static int kid(void *arg)
{
	(void)arg;
	wait_go();
	syscall(SYS_exit, 0);
	return 0;
}

int main(void)
{
	int status;
	pid_t pid = clone(kid, kid_stack + sizeof(kid_stack), CLONE_VM | SIGCHLD, NULL);

	if (pid < 0)
		return 2;
	close(open("child-ready", O_WRONLY | O_CREAT, 0644));
	wait_go();
	if (waitpid(pid, &status, 0) != pid)
		return 3;
	return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : 4;
}
