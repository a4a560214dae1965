/* sk_unix_bound.c: workload with named AF_UNIX sockets: a stream listener on a
 * relative path (mode 0640, O_NONBLOCK, backlog 7) with one connection accepted
 * and holding data both ways, a seqpacket listener on an abstract name, a
 * bound unconnected datagram socket on an absolute path holding datagrams from
 * an unnamed socket and from a named socket of the process, and a datagram
 * socket connected one way to it. After restore it checks names, peers, the
 * queued data, and that the listeners accept new connections. */
#include "wl.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

static int mksock(int type, const struct sockaddr_un *sa, socklen_t len)
{
	int fd = socket(AF_UNIX, type, 0);

	if (fd < 0 || (sa && bind(fd, (const struct sockaddr *)sa, len)))
		wl_die("socket/bind %s: %s", sa ? sa->sun_path : "-", strerror(errno));
	return fd;
}

/* A new connection to listener l: connect, accept, talk both ways. */
static void check_accepts(const char *name, int l, int type, const struct sockaddr_un *sa,
			  socklen_t len)
{
	int c = socket(AF_UNIX, type, 0), a = -1, n1 = -1, n2 = -1;
	char buf[16] = {0};

	if (c >= 0 && connect(c, (const struct sockaddr *)sa, len) == 0)
		a = accept(l, NULL, NULL);
	if (a >= 0) {
		n1 = send(c, "knock", 5, 0) == 5 && recv(a, buf, sizeof(buf), 0) == 5 &&
		     !memcmp(buf, "knock", 5);
		n2 = send(a, "who", 3, 0) == 3 && recv(c, buf, sizeof(buf), 0) == 3 &&
		     !memcmp(buf, "who", 3);
	}
	wl_check(name, a >= 0 && n1 == 1 && n2 == 1, "connect/accept %d (%s), talk %d %d", a,
		 strerror(errno), n1, n2);
	close(a);
	close(c);
}

