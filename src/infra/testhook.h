/*
 * testhook: kill and wait points for tests (testhook.c).
 */
#ifndef CRYO_TESTHOOK_H
#define CRYO_TESTHOOK_H

/* SIGKILLs cryo here if CRYO_TEST_KILL_AT names point and the file
 * CRYO_TEST_ARM names exists. Points: dump-frozen, dump-collected,
 * dump-written, dump-committed, run-renamed. */
void test_kill_point(const char *point);
/* Waits here until the file CRYO_TEST_GO names exists (having created
 * it with ".waiting" appended) if CRYO_TEST_WAIT_AT names point. Points:
 * dump-preread (dump -R, pre-dump: VMA flags read, tree not yet frozen). */
void test_wait_point(const char *point);
/* Sleeps CRYO_TEST_HOLD_MS milliseconds (1000 at most) here if
 * CRYO_TEST_HOLD_AT names point. Points: dump-collected (the tree still
 * frozen: a workload that must see the freeze sees one long enough). */
void test_hold_point(const char *point);

#endif
