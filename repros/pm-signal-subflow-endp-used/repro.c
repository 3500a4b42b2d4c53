// SPDX-License-Identifier: GPL-2.0
/*
 * mptcp-lab bundle pm-signal-subflow-endp-used: the sequence of mptcp_net-next issue #613
 * (found by syzkaller, fixed by 579a752464a6 "mptcp: pm: in-kernel: always mark
 * signal+subflow endp as used"; the selftest added with the fix, mptcp_join.sh "remove
 * signal+subflow with limits", does the same with a long transfer), written from its
 * description.
 *
 * The topology gives the server an endpoint 10.0.2.2 id 1 with the 'signal' and 'subflow'
 * flags, and limits of 0 subflows on both hosts.
 *
 *   repro client   on the client host, in the background: one MPTCP connection to the
 *                  server, one round trip of data, then held open until the server closes;
 *   repro server   on the server host: accept it, echo, wait until the PM has announced
 *                  the endpoint (ADD_ADDR), then remove the endpoint.
 *
 * Announcing the endpoint marks its ID as used by the connection; no subflow may be
 * created, and without the fix local_addr_used is then not incremented (MPTCP_INFO shows
 * it: 0 instead of 1). Removing the endpoint releases the ID and decrements a counter that
 * is already 0: WARN_ON_ONCE() in __mark_subflow_endp_available().
 *
 * C rather than Python: in the VM (TCG, root over 9p) Python needs seconds to start.
 * Exit status 1 when a step fails as seen from userspace; the warning is for the harness.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <linux/mptcp.h>
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
#ifndef SOL_MPTCP
#define SOL_MPTCP 284
#endif

#define SERVER_ADDR "10.0.1.2"
#define PORT 10613
#define REMOVE_ENDPOINT "ip mptcp endpoint delete id 1"	/* the topology's endpoint */
#define DEADLINE_S 30	/* for the listener to appear, and for the announce */

static const char payload[] = "mptcp-lab #613";
static struct timespec started;

static double elapsed(void)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return (now.tv_sec - started.tv_sec) + (now.tv_nsec - started.tv_nsec) / 1e9;
}

static void say(const char *fmt, ...)
{
	va_list ap;

	printf("%6.2f s  ", elapsed());
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	putchar('\n');
	fflush(stdout);
}

static _Noreturn void die(const char *what)
{
	fprintf(stderr, "repro: %s: %s\n", what, strerror(errno));
	exit(1);
}

static void recv_exactly(int fd, char *buf, size_t len)
{
	size_t got = 0;

	while (got < len) {
		ssize_t n = recv(fd, buf + got, len - got, 0);

		if (n <= 0) {
			errno = n ? errno : ECONNRESET;
			die("recv");
		}
		got += n;
	}
}

static struct mptcp_info mptcp_info(int fd)
{
	struct mptcp_info info;
	socklen_t len = sizeof(info);

	memset(&info, 0, sizeof(info));
	if (getsockopt(fd, SOL_MPTCP, MPTCP_INFO, &info, &len) < 0)
		die("getsockopt(MPTCP_INFO)");
	return info;
}

static int client(void)
{
	struct sockaddr_in server = { .sin_family = AF_INET, .sin_port = htons(PORT) };
	char buf[sizeof(payload)];
	int fd;

	inet_pton(AF_INET, SERVER_ADDR, &server.sin_addr);
	for (;;) {
		fd = socket(AF_INET, SOCK_STREAM, IPPROTO_MPTCP);
		if (fd < 0)
			die("MPTCP socket");
		if (connect(fd, (void *)&server, sizeof(server)) == 0)
			break;
		if (errno != ECONNREFUSED || elapsed() > DEADLINE_S)
			die("connect to " SERVER_ADDR);
		close(fd);
		usleep(100 * 1000);
	}
	if (send(fd, payload, sizeof(payload), 0) != sizeof(payload))
		die("send");
	recv_exactly(fd, buf, sizeof(buf));
	say("connected to %s, data echoed; waiting for the server to close", SERVER_ADDR);
	while (recv(fd, buf, sizeof(buf), 0) > 0)
		;
	say("closed by the server");
	return 0;
}

static int server(void)
{
	struct sockaddr_in any = { .sin_family = AF_INET, .sin_port = htons(PORT) };
	char buf[sizeof(payload)];
	struct mptcp_info info;
	int one = 1, fd, conn, status;

	fd = socket(AF_INET, SOCK_STREAM, IPPROTO_MPTCP);
	if (fd < 0)
		die("MPTCP socket");
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, (void *)&any, sizeof(any)) < 0 || listen(fd, 1) < 0)
		die("listen");
	say("listening on port %d", PORT);
	conn = accept(fd, NULL, NULL);
	if (conn < 0)
		die("accept");
	recv_exactly(conn, buf, sizeof(buf));
	if (send(conn, buf, sizeof(buf), 0) != sizeof(buf))
		die("send");
	say("1. connection accepted, data echoed");
	for (info = mptcp_info(conn); !info.mptcpi_add_addr_signal; info = mptcp_info(conn)) {
		if (elapsed() > DEADLINE_S) {
			fprintf(stderr, "repro: the endpoint was never announced\n");
			return 1;
		}
		usleep(20 * 1000);
	}
	say("2. endpoint announced: add_addr_signal %u, subflows %u (max %u), "
	    "local_addr_used %u (1 with the fix, 0 without)", info.mptcpi_add_addr_signal,
	    info.mptcpi_subflows, info.mptcpi_subflows_max, info.mptcpi_local_addr_used);
	status = system(REMOVE_ENDPOINT);
	if (status != 0) {
		fprintf(stderr, "repro: '%s' failed (status %d)\n", REMOVE_ENDPOINT, status);
		return 1;
	}
	info = mptcp_info(conn);
	say("3. endpoint removed: add_addr_signal %u, local_addr_used %u",
	    info.mptcpi_add_addr_signal, info.mptcpi_local_addr_used);
	close(conn);
	close(fd);
	return 0;
}

int main(int argc, char *argv[])
{
	clock_gettime(CLOCK_MONOTONIC, &started);
	if (argc == 2 && !strcmp(argv[1], "server"))
		return server();
	if (argc == 2 && !strcmp(argv[1], "client"))
		return client();
	fprintf(stderr, "usage: %s server | client\n", argv[0]);
	return 2;
}
