/*
 * cowtree: a benchmark workload for cryo's process-tree dump. The root
 * allocates N MiB (argv[1], default 256) of anonymous private memory, writes
 * a non-zero pattern into every page, then forks C children (argv[2],
 * default 19, so C+1 processes). The pages are shared copy-on-write after
 * the fork; each child then writes into a few pages of its own (16), so a
 * checkpoint that saves shared pages once stays close to N MiB. Each child
 * reports through a pipe that it has done so (the pipe is closed again
 * before `ready`); once all have, the root creates the file `ready` in its
 * cwd. Then every process sleeps forever in nanosleep. stdout and stderr
 * should be regular files or /dev/null.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#define CHILD_PAGES 16

static long parse(const char *s, const char *what, long max)
{
	char *end;
	errno = 0;
	long v = strtol(s, &end, 10);
	if (errno || *end || end == s || v < 0 || v > max) {
		fprintf(stderr, "cowtree: bad %s '%s'\n", what, s);
		exit(2);
	}
	return v;
}

static void sleep_forever(void)
{
	for (;;) {
		struct timespec ts = {.tv_sec = 3600, .tv_nsec = 0};
		nanosleep(&ts, NULL);
	}
}

int main(int argc, char **argv)
{
	long mib = argc > 1 ? parse(argv[1], "size (MiB)", 1L << 20) : 256;
	long children = argc > 2 ? parse(argv[2], "child count", 4000) : 19;
	if (mib == 0) {
		fprintf(stderr, "cowtree: size must be positive\n");
		return 2;
	}

	size_t len = (size_t)mib << 20;
	size_t page = (size_t)sysconf(_SC_PAGESIZE);
	size_t npages = len / page;
	unsigned char *mem =
	    mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (mem == MAP_FAILED) {
		perror("cowtree: mmap");
		return 1;
	}

	/* A pattern that differs per page and is never all zero. */
	for (size_t pg = 0; pg < npages; pg++) {
		uint64_t *p = (uint64_t *)(mem + pg * page);
		uint64_t v = 0x9e3779b97f4a7c15ull ^ pg;
		for (size_t i = 0; i < page / sizeof(*p); i += 8)
			p[i] = v + i;
	}

	int pfd[2];
	if (pipe2(pfd, O_CLOEXEC) < 0) {
		perror("cowtree: pipe");
		return 1;
	}
	fflush(stdout);
	for (long c = 0; c < children; c++) {
		pid_t pid = fork();
		if (pid < 0) {
			perror("cowtree: fork");
			return 1; /* the harness kills the process group */
		}
		if (pid == 0) {
			close(pfd[0]);
			/* Dirty a few pages of our own, spread over the area. */
			for (size_t k = 0; k < CHILD_PAGES; k++) {
				size_t pg = ((size_t)c * CHILD_PAGES + k) * 7919 % npages;
				uint64_t *p = (uint64_t *)(mem + pg * page);
				p[1] = 0xc0ffee0000000000ull | ((uint64_t)c << 16) | k;
			}
			char b = 'c';
			if (write(pfd[1], &b, 1) != 1) {
				perror("cowtree: child write");
				_exit(1);
			}
			close(pfd[1]);
			sleep_forever();
		}
	}
	close(pfd[1]);

	long got = 0;
	char buf[64];
	while (got < children) {
		ssize_t n = read(pfd[0], buf, sizeof(buf));
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			fprintf(stderr, "cowtree: only %ld of %ld children reported\n", got,
				children);
			return 1;
		}
		got += n;
	}
	close(pfd[0]);

	int fd = open("ready", O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
	if (fd < 0) {
		perror("cowtree: creating ready");
		return 1;
	}
	close(fd);
	printf("cowtree: %ld MiB touched, %ld children, root pid %d\n", mib, children,
	       (int)getpid());
	fflush(stdout);
	sleep_forever();
}
