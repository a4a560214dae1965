/*
 * testhook: kill points for tests (testhook.c).
 */
#ifndef CRYO_TESTHOOK_H
#define CRYO_TESTHOOK_H

/* SIGKILLs cryo here if CRYO_TEST_KILL_AT names point and the file
 * CRYO_TEST_ARM names exists. Points: dump-frozen, dump-collected,
 * dump-written, dump-committed, run-renamed. */
void test_kill_point(const char *point);

#endif
