// SPDX-License-Identifier: MIT
/*
 * Start-up of a whole VMM process, seen from outside: runs COMMAND once with
 * its stdout on a pipe and measures
 *
 *   first_byte_ms  execve() of COMMAND -> the first byte of guest serial
 *                  output readable on the pipe;
 *   exit_ms        execve() -> the process has exited and been reaped;
 *   maxrss_kib     the child's peak resident set (wait4() rusage).
 *
 * The clock starts in the forked child immediately before execve() and is
 * handed back on a close-on-exec pipe, so fork() is not counted; it is also
 * exported to COMMAND as $BENCH_T_EXEC_NS (CLOCK_MONOTONIC, ns) so that a
 * program can report how long the dynamic loader took to reach main().
 *
 * The guest's first serial byte is the first externally visible guest exit:
 * for the kit's guests it is preceded by a handful of other exits (one UART
 * status read per byte), worth ~0.1 ms each in the emulated host. The VMM's
 * guest output is also copied to this program's stderr with --echo.
 *
 * usage: bench-startup-exec [--echo] LABEL COMMAND [ARGS...]
 * prints: RESULT startup LABEL first_byte_ms=.. exit_ms=.. maxrss_kib=..
 *         status=.. bytes=..
 */
#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>

#include "bench_util.h"

int main(int argc, char **argv)
{
	int out[2], tp[2], echo = 0, st;
	uint64_t t_exec = 0, t_first = 0, t_end, bytes = 0;
	struct rusage ru;
	char buf[4096];
	const char *label;
	pid_t pid;

	if (argc > 1 && !strcmp(argv[1], "--echo")) {
		echo = 1;
		argv++;
		argc--;
	}
	if (argc < 3) {
		fprintf(stderr, "usage: bench-startup-exec [--echo] LABEL COMMAND [ARGS...]\n");
		return 2;
	}
	label = argv[1];
	if (pipe2(out, O_CLOEXEC) < 0 || pipe2(tp, O_CLOEXEC) < 0) {
		perror("pipe2");
		return 1;
	}
	fflush(NULL);
	pid = fork();
	if (pid < 0) {
		perror("fork");
		return 1;
	}
	if (pid == 0) {
		char val[32];
		int devnull = open("/dev/null", O_RDONLY);
		uint64_t t;

		if (devnull < 0 || dup2(devnull, STDIN_FILENO) < 0 ||
		    dup2(out[1], STDOUT_FILENO) < 0)
			_exit(126);
		t = bench_now_ns();
		snprintf(val, sizeof(val), "%llu", (unsigned long long)t);
		setenv("BENCH_T_EXEC_NS", val, 1);
		if (write(tp[1], &t, sizeof(t)) != (ssize_t)sizeof(t))
			_exit(126);
		execvp(argv[2], argv + 2);
		fprintf(stderr, "bench-startup-exec: %s: %s\n", argv[2], strerror(errno));
		_exit(127);
	}
	close(out[1]);
	close(tp[1]);
	if (read(tp[0], &t_exec, sizeof(t_exec)) != (ssize_t)sizeof(t_exec)) {
		fprintf(stderr, "bench-startup-exec: child did not reach execve\n");
		return 1;
	}
	close(tp[0]);

	for (;;) {
		ssize_t n = read(out[0], buf, sizeof(buf));

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		if (!bytes)
			t_first = bench_now_ns();
		bytes += (uint64_t)n;
		if (echo && write(STDERR_FILENO, buf, (size_t)n) < 0)
			echo = 0;
	}
	close(out[0]);
	while (wait4(pid, &st, 0, &ru) < 0) {
		if (errno != EINTR) {
			perror("wait4");
			return 1;
		}
	}
	t_end = bench_now_ns();
	if (!bytes) {
		fprintf(stderr, "bench-startup-exec: %s printed nothing (wait status 0x%x)\n", label,
			st);
		return 1;
	}
	printf("RESULT startup %s first_byte_ms=%.3f exit_ms=%.3f maxrss_kib=%ld status=%d bytes=%llu\n",
	       label, (double)(t_first - t_exec) / 1e6, (double)(t_end - t_exec) / 1e6,
	       ru.ru_maxrss, WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st),
	       (unsigned long long)bytes);
	return 0;
}
