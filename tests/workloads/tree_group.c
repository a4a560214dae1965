/* tree_group.c: a process group whose leader has exited. The root is a
 * child subreaper; child E makes its own group, forks F into it and exits;
 * the root reaps E and inherits F, alone in group E. After `go` F must still
 * be in group E (the restore makes the group with a helper that has E's
 * pid), with the root as its parent, and E's pid must be free again. */
#include "wl.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

int main(void)
{
	struct timespec tick = {0, 1000 * 1000};
	pid_t root, e, f = 0;
	int p[2], st;

	wl_init();
	root = getpid();
	prctl(PR_SET_CHILD_SUBREAPER, 1);
	if (pipe(p))
		wl_die("pipe: %s", strerror(errno));
	e = fork();
	if (e == 0) {
		setpgid(0, 0);
		pid_t leader = getpid(), child = fork();
		if (child == 0) {
			close(p[0]);
			close(p[1]);
			wl_wait_go();
			_exit(getpgid(0) == leader && getppid() == root ? 0 : 1);
		}
		if (write(p[1], &child, sizeof(child)) != sizeof(child))
			_exit(3);
		_exit(0);
	}
	close(p[1]);
	if (read(p[0], &f, sizeof(f)) != sizeof(f))
		wl_die("E did not report F");
	close(p[0]);
	if (waitpid(e, &st, 0) != e)
		wl_die("waitpid E: %s", strerror(errno));
	/* F is ours once E is gone */
	for (int i = 0; i < 5000; i++) {
		char path[64];
		FILE *fp;
		pid_t ppid = 0;
		snprintf(path, sizeof(path), "/proc/%d/stat", f);
		fp = fopen(path, "r");
		if (fp && fscanf(fp, "%*d %*s %*c %d", &ppid) == 1 && ppid == root) {
			fclose(fp);
			break;
		}
		if (fp)
			fclose(fp);
		nanosleep(&tick, NULL);
	}
	wl_ready();
	wl_wait_go();
	wl_check("group_of_f", getpgid(f) == e, "F's group is %d, want %d", getpgid(f), e);
	wl_check("leader_gone", kill(e, 0) < 0 && errno == ESRCH, "pid %d exists", e);
	wl_check_child("f_done", f);
	wl_check("no_more_children", waitpid(-1, &st, WNOHANG) < 0 && errno == ECHILD,
		 "an unexpected child");
	wl_done();
}
