/*
 * tcpconns: a benchmark workload for cryo's TCP checkpoint (make bench,
 * bench/tcpconns.py). A server on 127.0.0.1 (an ephemeral port, written
 * to the file `port` in its cwd) accepts N connections (argv[1]) from
 * clients outside its tree, creates the file `ready` once it holds them
 * all, and then echoes back whatever any connection sends (epoll), so
 * that after a restore every connection can be shown to work. stdout and
 * stderr should be regular files or /dev/null.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>
#include <netinet/in.h>

static void die(const char *what)
{
	fprintf(stderr, "tcpconns: %s: %s\n", what, strerror(errno));
	exit(1);
}

static void touch(const char *name, const char *text)
{
	int fd;
	char tmp[64];

	snprintf(tmp, sizeof(tmp), "%s.tmp", name);
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (fd < 0 || write(fd, text, strlen(text)) != (ssize_t)strlen(text) || close(fd) ||
	    rename(tmp, name))
		die(name);
}

static int listen_any_port(int n)
{
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t len = sizeof(a);
	char port[16];
	int l = socket(AF_INET, SOCK_STREAM, 0);

	if (l < 0 || bind(l, (struct sockaddr *)&a, sizeof(a)) || listen(l, n + 16) ||
	    getsockname(l, (struct sockaddr *)&a, &len))
		die("listen");
	snprintf(port, sizeof(port), "%u\n", ntohs(a.sin_port));
	touch("port", port);
	return l;
}

static void echo(int fd)
{
	char buf[4096];
	ssize_t n = read(fd, buf, sizeof(buf));

	if (n <= 0) {
		close(fd);
		return;
	}
	if (write(fd, buf, n) != n)
		die("write");
}

int main(int argc, char **argv)
{
	int n = argc > 1 ? atoi(argv[1]) : 1000, ep = epoll_create1(0), l;
	struct rlimit rl;

	if (n < 0 || ep < 0)
		die("args/epoll");
	if (!getrlimit(RLIMIT_NOFILE, &rl) && rl.rlim_cur < (rlim_t)n + 64) {
		rl.rlim_cur = rl.rlim_max;
		if (setrlimit(RLIMIT_NOFILE, &rl))
			die("setrlimit");
	}
	l = listen_any_port(n);
	for (int i = 0; i < n; i++) {
		int c = accept(l, NULL, NULL);
		struct epoll_event ev = {.events = EPOLLIN, .data.fd = c};
		if (c < 0 || epoll_ctl(ep, EPOLL_CTL_ADD, c, &ev))
			die("accept");
	}
	touch("ready", "");
	for (;;) {
		struct epoll_event evs[64];
		int k = epoll_wait(ep, evs, 64, -1);
		if (k < 0 && errno != EINTR)
			die("epoll_wait");
		for (int i = 0; i < k; i++)
			echo(evs[i].data.fd);
	}
}
