// SPDX-License-Identifier: GPL-2.0
/*
 * mptcp-lab bundle pm-add-addr-timer-sk-leak: a connection that is reset while the server
 * still retransmits an ADD_ADDR, written from the description of upstream commit
 * 9634cb35af17 ("mptcp: pm: ADD_ADDR rtx: always decrease sk refcount").
 *
 *   repro server PORT HOLD_S   on the server host: accept one MPTCP connection, read until
 *                              it is reset, keep the socket HOLD_S seconds more, close it
 *   repro client ADDR PORT     on the client host: connect, send one byte, wait, then
 *                              close with SO_LINGER 0, which MPTCP sends as MP_FASTCLOSE
 *
 * The server's in-kernel PM announces its 'signal' endpoint once the connection is fully
 * established, and arms the ADD_ADDR retransmission timer, which holds a reference on the
 * msk. The client runs the userspace PM without a daemon, so it never echoes the ADD_ADDR
 * and the timer stays armed. The MP_FASTCLOSE puts the server's msk in TCP_CLOSE while
 * the application still holds it; the timer fires in that state. Without the fix, it
 * returns without releasing its reference: once the application closes, the msk is never
 * freed, and kmemleak reports it (allocated by sk_clone_lock() from
 * mptcp_sk_clone_init()).
 *
 * C rather than Python: in the VM (TCG, root over 9p) Python needs seconds to start.
 * Exit status 1 when a step fails as seen from userspace; the leak is for the harness.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#ifndef IPPROTO_MPTCP
#define IPPROTO_MPTCP 262
#endif

#define CONNECT_DEADLINE_S 30	/* the server starts in the background meanwhile */
#define ANNOUNCE_WAIT_US 1500000	/* for the ADD_ADDR to be sent (slow debug kernels) */

static struct timespec started;

static double since_start(void)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return (now.tv_sec - started.tv_sec) + (now.tv_nsec - started.tv_nsec) / 1e9;
}

static void report(const char *fmt, ...)
{
	va_list ap;

	printf("%6.2f s  ", since_start());
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	putchar('\n');
	fflush(stdout);
}

static _Noreturn void fail(const char *what)
{
	fprintf(stderr, "repro: %s: %s\n", what, strerror(errno));
	exit(1);
}

static struct sockaddr_in address(const char *addr, unsigned int port)
{
	struct sockaddr_in sin = { .sin_family = AF_INET, .sin_port = htons(port) };

	if (inet_pton(AF_INET, addr, &sin.sin_addr) != 1) {
		errno = EINVAL;
		fail(addr);
	}
	return sin;
}

static int server(unsigned int port, unsigned int hold_s)
{
	struct sockaddr_in any = address("0.0.0.0", port);
	int one = 1, fd, conn;
	char buf[512];
	ssize_t got;

	fd = socket(AF_INET, SOCK_STREAM, IPPROTO_MPTCP);
	if (fd < 0)
		fail("socket(IPPROTO_MPTCP)");
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, (void *)&any, sizeof(any)) < 0 || listen(fd, 1) < 0)
		fail("listen");
	report("listening on port %u", port);
	conn = accept(fd, NULL, NULL);
	if (conn < 0)
		fail("accept");
	report("connection accepted");
	while ((got = recv(conn, buf, sizeof(buf), 0)) > 0)
		report("received %zd byte(s)", got);
	if (got == 0)
		report("end of stream (no reset)");
	else
		report("reset: %s", strerror(errno));
	report("holding the closed socket for %u s", hold_s);
	sleep(hold_s);
	close(conn);
	close(fd);
	report("closed");
	return 0;
}

static int client(const char *addr, unsigned int port)
{
	struct sockaddr_in peer = address(addr, port);
	struct linger abort_on_close = { .l_onoff = 1, .l_linger = 0 };
	int fd = -1;

	while (since_start() < CONNECT_DEADLINE_S) {
		fd = socket(AF_INET, SOCK_STREAM, IPPROTO_MPTCP);
		if (fd < 0)
			fail("socket(IPPROTO_MPTCP)");
		if (connect(fd, (void *)&peer, sizeof(peer)) == 0)
			break;
		if (errno != ECONNREFUSED)
			fail("connect");
		close(fd);
		fd = -1;
		usleep(100000);
	}
	if (fd < 0)
		fail("connect: no listener");
	report("connected to %s:%u", addr, port);
	if (send(fd, "x", 1, 0) != 1)
		fail("send");
	usleep(ANNOUNCE_WAIT_US);
	if (setsockopt(fd, SOL_SOCKET, SO_LINGER, &abort_on_close, sizeof(abort_on_close)) < 0)
		fail("SO_LINGER");
	close(fd);
	report("closed with SO_LINGER 0 (MP_FASTCLOSE)");
	return 0;
}

int main(int argc, char **argv)
{
	clock_gettime(CLOCK_MONOTONIC, &started);
	if (argc == 4 && !strcmp(argv[1], "server"))
		return server(atoi(argv[2]), atoi(argv[3]));
	if (argc == 4 && !strcmp(argv[1], "client"))
		return client(argv[2], atoi(argv[3]));
	fprintf(stderr, "usage: %s server PORT HOLD_S | client ADDR PORT\n", argv[0]);
	return 2;
}
