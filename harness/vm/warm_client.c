/*
 * The warm Python's client (harness/vm/warm.py), in C: what CLIENT there does in Python,
 * without the 0.2-0.3 s that starting even `python3 -S -E` costs in the guest under
 * emulation. The guest runs it from the host's file system, where the host compiled it.
 *
 * usage: warm-client SOCKET PYTHON MODULE [ARG...]
 *
 * It connects to the server's Unix socket and sends one line of JSON, {"module", "args",
 * "cwd", "env"}, with its standard input, output and error passed along (SCM_RIGHTS);
 * then it waits for the line with the command's exit status and exits with it. Without a
 * server it becomes `PYTHON -m MODULE ARG...` itself.
 *
 * Strings go out as Python's own client would send them: valid UTF-8 as it is, every
 * other byte as the lone surrogate U+DC80+byte (Python's "surrogateescape"), so that the
 * command gets back exactly the bytes of each argument and variable.
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/socket.h>
#include <sys/un.h>

extern char **environ;

/* Length of the valid UTF-8 sequence at s (1-4), or 0 if the byte there starts none. */
static int utf8_length(const unsigned char *s)
{
	unsigned char b = s[0];
	int n;
	unsigned char low = 0x80, high = 0xbf;  /* allowed range of the second byte */

	if (b < 0x80)
		return 1;
	if (b >= 0xc2 && b <= 0xdf)
		n = 2;
	else if (b >= 0xe0 && b <= 0xef)
		n = 3;
	else if (b >= 0xf0 && b <= 0xf4)
		n = 4;
	else
		return 0;
	if (b == 0xe0)
		low = 0xa0;
	else if (b == 0xed)
		high = 0x9f;  /* no UTF-16 surrogates */
	else if (b == 0xf0)
		low = 0x90;
	else if (b == 0xf4)
		high = 0x8f;  /* nothing above U+10FFFF */
	if (s[1] < low || s[1] > high)
		return 0;
	for (int i = 2; i < n; i++)
		if (s[i] < 0x80 || s[i] > 0xbf)
			return 0;
	return n;
}

static void put_string(FILE *out, const char *text)
{
	const unsigned char *s = (const unsigned char *)text;

	fputc('"', out);
	while (*s) {
		int n = utf8_length(s);

		if (n == 0) {
			fprintf(out, "\\udc%02x", *s);
			s++;
		} else if (*s == '"' || *s == '\\') {
			fprintf(out, "\\%c", *s);
			s++;
		} else if (*s < 0x20) {
			fprintf(out, "\\u%04x", *s);
			s++;
		} else {
			fwrite(s, 1, n, out);
			s += n;
		}
	}
	fputc('"', out);
}

/* The request line; its length in *size. */
static char *request(int argc, char **argv, size_t *size)
{
	char *text = NULL, *cwd = getcwd(NULL, 0);
	FILE *out = open_memstream(&text, size);

	if (!out || !cwd) {
		perror("warm-client");
		exit(1);
	}
	fputs("{\"module\": ", out);
	put_string(out, argv[3]);
	fputs(", \"args\": [", out);
	for (int i = 4; i < argc; i++) {
		if (i > 4)
			fputs(", ", out);
		put_string(out, argv[i]);
	}
	fputs("], \"cwd\": ", out);
	put_string(out, cwd);
	fputs(", \"env\": {", out);
	for (char **var = environ; *var; var++) {
		char *equals = strchr(*var, '=');

		if (!equals)
			continue;
		*equals = '\0';
		if (var != environ)
			fputs(", ", out);
		put_string(out, *var);
		fputs(": ", out);
		put_string(out, equals + 1);
		*equals = '=';
	}
	fputs("}}\n", out);
	fclose(out);
	free(cwd);
	return text;
}

/* Send the request, the three standard descriptors with its first byte. */
static int send_request(int sock, const char *text, size_t size)
{
	int fds[3] = {0, 1, 2};
	char control[CMSG_SPACE(sizeof(fds))] = {0};
	struct iovec iov = {.iov_base = (void *)text, .iov_len = size};
	struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = control,
			     .msg_controllen = sizeof(control)};
	struct cmsghdr *cmsg = CMSG_FIRSTHDR(&msg);
	ssize_t sent;

	cmsg->cmsg_level = SOL_SOCKET;
	cmsg->cmsg_type = SCM_RIGHTS;
	cmsg->cmsg_len = CMSG_LEN(sizeof(fds));
	memcpy(CMSG_DATA(cmsg), fds, sizeof(fds));
	sent = sendmsg(sock, &msg, 0);
	if (sent < 0)
		return -1;
	while ((size_t)sent < size) {
		ssize_t more = send(sock, text + sent, size - sent, 0);

		if (more < 0)
			return -1;
		sent += more;
	}
	return 0;
}

int main(int argc, char **argv)
{
	struct sockaddr_un addr = {.sun_family = AF_UNIX};
	char reply[32];
	size_t size, got = 0;
	char *text;
	int sock;

	if (argc < 4 || strlen(argv[1]) >= sizeof(addr.sun_path)) {
		fprintf(stderr, "usage: warm-client SOCKET PYTHON MODULE [ARG...]\n");
		return 2;
	}
	strcpy(addr.sun_path, argv[1]);
	sock = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (sock < 0 || connect(sock, (struct sockaddr *)&addr, sizeof(addr)) < 0) {
		/* no server: PYTHON -m MODULE ARG..., in the place of argv[0..2] */
		argv[1] = argv[2];
		argv[2] = "-m";
		execv(argv[1], argv + 1);
		perror(argv[1]);
		return 127;
	}
	text = request(argc, argv, &size);
	if (send_request(sock, text, size) < 0) {
		perror("warm-client: send");
		return 1;
	}
	free(text);
	while (got < sizeof(reply) - 1) {
		ssize_t n = read(sock, reply + got, sizeof(reply) - 1 - got);

		if (n <= 0)
			break;
		got += n;
		if (reply[got - 1] == '\n')
			break;
	}
	if (got == 0 || reply[got - 1] != '\n') {
		fprintf(stderr, "mptcp-lab warm server: the connection closed without an exit status\n");
		return 1;
	}
	reply[got] = '\0';
	return atoi(reply);
}
