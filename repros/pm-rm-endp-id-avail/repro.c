// SPDX-License-Identifier: GPL-2.0
/*
 * mptcp-lab bundle pm-rm-endp-id-avail: the sequence of mptcp_net-next issue #606
 * (found by syzkaller, fixed by d191101dee25 "mptcp: pm: in-kernel: always set ID as
 * avail when rm endp"), written from its description.
 *
 *   repro server PORT   an MPTCP listener that echoes, on the server host
 *   repro client        the trigger, on the client host, with its in-kernel PM:
 *
 * 1. an endpoint without flags for the client's first address, ID 1;
 * 2. an MPTCP connection from that address, one round trip of data (fully established);
 * 3. another endpoint (ID 2): the PM visits the connection and accounts ID 1 as the
 *    endpoint of its initial subflow, i.e. "used" by that connection;
 * 4. endpoints 1 and 2 removed: the initial subflow is closed. Without the fix, ID 1 is
 *    not marked as available again for the connection (neither 'subflow' nor announced);
 * 5. ID 1 created again, with the 'subflow' flag, on the client's other address;
 * 6. 'fullmesh' set on it: the PM releases ID 1 for the connection, finds it marked as
 *    used and decrements local_addr_used, which is 0: WARN_ON_ONCE() in
 *    __mark_subflow_endp_available().
 *
 * C rather than Python: in the VM (TCG, root over 9p) Python needs seconds to start.
 * Exit status 1 when a step fails as seen from userspace; the warning is for the harness.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <linux/genetlink.h>
#include <linux/mptcp.h>
#include <linux/netlink.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#ifndef IPPROTO_MPTCP
#define IPPROTO_MPTCP 262
#endif

#define SERVER_ADDR "10.0.1.2"
#define FIRST_ADDR "10.0.1.1"	/* the client's address on its first link */
#define OTHER_ADDR "10.0.2.1"	/* ... and on its second link */
#define PORT 10606
#define ENDP_ID 1
#define HELPER_ID 2
#define CONNECT_DEADLINE_S 30	/* the server starts in the background meanwhile */

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

/* ---- generic netlink: just enough to talk to the "mptcp_pm" family ---- */

struct msg {
	struct nlmsghdr nlh;
	struct genlmsghdr genl;
	char attrs[256];
};

static int nl_fd;
static uint16_t pm_family;
static uint32_t seq;

static void *put_attr(struct msg *m, uint16_t type, const void *data, size_t len)
{
	struct nlattr *nla = (void *)((char *)m + NLMSG_ALIGN(m->nlh.nlmsg_len));

	nla->nla_type = type;
	nla->nla_len = NLA_HDRLEN + len;
	if (len)
		memcpy((char *)nla + NLA_HDRLEN, data, len);
	m->nlh.nlmsg_len = NLMSG_ALIGN(m->nlh.nlmsg_len) + NLA_ALIGN(nla->nla_len);
	return nla;
}

static void end_nest(struct msg *m, struct nlattr *nest)
{
	nest->nla_len = (char *)m + m->nlh.nlmsg_len - (char *)nest;
}

static void start(struct msg *m, uint16_t family, uint8_t cmd, uint8_t version)
{
	memset(m, 0, sizeof(*m));
	m->nlh.nlmsg_len = NLMSG_LENGTH(GENL_HDRLEN);
	m->nlh.nlmsg_type = family;
	m->nlh.nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK;
	m->nlh.nlmsg_seq = ++seq;
	m->genl.cmd = cmd;
	m->genl.version = version;
}

/* Send m; wait for its ack. If reply is given, the first answer is copied there. */
static int transact(struct msg *m, char *reply, size_t reply_len)
{
	char buf[8192];
	int got_reply = 0;

	if (send(nl_fd, m, m->nlh.nlmsg_len, 0) < 0)
		die("netlink send");
	for (;;) {
		ssize_t len = recv(nl_fd, buf, sizeof(buf), 0);
		struct nlmsghdr *h;

		if (len < 0)
			die("netlink recv");
		for (h = (void *)buf; NLMSG_OK(h, len); h = NLMSG_NEXT(h, len)) {
			if (h->nlmsg_seq != m->nlh.nlmsg_seq)
				continue;
			if (h->nlmsg_type == NLMSG_ERROR) {
				struct nlmsgerr *err = NLMSG_DATA(h);

				errno = -err->error;
				return err->error ? -1 : 0;
			}
			if (reply && !got_reply) {
				memcpy(reply, h, h->nlmsg_len < reply_len ? h->nlmsg_len : reply_len);
				got_reply = 1;
			}
		}
	}
}

