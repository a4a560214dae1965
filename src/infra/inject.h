/*
 * Syscall injection: run one system call inside a stopped tracee.
 *
 * The tracee's registers are pointed at a `syscall` instruction it already
 * has (a byte pair 0f 05 in its vDSO when dumping, the restorer's trampoline
 * when restoring), loaded with the call's number and arguments, and
 * single-stepped over it; the result is read back from rax. Nothing is
 * written into the tracee's code. inject_begin() saves the registers and
 * blocks every signal; inject_end() puts both back, so the task continues
 * exactly as before, including a syscall it was interrupted in.
 */
#ifndef CRYO_INJECT_H
#define CRYO_INJECT_H

#include <stdint.h>
#include <sys/types.h>
#include <sys/user.h>

struct inject {
	pid_t pid;
	uint64_t syscall_ip;
	struct user_regs_struct saved;
	uint64_t saved_mask;
	/* scratch memory in the tracee, for syscalls that take pointers */
	uint64_t scratch;
	size_t scratch_len;
};

/* Find a `syscall` instruction in pid's vDSO. */
int inject_find_vdso_syscall(pid_t pid, uint64_t vdso_start, uint64_t vdso_end, uint64_t *ip);
int inject_begin(struct inject *inj, pid_t pid, uint64_t syscall_ip);
int inject_end(struct inject *inj);
/* Runs nr(args) in the tracee; *ret gets the raw return (-errno on failure).
 * Returns -1 only if the injection itself failed. */
int inject_syscall(struct inject *inj, long nr, uint64_t a1, uint64_t a2, uint64_t a3, uint64_t a4,
		   uint64_t a5, uint64_t a6, long *ret);
/* As inject_syscall, but a -errno result is an error: "WHAT in pid N: errno text". */
int inject_call(struct inject *inj, const char *what, long nr, uint64_t a1, uint64_t a2,
		uint64_t a3, uint64_t a4, uint64_t a5, uint64_t a6, long *ret);
/* One call of a batch. */
struct inject_call_desc {
	long nr;
	uint64_t a[6];
};

/* Machine code that runs a table of calls in the tracee and stops with int3:
 * copied into a trampoline page, at inject_batch()'s code_ip. Each table
 * entry is 64 bytes: nr, six arguments, the result. */
extern const unsigned char inject_batch_code[64];

/* Runs calls[0..n) in the tracee in one stop, through the batch code at
 * code_ip and a table written at table. Stops at the first call that fails:
 * *done gets how many succeeded and *err that call's -errno. Returns -1 only
 * if the injection itself failed. */
int inject_batch(struct inject *inj, uint64_t code_ip, uint64_t table,
		 const struct inject_call_desc *calls, size_t n, size_t *done, long *err);

/* Map len bytes of private scratch memory in the tracee (MAP_SHARED|ANON,
 * so it never merges with the tracee's own mappings). */
int inject_scratch_map(struct inject *inj, size_t len);
int inject_scratch_unmap(struct inject *inj);
/* Copy to / from tracee memory. */
int inject_write(pid_t pid, uint64_t addr, const void *buf, size_t len);
int inject_read(pid_t pid, uint64_t addr, void *buf, size_t len);

#endif
