/* vfork_stuck.c: not a workload of list.txt but the process that test
 * bad/dump-timeout dumps: a parent held in vfork(2), which no signal
 * wakes (state D) while its child sleeps. The child makes `ready` and
 * sleeps 60 s (the test kills it sooner); the parent, once vfork returns,
 * reaps it and makes `resumed`: it was never harmed by the failed dump. */
#include <fcntl.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

int main(void)
{
	pid_t kid = vfork();

	if (kid == 0) {
		struct timespec t = {60, 0};
		/* only system calls: the child runs on the parent's stack */
		close(open("ready", O_WRONLY | O_CREAT, 0644));
		nanosleep(&t, NULL);
		_exit(0);
	}
	if (kid < 0 || waitpid(kid, NULL, 0) != kid)
		return 1;
	close(open("resumed", O_WRONLY | O_CREAT, 0644));
	return 0;
}
