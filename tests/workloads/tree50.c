/* tree50.c: fifty processes: the root, 7 children and 6 grandchildren under
 * each. Every process holds the write end of one pipe, whose read end only
 * the root holds (one description shared by 50 processes). After `go` each
 * grandchild writes its number into the pipe and exits with it; each child
 * checks its children's statuses and exits 0 if all were right; the root
 * checks the children and that every grandchild's record arrived once. */
#include "wl.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define KIDS	  7
#define GRANDKIDS 6

static void grandchild(int wfd, int n)
{
	pid_t parent = getppid();

	wl_wait_go();
	if (write(wfd, &n, sizeof(n)) != sizeof(n))
		_exit(100);
	_exit(getppid() == parent ? n % 100 : 101);
}

static void child(int wfd, int k)
{
	pid_t kids[GRANDKIDS];
	int bad = 0;

	for (int g = 0; g < GRANDKIDS; g++) {
		kids[g] = fork();
		if (kids[g] == 0)
			grandchild(wfd, k * GRANDKIDS + g);
	}
	close(wfd);
	wl_wait_go();
	for (int g = 0; g < GRANDKIDS; g++) {
		int st;
		if (waitpid(kids[g], &st, 0) != kids[g] || !WIFEXITED(st) ||
		    WEXITSTATUS(st) != (k * GRANDKIDS + g) % 100)
			bad++;
	}
	_exit(bad);
}

int main(void)
{
	int p[2], seen[KIDS * GRANDKIDS] = {0}, n, got = 0, dup_or_bad = 0;
	pid_t kids[KIDS];
	int waiting = 0;

	wl_init();
	if (pipe(p))
		wl_die("pipe: %s", strerror(errno));
	for (int k = 0; k < KIDS; k++) {
		kids[k] = fork();
		if (kids[k] == 0) {
			close(p[0]);
			child(p[1], k);
		}
	}
	close(p[1]);
	/* all 49 descendants must exist before ready */
	for (int tries = 0; tries < 5000; tries++) {
		char cmd[64];
		FILE *f;
		snprintf(cmd, sizeof(cmd), "/proc/%d/task/%d/children", getpid(), getpid());
		waiting = 0;
		for (int k = 0; k < KIDS; k++) {
			snprintf(cmd, sizeof(cmd), "/proc/%d/task/%d/children", kids[k], kids[k]);
			f = fopen(cmd, "r");
			if (!f)
				continue;
			int c;
			while (fscanf(f, "%d", &c) == 1)
				waiting++;
			fclose(f);
		}
		if (waiting == KIDS * GRANDKIDS)
			break;
		usleep(1000);
	}
	wl_check("setup", waiting == KIDS * GRANDKIDS, "%d grandchildren", waiting);
	wl_ready();
	wl_wait_go();
	while (read(p[0], &n, sizeof(n)) == sizeof(n)) {
		if (n < 0 || n >= KIDS * GRANDKIDS || seen[n]++)
			dup_or_bad++;
		got++;
	}
	wl_check("pipe_records", got == KIDS * GRANDKIDS && !dup_or_bad,
		 "%d records (want %d), %d duplicate or bad", got, KIDS * GRANDKIDS, dup_or_bad);
	for (int k = 0; k < KIDS; k++) {
		char name[32];
		snprintf(name, sizeof(name), "child%d", k);
		wl_check_child(name, kids[k]);
	}
	wl_done();
}
