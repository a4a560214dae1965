/* treeplan: how each process of a tree is made again so that it gets its
 * session back (treeplan.c). Pure: it reads ids and writes a plan. */
#ifndef CRYO_TREEPLAN_H
#define CRYO_TREEPLAN_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

enum tp_birth {
	TP_DIRECT,	 /* by its parent, once the parent has its own session */
	TP_EARLY,	 /* by its parent, before the parent's setsid() */
	TP_GONE_SESSION, /* by a helper with the pid of its session's gone leader,
			    with CLONE_PARENT: one parent's kids, for each such session */
	TP_ADOPTED,	 /* by a helper under a process of its session, then adopted */
};

struct tp_node {
	/* in: the saved ids; the nodes listed parents first, the root first */
	pid_t pid, ppid, sid, pgid;
	bool zombie;
	bool shares; /* shares its fd table or fs with its parent (CLONE_FILES/FS) */
	int exit_signal;
	/* out */
	int parent; /* index; -1 for the root */
	enum tp_birth birth;
	int maker;	    /* TP_ADOPTED: the index of the process that makes it */
	bool maker_early;   /* ... before that process's own setsid() */
	bool maker_sibling; /* ... a kid of its parent: with CLONE_PARENT, no helper */
	bool adoptive;	    /* a kid comes to it from elsewhere: a subreaper meanwhile */
	pid_t born_in;	    /* a session leader: the session it must be made in (0: any) */
	pid_t start_sid;    /* the session it is in when made */
	bool opens_group;   /* the first member of a group whose leader has exited */
	bool keeps_group;   /* leads a group it has left: keeps it until a member is in */
};

/* Plans every node; 0, or -1 with the reason (err_set) when some process
 * cannot be made again in its session and group. */
int tp_plan(struct tp_node *n, size_t nr);

#endif
