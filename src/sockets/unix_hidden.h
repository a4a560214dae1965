/* sockets/unix_hidden: binding a unix socket to a path name out of sight
 * (see unix_hidden.c). */
#ifndef CRYO_UNIX_HIDDEN_H
#define CRYO_UNIX_HIDDEN_H

#include <sys/socket.h>
#include <sys/types.h>
#include <sys/un.h>

struct unix_hidden_name {
	const struct sockaddr_un *sa; /* the name, as bound */
	socklen_t len;
	const char *cwd;  /* relative names: the directory they were bound in */
	const char *path; /* the absolute path of the socket file */
	mode_t mode;	  /* of the socket file */
	uid_t uid;
	gid_t gid;
};

/* Binds fd to h's name in a helper's own mount namespace, on a tmpfs at the
 * nearest existing directory of h->path: the program's files are untouched. */
int unix_bind_hidden(int fd, const struct unix_hidden_name *h);

#endif
