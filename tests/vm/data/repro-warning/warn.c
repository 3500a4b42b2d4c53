/* A stand-in for a syzkaller C reproducer: LKDTM's WARNING, written once. */
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

int main(void)
{
	const char *what = "WARNING";
	int fd = open("/sys/kernel/debug/provoke-crash/DIRECT", O_WRONLY);

	if (fd < 0) {
		perror("provoke-crash/DIRECT");
		return 1;
	}
	if (write(fd, what, strlen(what)) < 0)
		perror("write");
	close(fd);
	return 0;
}
