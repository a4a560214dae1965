/*
 * Syscall injection: run system calls inside a stopped tracee.
 *
 * The tracee's registers are pointed at a `syscall` instruction, loaded with
 * the call's number and arguments, and single-stepped over it; the result is
 * read back from rax. inject_begin() saves the registers and blocks every
 * signal; inject_end() puts both back, so the task continues exactly as
 * before, including a syscall it was interrupted in.
 *
 * Where the instruction is: in a process cryo restores, its trampoline
 * (inject_use). In a process cryo dumps, inject_setup() borrows one the
 * process already has, in its vDSO or any other executable mapping (a
 * process may have unmapped its vDSO), or, if it has none, writes one at its
 * instruction pointer and puts the original bytes back right after; with it
 * it maps a code page and scratch memory of cryo's own, which serve every
 * later call and are unmapped by inject_end(). Nothing cryo wrote stays in
 * the tracee.
 *
 * Scratch memory, in the tracee, holds what syscalls read or write through
 * pointers; inject_scratch_put/get refuse to go past its end.
 */
#ifndef CRYO_INJECT_H
#define CRYO_INJECT_H

#include <stddef.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/user.h>

#include "infra/proc.h"

struct inject {
	pid_t pid;
	uint64_t syscall_ip;
	struct user_regs_struct saved;
	uint64_t saved_mask;
	/* scratch memory in the tracee, for syscalls that take pointers */
	uint64_t scratch;
	size_t scratch_len;
	/* what inject_setup() mapped, unmapped by inject_end(); 0: nothing */
	uint64_t own;
	size_t own_len;
	/* a tracee cryo did not make (inject_setup): between two calls its
	 * registers and mask are its own again (see inject.c) */
	bool between_as_is;
};

/* Saves the registers and the signal mask of the stopped tracee pid and
 * blocks every signal; no syscall can be run until inject_setup/use. */
int inject_begin(struct inject *inj, pid_t pid);
/* The tracee has a `syscall` at syscall_ip and scratch memory of its own,
 * [scratch, scratch + scratch_len) (the restorer's trampoline). */
void inject_use(struct inject *inj, uint64_t syscall_ip, uint64_t scratch, size_t scratch_len);
/* For a tracee cryo did not make: finds or writes a `syscall` (vmas: its
 * mappings), and maps cryo's code page and scratch_len bytes of scratch. */
int inject_setup(struct inject *inj, const struct proc_vmas *vmas, size_t scratch_len);
/* For a short visit (a tracee cryo seized again, not dumped): borrows the
 * first `syscall` the process has and maps nothing; no scratch memory. */
int inject_setup_borrowed(struct inject *inj, const struct proc_vmas *vmas);
/* inject_begin for another thread of the address space leader injects into:
 * it shares the leader's instruction and scratch. */
int inject_begin_thread(struct inject *inj, pid_t tid, const struct inject *leader);
/* Unmaps what inject_setup mapped, then puts the registers and mask back. */
int inject_end(struct inject *inj);

/* Runs nr(args) in the tracee; *ret gets the raw return (-errno on failure).
 * Returns -1 only if the injection itself failed. */
int inject_syscall(struct inject *inj, long nr, uint64_t a1, uint64_t a2, uint64_t a3, uint64_t a4,
		   uint64_t a5, uint64_t a6, long *ret);
/* As inject_syscall, but a -errno result is an error: "WHAT in pid N: errno text". */
int inject_call(struct inject *inj, const char *what, long nr, uint64_t a1, uint64_t a2,
		uint64_t a3, uint64_t a4, uint64_t a5, uint64_t a6, long *ret);

/* Copies len bytes to offset off of the scratch memory; *addr (if not NULL)
 * gets their address in the tracee. -1 if they do not fit:
 * "pid N: scratch space of M bytes exceeded by X". */
int inject_scratch_put(struct inject *inj, size_t off, const void *data, size_t len,
		       uint64_t *addr);
/* Copies len bytes from offset off of the scratch memory (what a call wrote). */
int inject_scratch_get(struct inject *inj, size_t off, void *data, size_t len);

/* One call of a batch. */
struct inject_call_desc {
	long nr;
	uint64_t a[6];
};

/* Machine code that runs a table of calls in the tracee and stops with int3:
 * copied into a trampoline page, at inject_batch()'s code_ip. Each table
 * entry is 64 bytes: nr, six arguments, the result. */
extern const unsigned char inject_batch_code[64];

/* How many calls one inject_batch() can take: its table is in the scratch. */
size_t inject_batch_max(const struct inject *inj);
/* Runs calls[0..n) in the tracee in one stop, through the batch code at
 * code_ip and a table written at the start of the scratch memory. Stops at
 * the first call that fails: *done gets how many succeeded and *err that
 * call's -errno. Returns -1 only if the injection itself failed. */
int inject_batch(struct inject *inj, uint64_t code_ip, const struct inject_call_desc *calls,
		 size_t n, size_t *done, long *err);

/* Runs calls[0..n) in the tracee: in one stop, through the batch code put
 * on cryo's code page, or one injected call each where there is no code
 * page. The first call that fails is reported ("WHAT in pid N: errno").
 * inject_calls_out gives the scratch address where their own buffers (len
 * bytes) go, after the batch's table; -1 if the scratch is too small. */
int inject_calls(struct inject *inj, const char *what, const struct inject_call_desc *calls,
		 size_t n);
int inject_calls_out(const struct inject *inj, size_t n, size_t len, uint64_t *out);
/* As inject_calls, and ret[i] gets what call i returned. */
int inject_calls_ret(struct inject *inj, const char *what, const struct inject_call_desc *calls,
		     size_t n, long *ret);

/* Writes len bytes of machine code into cryo's code page (after its
 * `syscall`, at most a page); *ip gets their address. -1 if inject_setup
 * could map no code page (a process denied executable memory). */
int inject_put_code(struct inject *inj, const void *code, size_t len, uint64_t *ip);
/* Runs the tracee from regs (regs->rip: code put with inject_put_code) until
 * an int3; regs gets the registers there. The task's own registers and mask
 * are back afterwards, as after inject_syscall. */
int inject_run(struct inject *inj, struct user_regs_struct *regs);

/* Copy to / from tracee memory (where the tracee may write / read). */
int inject_write(pid_t pid, uint64_t addr, const void *buf, size_t len);
int inject_read(pid_t pid, uint64_t addr, void *buf, size_t len);

#endif
