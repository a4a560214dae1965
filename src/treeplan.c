/*
 * treeplan: how each process of a tree is made again so that it is in its
 * session, which a process can only inherit from the one that forks it (or
 * make with setsid()). Used by the dump, to refuse a tree before anything
 * is written, and by the restore, which follows the plan (tree.c).
 *
 * A process holds at most two sessions in its life: the one it was born in
 * and, after setsid(), its own. So a process P whose kid K is in a session
 * S that is not P's is one of:
 *   - early: P leads its own session now but was born in S, and forked K
 *     before its setsid() (K's kids may ask the same of K: born_in, found
 *     bottom-up, says which session a leader must be born in);
 *   - gone session: S's leader has exited; K came to P, a subreaper, as an
 *     orphan (or K leads a session now, born in S, and its kids need that). A helper with the
 * leader's pid makes S again (tree.c);
 *   - adopted: S's leader lives, and so does some process of S below P.
 *     K was an orphan too. A process M of S below P makes a helper that
 *     forks K and exits, and K comes to P, which is a subreaper meanwhile;
 *     when M is a kid of P it makes K itself, with CLONE_PARENT.
 *     No process from M up to P may be one at that moment: the plan picks an
 *     M whose path to P has none that awaits kids of its own this way, and
 *     one that does not itself wait for K to be made. M may be a zombie,
 *     which makes its fosters before it exits.
 * Groups: a process joins its group itself, once the group exists (tree.c
 * waits for its leader); a group whose leader has exited is made by a
 * helper of the members' parent, so all its members must be that parent's
 * kids, made directly.
 */
#include "treeplan.h"

#include "infra/log.h"

static bool leads(const struct tp_node *x)
{
	return x->sid == x->pid;
}

static int index_of(const struct tp_node *n, size_t nr, pid_t pid)
{
	for (size_t i = 0; i < nr; i++)
		if (n[i].pid == pid)
			return (int)i;
	return -1;
}

/* The session node i holds before its setsid(): set when it leads its own
 * session and was made in another (the root's is not known: 0). */
static pid_t early_sid(const struct tp_node *n, int i)
{
	if (i <= 0 || !leads(&n[i]) || n[i].start_sid == n[i].sid)
		return 0;
	return n[i].start_sid;
}

static bool descends(const struct tp_node *n, int j, int ancestor)
{
	for (int k = n[j].parent; k >= 0; k = n[k].parent)
		if (k == ancestor)
			return true;
	return false;
}

static int link_parents(struct tp_node *n, size_t nr)
{
	n[0].parent = -1;
	for (size_t i = 1; i < nr; i++) {
		int p = index_of(n, nr, n[i].ppid);
		if (p < 0 || n[p].zombie || p == (int)i)
			return err_set("the parent %d of pid %d is not in the checkpoint",
				       n[i].ppid, n[i].pid);
		if (p > (int)i)
			return err_set("pid %d is listed before its parent %d", n[i].pid, n[p].pid);
		n[i].parent = p;
	}
	return 0;
}

/* Bottom-up: a leader whose kid needs a session other than the leader's
 * own must have been born in it (not a gone leader's session: a helper
 * makes that one wherever it is needed). */
static void find_born_in(struct tp_node *n, size_t nr)
{
	for (size_t i = nr; i-- > 1;) {
		pid_t want = leads(&n[i]) ? n[i].born_in : n[i].sid;
		struct tp_node *p = &n[n[i].parent];
		if (n[i].parent > 0 && leads(p) && want && want != p->pid && !p->born_in &&
		    index_of(n, nr, want) >= 0)
			p->born_in = want;
	}
}

static void choose_birth(struct tp_node *n, size_t nr, int i)
{
	struct tp_node *k = &n[i], *p = &n[k->parent];
	pid_t pe = early_sid(n, k->parent);

	k->maker = -1;
	/* a leader is made where its kids need it, or anywhere */
	k->start_sid = !leads(k) ? k->sid : k->born_in ? k->born_in : p->sid;
	if (k->start_sid == p->sid) {
		k->birth = TP_DIRECT;
	} else if (k->start_sid == pe) {
		k->birth = TP_EARLY;
	} else {
		k->birth = index_of(n, nr, k->start_sid) < 0 ? TP_GONE_SESSION : TP_ADOPTED;
		p->adoptive |= k->birth == TP_GONE_SESSION;
	}
}

/* None of the processes from j up to (not including) p is a subreaper
 * while the restore makes the tree. */
static bool clear_path(const struct tp_node *n, int j, int p)
{
	for (int k = j; k != p; k = n[k].parent)
		if (n[k].adoptive)
			return false;
	return true;
}

/* Whether making node j needs node i made first: j's parent, or its maker
 * if it is adopted, and theirs (a maker not chosen yet counts as none). */
