/*
 * ext_pipe_job: a job whose stdin and stdout are pipes to processes outside
 * the tree (tests/test_external.py, not list.txt): for each byte read from
 * fd 0 it writes "line N\n" to fd 1, N counting from 0; it exits 0 at the
 * end of its input. Restored with --inherit-fd for both pipes, its new
 * reader must get the lines after those written before the dump, with no
 * gap and no duplicate.
 */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

int main(void)
{
	char c, line[32];

	for (unsigned n = 0;; n++) {
		ssize_t r = read(0, &c, 1);
		if (r == 0)
			return 0;
		if (r < 0)
			return 2;
		int len = snprintf(line, sizeof(line), "line %u\n", n);
		if (write(1, line, len) != len)
			return 3;
	}
}
