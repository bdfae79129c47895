/*
 * ref.c: the C reference for go run ./bench. It does with plain blocking
 * mq_send/mq_receive (glibc, -lrt) what the Go children do with chanmq, and
 * prints its result as one "key=value ..." line. The queues are created and
 * unlinked by the Go side; this program only opens them.
 *
 *   ref pair   NAME SIZE N            per-op time of N send+receive pairs
 *   ref send   NAME SIZE N            send N messages as fast as possible
 *   ref recv   NAME SIZE N            receive N; time first to last message
 *   ref ping   NAME_A NAME_B SIZE N W W+N round trips, latencies of the last N
 *   ref pong   NAME_A NAME_B SIZE K   echo K messages from A to B
 */
#include <fcntl.h>
#include <mqueue.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static long long now_ns(void) {
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static mqd_t open_q(const char *name) {
	mqd_t q = mq_open(name, O_RDWR);
	if (q == (mqd_t)-1) {
		perror(name);
		exit(1);
	}
	return q;
}

static void must(int ok, const char *what) {
	if (!ok) {
		perror(what);
		exit(1);
	}
}

static int cmp_ll(const void *a, const void *b) {
	long long x = *(const long long *)a, y = *(const long long *)b;
	return (x > y) - (x < y);
}

int main(int argc, char **argv) {
	if (argc < 5) {
		fprintf(stderr, "usage: ref pair|send|recv NAME SIZE N | ping|pong A B SIZE N [W]\n");
		return 2;
	}
	const char *mode = argv[1];
	if (!strcmp(mode, "pair") || !strcmp(mode, "send") || !strcmp(mode, "recv")) {
		mqd_t q = open_q(argv[2]);
		size_t size = strtoul(argv[3], 0, 10);
		long n = strtol(argv[4], 0, 10);
		struct mq_attr attr;
		must(mq_getattr(q, &attr) == 0, "mq_getattr");
		char *msg = calloc(1, size + 1), *buf = malloc(attr.mq_msgsize);
		unsigned prio;
		if (!strcmp(mode, "pair")) {
			long long t0 = now_ns();
			for (long i = 0; i < n; i++) {
				must(mq_send(q, msg, size, 0) == 0, "mq_send");
				must(mq_receive(q, buf, attr.mq_msgsize, &prio) >= 0, "mq_receive");
			}
			printf("ns_per_op=%.1f\n", (double)(now_ns() - t0) / n);
		} else if (!strcmp(mode, "send")) {
			for (long i = 0; i < n; i++)
				must(mq_send(q, msg, size, 0) == 0, "mq_send");
			printf("sent=%ld\n", n);
		} else {
			long long t0 = 0;
			for (long i = 0; i < n; i++) {
				must(mq_receive(q, buf, attr.mq_msgsize, &prio) == (ssize_t)size, "mq_receive");
				if (i == 0)
					t0 = now_ns();
			}
			printf("msgs=%ld elapsed_ns=%lld\n", n - 1, now_ns() - t0);
		}
		return 0;
	}
	if (argc < 6) {
		fprintf(stderr, "usage: ref ping|pong A B SIZE N [W]\n");
		return 2;
	}
	mqd_t a = open_q(argv[2]), b = open_q(argv[3]);
	size_t size = strtoul(argv[4], 0, 10);
	long n = strtol(argv[5], 0, 10);
	struct mq_attr attr;
	must(mq_getattr(a, &attr) == 0, "mq_getattr");
	char *msg = calloc(1, size + 1), *buf = malloc(attr.mq_msgsize);
	unsigned prio;
	if (!strcmp(mode, "pong")) {
		for (long i = 0; i < n; i++) {
			ssize_t got = mq_receive(a, buf, attr.mq_msgsize, &prio);
			must(got >= 0, "mq_receive");
			must(mq_send(b, buf, got, 0) == 0, "mq_send");
		}
		printf("echoed=%ld\n", n);
		return 0;
	}
	if (strcmp(mode, "ping") || argc < 7) {
		fprintf(stderr, "unknown mode %s\n", mode);
		return 2;
	}
	long warm = strtol(argv[6], 0, 10);
	long long *lat = malloc(sizeof(long long) * n);
	for (long i = 0; i < warm + n; i++) {
		long long t0 = now_ns();
		must(mq_send(a, msg, size, 0) == 0, "mq_send");
		must(mq_receive(b, buf, attr.mq_msgsize, &prio) == (ssize_t)size, "mq_receive");
		if (i >= warm)
			lat[i - warm] = now_ns() - t0;
	}
	qsort(lat, n, sizeof lat[0], cmp_ll);
	printf("p50_ns=%lld p99_ns=%lld\n", lat[n / 2], lat[n * 99 / 100]);
	return 0;
}
