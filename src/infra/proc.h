/*
 * /proc parsers: stat, status, smaps (VMAs with their VmFlags) and maps, fd lists.
 * Each reads its file in one go and fills a plain struct.
 */
#ifndef CRYO_PROC_H
#define CRYO_PROC_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

struct proc_vma {
	uint64_t start, end, pgoff;
	unsigned prot; /* PROT_* */
	bool shared;
	unsigned dev_major, dev_minor;
	uint64_t ino;
	char *path;	   /* NULL for an anonymous VMA without a name */
	char vmflags[128]; /* the smaps VmFlags line, space separated */
	int pkey;	   /* smaps ProtectionKey (0: the default key, or no pku) */
};

struct proc_vmas {
	int nr;
	struct proc_vma *v;
};

struct proc_stat {
	char state;
	pid_t ppid, pgrp, session;
	int tty_nr;
	unsigned long long start_time; /* field 22: clock ticks after boot; tells pid reuse */
	unsigned long long start_code, end_code, start_stack;
	int exit_signal;
	unsigned long long start_data, end_data, start_brk, arg_start, arg_end, env_start, env_end;
	char comm[32];
	int exit_code; /* a zombie's wait status */
};

struct proc_status {
	unsigned umask;
	int threads;
	unsigned uids[4], gids[4];
	int nr_groups;
	unsigned groups[256];
	uint64_t cap_inh, cap_prm, cap_eff, cap_bnd, cap_amb;
	uint64_t sig_blk, sig_ign, sig_cgt;
	pid_t tracer_pid;
	int nr_nspid;	/* >1: the process is in a nested pid namespace */
	int seccomp;	/* 0: none, 1: strict, 2: filters */
	long vmlck_kib; /* VmLck: KiB of the VMAs locked in memory */
};

int proc_read_stat(pid_t pid, struct proc_stat *st);
int proc_read_status(pid_t pid, struct proc_status *st);
/* VmLck of /proc/PID/status alone (proc_read_status). */
int proc_read_vmlck(pid_t pid, long *kib);
/* From smaps, with each VMA's VmFlags; proc_read_maps: from maps, the
 * layout alone (no page-table walk: cheap for a large process). */
int proc_read_vmas(pid_t pid, struct proc_vmas *vmas);
int proc_read_maps(pid_t pid, struct proc_vmas *vmas);
/* Same VMAs, same ranges, protections, offsets and files (flags not compared). */
bool proc_vmas_same_layout(const struct proc_vmas *a, const struct proc_vmas *b);
/* The VMA holding addr, or NULL (vmas sorted, as /proc lists them). */
const struct proc_vma *proc_vma_at(const struct proc_vmas *vmas, uint64_t addr);
void proc_vmas_free(struct proc_vmas *vmas);
bool proc_vma_has_flag(const struct proc_vma *v, const char *flag);

/* Reads /proc/PID/NAME (pid 0: self) into a malloc'd NUL-terminated buffer. */
int proc_read(pid_t pid, const char *name, char **buf, size_t *len);
/* Its first len - 1 bytes at most, in one read, NUL-terminated into buf
 * (for files whose head is all one wants: an fd's pos and flags). */
int proc_read_head(pid_t pid, const char *name, char *buf, size_t len);
/* Opens what pid maps at [start, end) through /proc/PID/map_files with
 * open flags (close-on-exec; no attach, no pin): -1 with the error recorded. */
int proc_open_map_file(pid_t pid, uint64_t start, uint64_t end, int flags);
/* readlink /proc/PID/NAME into buf. */
/* /proc/PID/NAME opened (O_CLOEXEC added); -1 with the error recorded. */
int proc_open_file(pid_t pid, const char *name, int flags);
/* In a process just forked (a holder, a guardian): closes every fd but the
 * n in keep, which it sorts; syscalls only. */
void proc_close_all_but(int *keep, int n);
int proc_readlink(pid_t pid, const char *name, char *buf, size_t len);
/* The sorted fd numbers in /proc/PID/fd; returns the count or -1. */
int proc_list_fds(pid_t pid, int **fds);
/* The child pids listed in /proc/PID/task/TID/children of every thread:
 * a malloc'd array in *kids; returns the count or -1. */
int proc_list_children(pid_t pid, pid_t **kids);

#endif
