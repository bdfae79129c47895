/*
 * mqpeer: the C side of chanmq's interop test (interop_test.go). It uses
 * glibc's mq_* functions, so it proves that chanmq's raw syscalls agree
 * with C on names (passed with their leading slash), bytes, priorities and
 * struct mq_attr.
 *
 *   mqpeer recv NAME                    print "PRIO HEX\n" of one message
 *   mqpeer send NAME PRIO HEX           send one message
 *   mqpeer create NAME MAXMSG MSGSIZE   create the queue (O_EXCL, 0600)
 *   mqpeer attr NAME                    print "MAXMSG MSGSIZE CURMSGS\n"
 *
 * Blocking calls give up after 30 seconds so that a failed test never
 * leaves this process hanging. Exit status 0 on success, 1 on failure.
 */
#include <errno.h>
#include <fcntl.h>
#include <mqueue.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static int fail(const char *what) {
	fprintf(stderr, "mqpeer: %s: %s\n", what, strerror(errno));
	return 1;
}

static struct timespec patience(void) {
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += 30;
	return ts;
}

static int hexval(char c) {
	if (c >= '0' && c <= '9') return c - '0';
	if (c >= 'a' && c <= 'f') return c - 'a' + 10;
	if (c >= 'A' && c <= 'F') return c - 'A' + 10;
	return -1;
}

static int do_recv(const char *name) {
	mqd_t q = mq_open(name, O_RDONLY);
	if (q == (mqd_t)-1) return fail("mq_open");
	struct mq_attr attr;
	if (mq_getattr(q, &attr) != 0) return fail("mq_getattr");
	char *buf = malloc(attr.mq_msgsize);
	if (buf == NULL) return fail("malloc");
	unsigned prio;
	struct timespec ts = patience();
	ssize_t n = mq_timedreceive(q, buf, attr.mq_msgsize, &prio, &ts);
	if (n < 0) return fail("mq_timedreceive");
	printf("%u ", prio);
	for (ssize_t i = 0; i < n; i++) printf("%02x", (unsigned char)buf[i]);
	printf("\n");
	free(buf);
	return mq_close(q) == 0 ? 0 : fail("mq_close");
}

static int do_send(const char *name, const char *prio, const char *hex) {
	size_t len = strlen(hex) / 2;
	char *msg = malloc(len + 1);
	if (msg == NULL) return fail("malloc");
	for (size_t i = 0; i < len; i++) {
		int hi = hexval(hex[2 * i]), lo = hexval(hex[2 * i + 1]);
		if (hi < 0 || lo < 0) {
			fprintf(stderr, "mqpeer: bad hex %s\n", hex);
			return 1;
		}
		msg[i] = (char)(hi << 4 | lo);
	}
	mqd_t q = mq_open(name, O_WRONLY);
	if (q == (mqd_t)-1) return fail("mq_open");
	struct timespec ts = patience();
	if (mq_timedsend(q, msg, len, (unsigned)strtoul(prio, NULL, 10), &ts) != 0) return fail("mq_timedsend");
	free(msg);
	return mq_close(q) == 0 ? 0 : fail("mq_close");
}

static int do_create(const char *name, const char *maxmsg, const char *msgsize) {
	struct mq_attr attr = {0};
	attr.mq_maxmsg = strtol(maxmsg, NULL, 10);
	attr.mq_msgsize = strtol(msgsize, NULL, 10);
	mqd_t q = mq_open(name, O_RDWR | O_CREAT | O_EXCL, 0600, &attr);
	if (q == (mqd_t)-1) return fail("mq_open");
	return mq_close(q) == 0 ? 0 : fail("mq_close");
}

static int do_attr(const char *name) {
	mqd_t q = mq_open(name, O_RDONLY);
	if (q == (mqd_t)-1) return fail("mq_open");
	struct mq_attr attr;
	if (mq_getattr(q, &attr) != 0) return fail("mq_getattr");
	printf("%ld %ld %ld\n", (long)attr.mq_maxmsg, (long)attr.mq_msgsize, (long)attr.mq_curmsgs);
	return mq_close(q) == 0 ? 0 : fail("mq_close");
}

int main(int argc, char **argv) {
	if (argc == 3 && strcmp(argv[1], "recv") == 0) return do_recv(argv[2]);
	if (argc == 5 && strcmp(argv[1], "send") == 0) return do_send(argv[2], argv[3], argv[4]);
	if (argc == 5 && strcmp(argv[1], "create") == 0) return do_create(argv[2], argv[3], argv[4]);
	if (argc == 3 && strcmp(argv[1], "attr") == 0) return do_attr(argv[2]);
	fprintf(stderr, "usage: mqpeer recv NAME | send NAME PRIO HEX | create NAME MAXMSG MSGSIZE | attr NAME\n");
	return 2;
}