int main(void)
{
	struct sockaddr_un sl, sq, sd, ss;
	socklen_t ll, lq, ld, ls;
	int l, c1, a1, q, d, snd, e, tmp, n;
	char abs[4096], abstract[64], buf[64];
	struct stat st;

	wl_init();
	/* stream listener on a relative path, an accepted connection */
	ll = wl_unix_addr(&sl, "lsock", false);
	l = mksock(SOCK_STREAM, &sl, ll);
	if (chmod("lsock", 0640) || listen(l, 7) || fcntl(l, F_SETFL, O_NONBLOCK))
		wl_die("listen: %s", strerror(errno));
	c1 = mksock(SOCK_STREAM, NULL, 0);
	if (connect(c1, (struct sockaddr *)&sl, ll) || (a1 = accept(l, NULL, NULL)) < 0)
		wl_die("connect/accept: %s", strerror(errno));
	if (write(c1, "to-server", 9) != 9 || write(a1, "to-client-1", 11) != 11)
		wl_die("write c1/a1");
	/* seqpacket listener on an abstract name */
	snprintf(abstract, sizeof(abstract), "cryo-sk-unix-%d", getpid());
	lq = wl_unix_addr(&sq, abstract, true);
	q = mksock(SOCK_SEQPACKET, &sq, lq);
	if (listen(q, 3))
		wl_die("listen q: %s", strerror(errno));
	/* bound datagram socket (absolute path) with datagrams from an unnamed
	 * socket (closed since) and from a named one */
	wl_path("dsock", abs, sizeof(abs));
	ld = wl_unix_addr(&sd, abs, false);
	d = mksock(SOCK_DGRAM, &sd, ld);
	ls = wl_unix_addr(&ss, "dsender", false);
	snd = mksock(SOCK_DGRAM, &ss, ls);
	tmp = mksock(SOCK_DGRAM, NULL, 0);
	if (sendto(tmp, "anon-1", 6, 0, (struct sockaddr *)&sd, ld) != 6 ||
	    sendto(snd, "named", 5, 0, (struct sockaddr *)&sd, ld) != 5 ||
	    sendto(tmp, "anon-three", 10, 0, (struct sockaddr *)&sd, ld) != 10)
		wl_die("sendto dsock: %s", strerror(errno));
	close(tmp);
	/* a datagram socket connected one way to dsock */
	e = mksock(SOCK_DGRAM, NULL, 0);
	if (connect(e, (struct sockaddr *)&sd, ld))
		wl_die("connect e: %s", strerror(errno));

	wl_ready();
	wl_wait_go();

	/* the listener */
	wl_check_unix_name("l_name", l, false, &sl, ll);
	n = wl_sockopt(l, SO_ACCEPTCONN);
	wl_check("l_listening", n == 1, "SO_ACCEPTCONN %d", n);
	n = fcntl(l, F_GETFL);
	wl_check("l_nonblock", n & O_NONBLOCK, "flags %#x", n);
	n = stat("lsock", &st);
	wl_check("l_file", n == 0 && S_ISSOCK(st.st_mode) && (st.st_mode & 07777) == 0640,
		 "stat %d mode %o", n, st.st_mode);
	errno = 0;
	n = accept(l, NULL, NULL);
	wl_check("l_no_pending", n < 0 && errno == EAGAIN, "accept %d errno %d", n, errno);
	/* the accepted connection */
	wl_check_unix_name("a1_name", a1, false, &sl, ll);
	wl_check_unix_name("c1_peer", c1, true, &sl, ll);
	memset(buf, 0, sizeof(buf));
	n = recv(a1, buf, sizeof(buf), MSG_DONTWAIT);
	wl_check("a1_data", n == 9 && !memcmp(buf, "to-server", 9), "got %d '%.*s'", n,
		 n > 0 ? n : 0, buf);
	n = recv(c1, buf, sizeof(buf), MSG_DONTWAIT);
	wl_check("c1_data", n == 11 && !memcmp(buf, "to-client-1", 11), "got %d '%.*s'", n,
		 n > 0 ? n : 0, buf);
	wl_check("a1_c1_empty", wl_revents(a1, POLLIN) == 0 && wl_revents(c1, POLLIN) == 0,
		 "extra data");
	n = send(c1, "more", 4, 0);
	int m = recv(a1, buf, sizeof(buf), MSG_DONTWAIT);
	wl_check("c1_a1_link", n == 4 && m == 4 && !memcmp(buf, "more", 4), "sent %d got %d", n, m);
	check_accepts("l_accepts", l, SOCK_STREAM, &sl, ll);

	/* the abstract seqpacket listener */
	wl_check_unix_name("q_name", q, false, &sq, lq);
	n = wl_sockopt(q, SO_TYPE);
	wl_check("q_type", n == SOCK_SEQPACKET, "SO_TYPE %d", n);
	check_accepts("q_accepts", q, SOCK_SEQPACKET, &sq, lq);

	/* the bound datagram socket and its queue */
	wl_check_unix_name("d_name", d, false, &sd, ld);
	wl_check_unix_name("snd_name", snd, false, &ss, ls);
	{
		static const char *want[] = {"anon-1", "named", "anon-three"};
		for (int i = 0; i < 3; i++) {
			struct sockaddr_un from;
			socklen_t flen = sizeof(from);
			char nm[32];
			memset(buf, 0, sizeof(buf));
			n = recvfrom(d, buf, sizeof(buf), MSG_DONTWAIT, (struct sockaddr *)&from,
				     &flen);
			bool from_ok = i == 1 ? flen == ls && !strcmp(from.sun_path, "dsender")
					      : flen <= sizeof(sa_family_t); /* unnamed */
			snprintf(nm, sizeof(nm), "d_msg%d", i);
			wl_check(nm,
				 n == (int)strlen(want[i]) && !memcmp(buf, want[i], n) && from_ok,
				 "got %d '%.*s' from length %u", n, n > 0 ? n : 0, buf, flen);
		}
		wl_check("d_empty", wl_revents(d, POLLIN) == 0, "extra datagram at dsock");
	}
	/* the one-way connected socket */
	wl_check_unix_name("e_peer", e, true, &sd, ld);
	n = send(e, "via-e", 5, MSG_DONTWAIT);
	m = recv(d, buf, sizeof(buf), MSG_DONTWAIT);
	wl_check("e_to_d", n == 5 && m == 5 && !memcmp(buf, "via-e", 5), "sent %d got %d", n, m);
	n = sendto(snd, "again", 5, MSG_DONTWAIT, (struct sockaddr *)&sd, ld);
	m = recv(d, buf, sizeof(buf), MSG_DONTWAIT);
	wl_check("snd_to_d", n == 5 && m == 5, "sent %d got %d", n, m);
	wl_done();
}
