/*
 * ptrace helpers: seize and stop a task, read and write its register sets,
 * release it. All register access goes through PTRACE_GETREGSET/SETREGSET.
 */
#ifndef CRYO_PTRACE_H
#define CRYO_PTRACE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/user.h>

/* Seize pid and bring it to a ptrace-stop (PTRACE_INTERRUPT). Signals that
 * arrive meanwhile are delivered as they would have been. Its seccomp is
 * then suspended (ptrace_set_options); a task under seccomp whose seccomp
 * cannot be suspended is released again and refused. A task that has not
 * stopped after timeout_s seconds (0: no limit) is given up, with an error
 * naming its state: it stays seized, untouched, until cryo exits. */
int ptrace_seize_stop(pid_t pid, unsigned timeout_s);
/* PTRACE_SETOPTIONS with opts and PTRACE_O_SUSPEND_SECCOMP, so that the
 * tracee's seccomp does not apply to the calls cryo injects; without it if
 * the kernel refuses it to cryo. *suspended (if not NULL) tells which. */
int ptrace_set_options(pid_t pid, long opts, bool *suspended);
/* Wait until pid is in a ptrace-stop; returns the stop signal, or -1. */
int ptrace_wait_stop(pid_t pid, int *status);
int ptrace_get_regs(pid_t pid, struct user_regs_struct *regs);
int ptrace_set_regs(pid_t pid, const struct user_regs_struct *regs);
/* xstate buffer of *len bytes; *len is set to what the kernel filled. */
int ptrace_get_xstate(pid_t pid, void *buf, size_t *len);
int ptrace_set_xstate(pid_t pid, const void *buf, size_t len);
int ptrace_get_sigmask(pid_t pid, uint64_t *mask);
int ptrace_set_sigmask(pid_t pid, uint64_t mask);
int ptrace_release(pid_t pid);

#endif
