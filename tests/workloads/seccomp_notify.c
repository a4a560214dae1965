/* seccomp_notify.c: a seccomp filter with a user-notification listener
 * (SECCOMP_FILTER_FLAG_NEW_LISTENER) whose supervisor is a thread of the same process.
 * The main thread installs a filter that sends getppid() and uname() to the listener
 * (everything else allowed); the supervisor thread (made before, so unfiltered) answers
 * getppid with 1000 + the number of calls seen, uname with EPERM, waiting in
 * SECCOMP_IOCTL_NOTIF_RECV meanwhile. After go: the listener is on the same fd
 * (FD_CLOEXEC), the thread is still in filter mode with one filter, getppid() gives
 * the next count (answered by the supervisor through the restored listener), uname()
 * fails with EPERM, getpid() is allowed, and the supervisor checks each notification
 * came from the main thread. */
#include "wl.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <unistd.h>
#include <linux/filter.h>
#include <linux/seccomp.h>

#define LISTENER_FD 20

static int listener = -1;
static pid_t main_tid;
static volatile int seen, wrong_pid;

static void *supervisor(void *arg)
{
	(void)arg;
	for (;;) {
		struct seccomp_notif req;
		struct seccomp_notif_resp resp;
		memset(&req, 0, sizeof(req));
		if (ioctl(__atomic_load_n(&listener, __ATOMIC_SEQ_CST), SECCOMP_IOCTL_NOTIF_RECV,
			  &req)) {
			if (errno == EINTR || errno == EBADF)
				continue; /* EBADF: not installed yet */
			usleep(1000);
			continue;
		}
		memset(&resp, 0, sizeof(resp));
		resp.id = req.id;
		if ((pid_t)req.pid != main_tid)
			wrong_pid = req.pid;
		if (req.data.nr == SYS_getppid)
			resp.val = 1000 + ++seen;
		else
			resp.error = -EPERM;
		ioctl(listener, SECCOMP_IOCTL_NOTIF_SEND, &resp);
	}
	return NULL;
}

static int install(void)
{
	struct sock_filter f[] = {
	    BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
	    BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_getppid, 2, 0),
	    BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_uname, 1, 0),
	    BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
	    BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_USER_NOTIF),
	};
	struct sock_fprog prog = {.len = sizeof(f) / sizeof(f[0]), .filter = f};

	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0))
		wl_die("no_new_privs: %s", strerror(errno));
	return syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, SECCOMP_FILTER_FLAG_NEW_LISTENER,
		       &prog);
}

static long status_num(const char *key)
{
	char line[256];
	long v = -1;
	FILE *f = fopen("/proc/thread-self/status", "r");

	while (f && fgets(line, sizeof(line), f))
		if (!strncmp(line, key, strlen(key)))
			v = strtol(line + strlen(key), NULL, 10);
	if (f)
		fclose(f);
	return v;
}

int main(void)
{
	pthread_t sup;
	struct utsname u;
	int fd;
	long r;

	wl_init();
	main_tid = gettid();
	if (pthread_create(&sup, NULL, supervisor, NULL))
		wl_die("pthread_create");
	fd = install();
	if (fd < 0 || dup3(fd, LISTENER_FD, O_CLOEXEC) < 0)
		wl_die("seccomp NEW_LISTENER: %s", strerror(errno));
	close(fd);
	__atomic_store_n(&listener, LISTENER_FD, __ATOMIC_SEQ_CST);
	r = syscall(SYS_getppid);
	if (r != 1001)
		wl_die("getppid before: %ld", r);

	wl_ready();
	wl_wait_go();

	{
		char link[64] = "";
		wl_fd_link(LISTENER_FD, link, sizeof(link));
		wl_check("listener_fd", !strcmp(link, "anon_inode:seccomp notify"), "fd %d is %s",
			 LISTENER_FD, link);
		wl_check("listener_cloexec", fcntl(LISTENER_FD, F_GETFD) == FD_CLOEXEC,
			 "fd flags %d", fcntl(LISTENER_FD, F_GETFD));
	}
	wl_check("mode", status_num("Seccomp:\t") == 2, "Seccomp: %ld", status_num("Seccomp:\t"));
	wl_check("filters", status_num("Seccomp_filters:\t") == 1, "Seccomp_filters: %ld",
		 status_num("Seccomp_filters:\t"));
	r = syscall(SYS_getppid);
	wl_check("notified", r == 1002, "getppid() gave %ld, want 1002", r);
	r = syscall(SYS_getppid);
	wl_check("notified_again", r == 1003, "getppid() gave %ld, want 1003", r);
	errno = 0;
	wl_check("uname_eperm", uname(&u) == -1 && errno == EPERM, "uname: %s", strerror(errno));
	wl_check("allowed", syscall(SYS_getpid) == getpid(), "getpid");
	wl_check("from_main", !wrong_pid, "a notification came from pid %d", wrong_pid);
	wl_done();
}