static bool needs(const struct tp_node *n, int j, int i)
{
	for (int x = j; x >= 0; x = n[x].birth == TP_ADOPTED ? n[x].maker : n[x].parent)
		if (x == i)
			return true;
	return false;
}

/* Pass 0: a sibling (CLONE_PARENT); 1: a process below the parent, not
 * adopted itself; 2: any process below the parent. */
static bool can_make(const struct tp_node *n, int j, int i, int pass)
{
	const struct tp_node *k = &n[i];

	if (j == i || (pass < 2 && n[j].birth == TP_ADOPTED))
		return false;
	if (pass == 0 && (n[j].parent != k->parent || n[j].exit_signal != k->exit_signal))
		return false;
	/* a zombie makes its fosters before it exits, after its setsid() */
	if (n[j].sid != k->start_sid && (n[j].zombie || early_sid(n, j) != k->start_sid))
		return false;
	return descends(n, j, k->parent) && !needs(n, j, i) &&
	       (pass == 0 || clear_path(n, j, k->parent));
}

static bool choose_maker(struct tp_node *n, size_t nr, int i, int pass)
{
	struct tp_node *k = &n[i];

	for (size_t j = 0; j < nr; j++) {
		if (!can_make(n, (int)j, i, pass))
			continue;
		k->maker = (int)j;
		k->maker_early = n[j].sid != k->start_sid;
		k->maker_sibling = pass == 0;
		return true;
	}
	return false;
}

/* The maker of adopted node i: a process of its session below its parent,
 * a sibling if there is one (then the parent need not be a subreaper). */
static int find_maker(struct tp_node *n, size_t nr, int i)
{
	struct tp_node *k = &n[i];

	if (k->maker >= 0 || choose_maker(n, nr, i, 1) || choose_maker(n, nr, i, 2))
		return 0;
	return err_set("pid %d %s session %d, but neither its parent %d nor a process of that "
		       "session below its parent can make it: cannot be made again there",
		       k->pid, leads(k) ? "was born in" : "is in", k->start_sid, k->ppid);
}

/* A group whose leader has exited is made by a helper of the parent of its
 * members: they must all be that parent's kids, made directly. */
static int check_group(const struct tp_node *n, size_t nr, int i)
{
	const struct tp_node *k = &n[i];
	int leader = index_of(n, nr, k->pgid);

	if (leader >= 0 && n[leader].pgid != k->pgid)
		return err_set("pid %d is in process group %d, whose leader has moved to group %d "
			       "since: not supported yet",
			       k->pid, k->pgid, n[leader].pgid);
	if (k->pgid == k->pid || k->pgid == n[0].pgid || leader >= 0 ||
	    (k->birth == TP_GONE_SESSION && k->pgid == k->sid))
		return 0;
	for (size_t j = 1; j < nr; j++) {
		if (n[j].pgid != k->pgid)
			continue;
		if (n[j].birth != TP_DIRECT || n[j].parent != k->parent)
			return err_set("pid %d is in process group %d, whose leader has exited, "
				       "with pid %d %s: not supported yet",
				       k->pid, k->pgid, n[j].pid,
				       n[j].birth == TP_DIRECT ? "of another parent"
							       : "outside its parent's session");
	}
	return 0;
}

int tp_plan(struct tp_node *n, size_t nr)
{
	if (!nr || link_parents(n, nr))
		return -1;
	for (size_t i = 0; i < nr; i++) {
		n[i].adoptive = false;
		n[i].born_in = 0;
		n[i].maker = -1;
		n[i].maker_sibling = false;
	}
	find_born_in(n, nr);
	n[0].birth = TP_DIRECT;
	n[0].start_sid = n[0].sid;
	n[0].maker = -1;
	for (size_t i = 1; i < nr; i++)
		choose_birth(n, nr, (int)i);
	/* siblings first: a parent all of whose adopted kids a sibling makes is
	 * no subreaper, and in nobody's way */
	for (size_t i = 1; i < nr; i++)
		if (n[i].birth == TP_ADOPTED && !choose_maker(n, nr, (int)i, 0))
			n[n[i].parent].adoptive = true;
	for (size_t i = 1; i < nr; i++) {
		if (n[i].birth == TP_ADOPTED && find_maker(n, nr, (int)i))
			return -1;
		if (n[i].shares && (n[i].birth == TP_EARLY || n[i].birth == TP_ADOPTED))
			return err_set("pid %d shares its fd table or fs with its parent %d but is "
				       "in session %d, which its parent is not in now: not "
				       "supported yet",
				       n[i].pid, n[i].ppid, n[i].sid);
		if (check_group(n, nr, (int)i))
			return -1;
	}
	return 0;
}