static void resolve_pm_family(void)
{
	struct msg m;
	char reply[4096];
	struct nlmsghdr *h = (void *)reply;
	struct nlattr *nla;
	int left;

	start(&m, GENL_ID_CTRL, CTRL_CMD_GETFAMILY, 1);
	put_attr(&m, CTRL_ATTR_FAMILY_NAME, MPTCP_PM_NAME, sizeof(MPTCP_PM_NAME));
	if (transact(&m, reply, sizeof(reply)) < 0)
		die("genl family " MPTCP_PM_NAME);
	nla = (void *)((char *)NLMSG_DATA(h) + GENL_HDRLEN);
	left = h->nlmsg_len - NLMSG_LENGTH(GENL_HDRLEN);
	for (; left >= NLA_HDRLEN; left -= NLA_ALIGN(nla->nla_len),
	     nla = (void *)((char *)nla + NLA_ALIGN(nla->nla_len))) {
		if (nla->nla_type == CTRL_ATTR_FAMILY_ID) {
			memcpy(&pm_family, (char *)nla + NLA_HDRLEN, sizeof(pm_family));
			return;
		}
	}
	errno = ENOENT;
	die("genl family " MPTCP_PM_NAME " has no id");
}

/* One endpoint command: addr may be NULL (by ID only), flags < 0: no flags attribute. */
static int endpoint_cmd(uint8_t cmd, const char *addr, uint8_t id, int flags,
			char *reply, size_t reply_len)
{
	struct nlattr *nest;
	struct msg m;

	start(&m, pm_family, cmd, MPTCP_PM_VER);
	if (cmd != MPTCP_PM_CMD_FLUSH_ADDRS) {
		nest = put_attr(&m, MPTCP_PM_ATTR_ADDR | NLA_F_NESTED, NULL, 0);
		if (addr) {
			uint16_t family = AF_INET;
			struct in_addr in;

			inet_pton(AF_INET, addr, &in);
			put_attr(&m, MPTCP_PM_ADDR_ATTR_FAMILY, &family, sizeof(family));
			put_attr(&m, MPTCP_PM_ADDR_ATTR_ADDR4, &in, sizeof(in));
		}
		put_attr(&m, MPTCP_PM_ADDR_ATTR_ID, &id, sizeof(id));
		if (flags >= 0) {
			uint32_t value = flags;

			put_attr(&m, MPTCP_PM_ADDR_ATTR_FLAGS, &value, sizeof(value));
		}
		end_nest(&m, nest);
	}
	return transact(&m, reply, reply_len);
}

static void must(int ret, const char *what)
{
	if (ret < 0)
		die(what);
}

/* The flags of endpoint `id`, from MPTCP_PM_CMD_GET_ADDR. */
static uint32_t endpoint_flags(uint8_t id)
{
	char reply[1024];
	struct nlmsghdr *h = (void *)reply;
	struct nlattr *top, *nla;
	uint32_t flags = 0;
	int left;

	must(endpoint_cmd(MPTCP_PM_CMD_GET_ADDR, NULL, id, -1, reply, sizeof(reply)),
	     "get endpoint");
	top = (void *)((char *)NLMSG_DATA(h) + GENL_HDRLEN);	/* MPTCP_PM_ATTR_ADDR */
	nla = (void *)((char *)top + NLA_HDRLEN);
	for (left = top->nla_len - NLA_HDRLEN; left >= NLA_HDRLEN;
	     left -= NLA_ALIGN(nla->nla_len),
	     nla = (void *)((char *)nla + NLA_ALIGN(nla->nla_len))) {
		if ((nla->nla_type & NLA_TYPE_MASK) == MPTCP_PM_ADDR_ATTR_FLAGS)
			memcpy(&flags, (char *)nla + NLA_HDRLEN, sizeof(flags));
	}
	return flags;
}

/* ---- the connection ---- */

static struct sockaddr_in inet(const char *addr, uint16_t port)
{
	struct sockaddr_in sin = { .sin_family = AF_INET, .sin_port = htons(port) };

	inet_pton(AF_INET, addr, &sin.sin_addr);
	return sin;
}

static int connect_from_first_addr(void)
{
	struct sockaddr_in local = inet(FIRST_ADDR, 0), server = inet(SERVER_ADDR, PORT);
	int fd;

	for (;;) {
		fd = socket(AF_INET, SOCK_STREAM, IPPROTO_MPTCP);
		if (fd < 0)
			die("MPTCP socket");
		if (bind(fd, (void *)&local, sizeof(local)) < 0)
			die("bind to " FIRST_ADDR);
		if (connect(fd, (void *)&server, sizeof(server)) == 0)
			return fd;
		if (errno != ECONNREFUSED || elapsed() > CONNECT_DEADLINE_S)
			die("connect to " SERVER_ADDR);
		close(fd);
		usleep(100 * 1000);
	}
}

