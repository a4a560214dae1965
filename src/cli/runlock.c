/*
 * runlock: the record a `cryo run` supervisor keeps in its directory, and
 * `cryo checkpoint`, which uses it.
 *
 * DIR/supervisor holds the supervisor's pid and stays locked (flock,
 * exclusive) for as long as that supervisor runs. A second supervisor of
 * the same DIR (a `cryo run --resume` while the first still lives) is
 * refused before it touches anything, and `cryo checkpoint -D DIR` knows
 * the pid in the file is alive and is the supervisor while the lock is
 * held. The kernel drops the lock when the supervisor dies, however it
 * dies, so a stale file never blocks a resume.
 *
 * After each checkpoint the supervisor replaces DIR/checkpoint-status
 * (written under a temporary name, then renamed) with one line,
 * "PID.SEQ committed gen-NNNNNN" or "PID.SEQ failed: REASON".
 * `cryo checkpoint` sends SIGUSR1 through a pidfd opened before it checks
 * the lock (so a pid reused after the supervisor died is never signalled)
 * and waits for that line to change.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "infra/log.h"
#include "cli/runlock.h"

#define LOCK_NAME      "supervisor"
#define STATUS_NAME    "checkpoint-status"
#define STATUS_TMP     ".checkpoint-status.tmp"
#define ANSWER_LIMIT_S 600

/* The pid written in an open DIR/supervisor, or 0. */
static pid_t read_pid(int fd)
{
	char buf[32] = "";
	int pid = 0;

	if (pread(fd, buf, sizeof(buf) - 1, 0) > 0)
		sscanf(buf, "%d", &pid);
	return pid;
}

int runlock_claim(int dirfd, const char *dir)
{
	char line[32];
	int fd = openat(dirfd, LOCK_NAME, O_RDWR | O_CREAT | O_CLOEXEC, 0644);

	if (fd < 0)
		return err_errno("cannot open %s/" LOCK_NAME, dir);
	if (flock(fd, LOCK_EX | LOCK_NB)) {
		int e = errno;
		pid_t pid = read_pid(fd);
		close(fd);
		if (e == EWOULDBLOCK)
			return err_set("%s is supervised already, by cryo run pid %d", dir, pid);
		errno = e;
		return err_errno("cannot lock %s/" LOCK_NAME, dir);
	}
	snprintf(line, sizeof(line), "%d\n", getpid());
	if (ftruncate(fd, 0) || pwrite(fd, line, strlen(line), 0) != (ssize_t)strlen(line)) {
		close(fd);
		return err_errno("cannot write %s/" LOCK_NAME, dir);
	}
	return fd;
}

void runlock_report(int dirfd, unsigned seq, const char *what)
{
	char line[1200];
	int fd = openat(dirfd, STATUS_TMP, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	int n = snprintf(line, sizeof(line), "%d.%u %s\n", getpid(), seq, what);

	if (fd < 0)
		return;
	if (write(fd, line, n) == n)
		renameat(dirfd, STATUS_TMP, dirfd, STATUS_NAME);
	close(fd);
}

/* ---- cryo checkpoint ---- */

static void read_status(int dirfd, char *buf, size_t size)
{
	int fd = openat(dirfd, STATUS_NAME, O_RDONLY | O_CLOEXEC);
	ssize_t n = fd < 0 ? 0 : read(fd, buf, size - 1);

	buf[n > 0 ? n : 0] = '\0';
	if (fd >= 0)
		close(fd);
}

/* Whether some process holds the lock of the open DIR/supervisor. */
static bool supervised(int lockfd)
{
	if (!flock(lockfd, LOCK_SH | LOCK_NB)) {
		flock(lockfd, LOCK_UN);
		return false;
	}
	return errno == EWOULDBLOCK;
}

/* SIGUSR1 to the supervisor, through a pidfd taken before the lock is
 * checked: the process it names is the one holding the lock. */
static int signal_supervisor(int lockfd, const char *dir, pid_t *pid)
{
	int pidfd, r;

	*pid = read_pid(lockfd);
	pidfd = *pid > 0 ? syscall(SYS_pidfd_open, *pid, 0) : -1;
	if (pidfd < 0 || !supervised(lockfd)) {
		if (pidfd >= 0)
			close(pidfd);
		return err_set("no cryo run supervises %s (it ended)", dir);
	}
	r = syscall(SYS_pidfd_send_signal, pidfd, SIGUSR1, NULL, 0);
	close(pidfd);
	if (r)
		return err_errno("cannot signal cryo run pid %d", *pid);
	return 0;
}

/* Prints the supervisor's answer; 0 if the checkpoint was committed. */
static int answer(const char *status, const char *dir)
{
	const char *what = strchr(status, ' ');

	what = what ? what + 1 : status;
	if (!strncmp(what, "committed ", 10)) {
		printf("%s/%.*s\n", dir, (int)strcspn(what + 10, "\n"), what + 10);
		return 0;
	}
	return err_set("checkpoint of %s %.*s", dir, (int)strcspn(what, "\n"), what);
}

static int wait_answer(int dirfd, int lockfd, const char *dir, pid_t pid, const char *before)
{
	struct timespec pause = {0, 20 * 1000 * 1000};
	char now[1200];

	for (long i = 0; i < ANSWER_LIMIT_S * 50L; i++) {
		nanosleep(&pause, NULL);
		read_status(dirfd, now, sizeof(now));
		if (*now && strcmp(now, before))
			return answer(now, dir);
		if (!supervised(lockfd))
			return err_set("cryo run pid %d ended before it answered", pid);
	}
	return err_set("cryo run pid %d did not answer in %d s", pid, ANSWER_LIMIT_S);
}

int cryo_checkpoint(const struct cryo_opts *opts)
{
	const char *dir = opts->images_dir;
	char before[1200];
	int dirfd, lockfd, r = -1;
	pid_t pid;

	dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dirfd < 0)
		return err_errno("cannot open %s", dir);
	lockfd = openat(dirfd, LOCK_NAME, O_RDONLY | O_CLOEXEC);
	if (lockfd < 0 && errno == ENOENT)
		err_set("no cryo run supervises %s (no %s/" LOCK_NAME ")", dir, dir);
	else if (lockfd < 0)
		err_errno("cannot open %s/" LOCK_NAME, dir);
	else {
		read_status(dirfd, before, sizeof(before));
		if (!signal_supervisor(lockfd, dir, &pid))
			r = wait_answer(dirfd, lockfd, dir, pid, before);
		close(lockfd);
	}
	close(dirfd);
	return r;
}
