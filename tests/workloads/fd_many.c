/* fd_many.c: thousands of fds (cryo once took 40 s to dump 7000 and 33 s to
 * restore them): 1000 pipes with a byte in flight each, 1000 opens of
 * /dev/null, 500 fds sharing one description of a file and 500 separate
 * descriptions of the same file, each at its own offset. After `go`: each
 * pipe still holds its byte and carries another, each separate description
 * is at its own offset, and the shared ones move together. */
#include "wl.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#define PIPES 1000
#define NULLS 1000
#define DUPS  500
#define OPENS 500

static int pipes[PIPES][2], nulls[NULLS], dups[DUPS], opens[OPENS];

int main(void)
{
	struct rlimit rl;
	int bad = 0, first_bad = -1;
	char c;

	wl_init();
	getrlimit(RLIMIT_NOFILE, &rl);
	rl.rlim_cur = rl.rlim_max < 8192 ? rl.rlim_max : 8192;
	if (setrlimit(RLIMIT_NOFILE, &rl) || rl.rlim_cur < PIPES * 2 + NULLS + DUPS + OPENS + 16)
		wl_die("RLIMIT_NOFILE %llu is too low", (unsigned long long)rl.rlim_cur);
	wl_mkfile("data", "0123456789abcdefghijklmnopqrstuvwxyz", 36, 0644);
	for (int i = 0; i < PIPES; i++) {
		c = (char)i;
		if (pipe(pipes[i]) || write(pipes[i][1], &c, 1) != 1)
			wl_die("pipe %d: %s", i, strerror(errno));
	}
	for (int i = 0; i < NULLS; i++)
		if ((nulls[i] = open("/dev/null", O_RDWR)) < 0)
			wl_die("open /dev/null: %s", strerror(errno));
	dups[0] = open("data", O_RDONLY);
	for (int i = 1; i < DUPS; i++)
		dups[i] = dup(dups[0]);
	lseek(dups[0], 5, SEEK_SET);
	for (int i = 0; i < OPENS; i++)
		if ((opens[i] = open("data", O_RDONLY)) < 0 ||
		    lseek(opens[i], i % 36, SEEK_SET) < 0)
			wl_die("open data: %s", strerror(errno));
	wl_ready();
	wl_wait_go();

	for (int i = 0; i < PIPES; i++) {
		char got = 0, again = 0;
		c = (char)(i + 1);
		if (wl_revents(pipes[i][0], POLLIN) <= 0 || read(pipes[i][0], &got, 1) != 1 ||
		    got != (char)i || write(pipes[i][1], &c, 1) != 1 ||
		    read(pipes[i][0], &again, 1) != 1 || again != c) {
			bad++;
			if (first_bad < 0)
				first_bad = i;
		}
	}
	wl_check("pipes", !bad, "%d pipes lost their byte or do not carry one, first %d", bad,
		 first_bad);
	bad = 0;
	for (int i = 0; i < NULLS; i++) {
		char link[64];
		wl_fd_link(nulls[i], link, sizeof(link));
		bad += strcmp(link, "/dev/null") != 0;
	}
	wl_check("devnull", !bad, "%d fds are not /dev/null", bad);
	bad = 0;
	for (int i = 0; i < OPENS; i++)
		bad += lseek(opens[i], 0, SEEK_CUR) != i % 36;
	wl_check("separate_offsets", !bad, "%d descriptions lost their offset", bad);
	c = 0;
	wl_check("shared_read", read(dups[DUPS - 1], &c, 1) == 1 && c == '5', "read '%c'", c);
	wl_check("shared_offset",
		 lseek(dups[0], 0, SEEK_CUR) == 6 && lseek(dups[DUPS / 2], 0, SEEK_CUR) == 6,
		 "offsets %lld and %lld, want 6", (long long)lseek(dups[0], 0, SEEK_CUR),
		 (long long)lseek(dups[DUPS / 2], 0, SEEK_CUR));
	wl_done();
}