static void round_trip(int fd)
{
	static const char payload[] = "mptcp-lab #606";
	char echoed[sizeof(payload)];
	size_t got = 0;

	if (send(fd, payload, sizeof(payload), 0) != sizeof(payload))
		die("send");
	while (got < sizeof(payload)) {
		ssize_t n = recv(fd, echoed + got, sizeof(payload) - got, 0);

		if (n <= 0) {
			errno = n ? errno : ECONNRESET;
			die("recv the echo");
		}
		got += n;
	}
	if (memcmp(echoed, payload, sizeof(payload))) {
		fprintf(stderr, "repro: the echo differs from what was sent\n");
		exit(1);
	}
}

static int client(void)
{
	int fd;

	nl_fd = socket(AF_NETLINK, SOCK_RAW, NETLINK_GENERIC);
	if (nl_fd < 0)
		die("netlink socket");
	resolve_pm_family();
	say("started");
	must(endpoint_cmd(MPTCP_PM_CMD_FLUSH_ADDRS, NULL, 0, -1, NULL, 0), "flush");
	must(endpoint_cmd(MPTCP_PM_CMD_ADD_ADDR, FIRST_ADDR, ENDP_ID, 0, NULL, 0),
	     "add endpoint 1");
	say("1. endpoint %d %s, no flags", ENDP_ID, FIRST_ADDR);
	fd = connect_from_first_addr();
	round_trip(fd);
	say("2. connected from %s to %s, data echoed", FIRST_ADDR, SERVER_ADDR);
	must(endpoint_cmd(MPTCP_PM_CMD_ADD_ADDR, OTHER_ADDR, HELPER_ID, 0, NULL, 0),
	     "add endpoint 2");
	say("3. endpoint %d %s, no flags", HELPER_ID, OTHER_ADDR);
	must(endpoint_cmd(MPTCP_PM_CMD_DEL_ADDR, NULL, ENDP_ID, -1, NULL, 0), "delete endpoint 1");
	must(endpoint_cmd(MPTCP_PM_CMD_DEL_ADDR, NULL, HELPER_ID, -1, NULL, 0),
	     "delete endpoint 2");
	say("4. endpoints %d and %d removed", ENDP_ID, HELPER_ID);
	must(endpoint_cmd(MPTCP_PM_CMD_ADD_ADDR, OTHER_ADDR, ENDP_ID,
			  MPTCP_PM_ADDR_FLAG_SUBFLOW, NULL, 0), "re-create endpoint 1");
	say("5. endpoint %d %s, subflow", ENDP_ID, OTHER_ADDR);
	must(endpoint_cmd(MPTCP_PM_CMD_SET_FLAGS, NULL, ENDP_ID, MPTCP_PM_ADDR_FLAG_FULLMESH,
			  NULL, 0), "set fullmesh");
	say("6. endpoint %d flags now %#x (subflow %#x, fullmesh %#x)", ENDP_ID,
	    endpoint_flags(ENDP_ID), MPTCP_PM_ADDR_FLAG_SUBFLOW, MPTCP_PM_ADDR_FLAG_FULLMESH);
	close(fd);
	must(endpoint_cmd(MPTCP_PM_CMD_FLUSH_ADDRS, NULL, 0, -1, NULL, 0), "flush");
	return 0;
}

/* ---- the server ---- */

static _Noreturn void server(uint16_t port)
{
	struct sockaddr_in any = inet("0.0.0.0", port);
	int one = 1, fd, conn;
	char buf[4096];
	ssize_t n;

	fd = socket(AF_INET, SOCK_STREAM, IPPROTO_MPTCP);
	if (fd < 0)
		die("MPTCP socket");
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, (void *)&any, sizeof(any)) < 0 || listen(fd, 8) < 0)
		die("listen");
	say("listening on port %u", port);
	for (;;) {
		conn = accept(fd, NULL, NULL);
		if (conn < 0)
			die("accept");
		say("connection accepted");
		while ((n = recv(conn, buf, sizeof(buf), 0)) > 0)
			if (send(conn, buf, n, 0) != n)
				break;
		close(conn);
	}
}

int main(int argc, char *argv[])
{
	clock_gettime(CLOCK_MONOTONIC, &started);
	if (argc == 3 && !strcmp(argv[1], "server"))
		server(atoi(argv[2]));
	if (argc == 2 && !strcmp(argv[1], "client"))
		return client();
	fprintf(stderr, "usage: %s server PORT | client\n", argv[0]);
	return 2;
}
