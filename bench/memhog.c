/*
 * memhog: a benchmark workload for cryo. Allocates N MiB (argv[1], default
 * 1024) of anonymous private memory (with argv[2] "thp": in transparent huge
 * pages), writes a non-zero pattern into every
 * page (so that no page is skipped as absent or all-zero), creates the file
 * `ready` in its cwd and then sleeps forever in nanosleep. Its stdout and
 * stderr should be regular files or /dev/null (cryo refuses outside pipes).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	long mib = 1024;
	char *end;

	if (argc > 1) {
		errno = 0;
		mib = strtol(argv[1], &end, 10);
		if (errno || *end || end == argv[1] || mib <= 0 || mib > (1L << 20)) {
			fprintf(stderr, "memhog: bad size '%s' (MiB)\n", argv[1]);
			return 2;
		}
	}

	size_t len = (size_t)mib << 20;
	long page = sysconf(_SC_PAGESIZE);
	unsigned char *mem =
	    mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (mem == MAP_FAILED) {
		perror("memhog: mmap");
		return 1;
	}
	/* argv[2] "thp": transparent huge pages (a fork copies one entry per 2 MiB) */
	if (argc > 2 && !strcmp(argv[2], "thp") && madvise(mem, len, MADV_HUGEPAGE))
		perror("memhog: madvise(MADV_HUGEPAGE)");

	/* A pattern that differs per page and is never all zero. */
	for (size_t off = 0; off < len; off += page) {
		uint64_t *p = (uint64_t *)(mem + off);
		uint64_t v = 0x9e3779b97f4a7c15ull ^ (off / page);
		for (size_t i = 0; i < (size_t)page / sizeof(*p); i += 8)
			p[i] = v + i;
	}

	int fd = open("ready", O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
	if (fd < 0) {
		perror("memhog: creating ready");
		return 1;
	}
	close(fd);
	printf("memhog: %ld MiB touched, pid %d\n", mib, (int)getpid());
	fflush(stdout);

	for (;;) {
		struct timespec ts = {.tv_sec = 3600, .tv_nsec = 0};
		nanosleep(&ts, NULL);
	}
}
