/*
 * threads50: a benchmark workload for cryo's multi-threaded dump. One
 * process with T threads in all (argv[1], default 50: the main thread and
 * T-1 pthreads) and M MiB (argv[2], default 64) of touched anonymous memory.
 * Each pthread blocks in pthread_cond_wait on a condition that is never
 * signalled; once all of them wait, the main thread creates the file `ready`
 * in its cwd and sleeps forever in nanosleep. stdout and stderr should be
 * regular files or /dev/null.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t never = PTHREAD_COND_INITIALIZER;
static pthread_cond_t counted = PTHREAD_COND_INITIALIZER;
static long waiting;

static long parse(const char *s, const char *what, long min, long max)
{
	char *end;
	errno = 0;
	long v = strtol(s, &end, 10);
	if (errno || *end || end == s || v < min || v > max) {
		fprintf(stderr, "threads50: bad %s '%s'\n", what, s);
		exit(2);
	}
	return v;
}

static void *worker(void *arg)
{
	(void)arg;
	pthread_mutex_lock(&lock);
	waiting++;
	pthread_cond_signal(&counted);
	for (;;)
		pthread_cond_wait(&never, &lock);
	return NULL;
}

int main(int argc, char **argv)
{
	long threads = argc > 1 ? parse(argv[1], "thread count", 1, 10000) : 50;
	long mib = argc > 2 ? parse(argv[2], "size (MiB)", 0, 1L << 20) : 64;

	if (mib > 0) {
		size_t len = (size_t)mib << 20;
		size_t page = (size_t)sysconf(_SC_PAGESIZE);
		unsigned char *mem =
		    mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (mem == MAP_FAILED) {
			perror("threads50: mmap");
			return 1;
		}
		for (size_t off = 0; off < len; off += page) {
			uint64_t *p = (uint64_t *)(mem + off);
			uint64_t v = 0x9e3779b97f4a7c15ull ^ (off / page);
			for (size_t i = 0; i < page / sizeof(*p); i += 8)
				p[i] = v + i;
		}
	}

	pthread_attr_t attr;
	pthread_attr_init(&attr);
	pthread_attr_setstacksize(&attr, 256 << 10);
	for (long t = 1; t < threads; t++) {
		pthread_t th;
		int err = pthread_create(&th, &attr, worker, NULL);
		if (err) {
			fprintf(stderr, "threads50: pthread_create: %s\n", strerror(err));
			return 1;
		}
	}
	pthread_attr_destroy(&attr);

	/* pthread_cond_wait releases the lock, so once we hold it with the full
	 * count, every worker is inside its wait. */
	pthread_mutex_lock(&lock);
	while (waiting < threads - 1)
		pthread_cond_wait(&counted, &lock);
	pthread_mutex_unlock(&lock);

	int fd = open("ready", O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
	if (fd < 0) {
		perror("threads50: creating ready");
		return 1;
	}
	close(fd);
	printf("threads50: %ld threads, %ld MiB touched, pid %d\n", threads, mib, (int)getpid());
	fflush(stdout);

	for (;;) {
		struct timespec ts = {.tv_sec = 3600, .tv_nsec = 0};
		nanosleep(&ts, NULL);
	}
}
