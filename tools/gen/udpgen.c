// SPDX-License-Identifier: BSD-2-Clause
/* udpgen: fixed-duration UDP load for the capture benchmarks (tools/bench-capture.sh).
 *
 *   udpgen -d DST_IP -p PORT [-t SECONDS] [-s PAYLOAD_BYTES] [-n SENDERS] [-b BATCH]
 *
 * SENDERS threads, each with its own connected socket (so its own source port, flow and
 * usually CPU), send BATCH datagrams per sendmmsg(2) call until SECONDS have passed.
 * The frame on the wire is PAYLOAD_BYTES + 42 (Ethernet + IPv4 + UDP); bench-capture.sh passes
 * 1358 for 1400-B frames and 22 for 64-B frames. ENOBUFS/EAGAIN are counted, not fatal.
 * Last line: "udpgen: sent=N errors=E seconds=S pps=P" (sent = datagrams the kernel accepted). */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_BATCH 256
#define MAX_SENDERS 64

struct sender {
	pthread_t thread;
	struct sockaddr_in dst;
	size_t payload_bytes;
	unsigned batch;
	double seconds;
	uint64_t sent, errors;
	int rc;
};

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void *run(void *arg)
{
	struct sender *s = arg;
	int fd = socket(AF_INET, SOCK_DGRAM, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&s->dst, sizeof(s->dst)) != 0) {
		perror("udpgen: socket/connect");
		s->rc = 1;
		return NULL;
	}
	char *buf = calloc(1, s->payload_bytes ? s->payload_bytes : 1);
	struct iovec iov[MAX_BATCH];
	struct mmsghdr msgs[MAX_BATCH];
	memset(msgs, 0, sizeof(msgs));
	for (unsigned i = 0; i < s->batch; i++) {
		iov[i].iov_base = buf;
		iov[i].iov_len = s->payload_bytes;
		msgs[i].msg_hdr.msg_iov = &iov[i];
		msgs[i].msg_hdr.msg_iovlen = 1;
	}
	double end = now_s() + s->seconds;
	unsigned calls = 0;
	/* Checking the clock every 16 calls keeps clock_gettime out of the profile. */
	for (;;) {
		if ((calls++ & 15) == 0 && now_s() >= end)
			break;
		int n = sendmmsg(fd, msgs, s->batch, 0);
		if (n > 0)
			s->sent += (uint64_t)n;
		else if (n < 0 && errno != EINTR)
			s->errors++;
	}
	free(buf);
	close(fd);
	return NULL;
}

static void usage(void)
{
	fprintf(stderr, "usage: udpgen -d DST_IP -p PORT [-t SECONDS] [-s PAYLOAD_BYTES] [-n SENDERS] [-b BATCH]\n");
}

int main(int argc, char **argv)
{
	const char *dst_ip = NULL;
	int port = 0, senders = 1, batch = 64, opt;
	double seconds = 5;
	long payload = 1358;
	while ((opt = getopt(argc, argv, "d:p:t:s:n:b:h")) != -1) {
		switch (opt) {
		case 'd': dst_ip = optarg; break;
		case 'p': port = atoi(optarg); break;
		case 't': seconds = atof(optarg); break;
		case 's': payload = atol(optarg); break;
		case 'n': senders = atoi(optarg); break;
		case 'b': batch = atoi(optarg); break;
		default: usage(); return 2;
		}
	}
	if (!dst_ip || port <= 0 || port > 65535 || seconds <= 0 || payload < 0 || payload > 65507 ||
	    senders < 1 || senders > MAX_SENDERS || batch < 1 || batch > MAX_BATCH) {
		usage();
		return 2;
	}
	struct sender s[MAX_SENDERS];
	memset(s, 0, sizeof(s));
	for (int i = 0; i < senders; i++) {
		s[i].dst.sin_family = AF_INET;
		s[i].dst.sin_port = htons((uint16_t)port);
		if (inet_pton(AF_INET, dst_ip, &s[i].dst.sin_addr) != 1) {
			fprintf(stderr, "udpgen: bad IPv4 address %s\n", dst_ip);
			return 2;
		}
		s[i].payload_bytes = (size_t)payload;
		s[i].batch = (unsigned)batch;
		s[i].seconds = seconds;
	}
	double t0 = now_s();
	for (int i = 0; i < senders; i++)
		if (pthread_create(&s[i].thread, NULL, run, &s[i]) != 0) {
			fprintf(stderr, "udpgen: pthread_create failed\n");
			return 1;
		}
	uint64_t sent = 0, errors = 0;
	int rc = 0;
	for (int i = 0; i < senders; i++) {
		pthread_join(s[i].thread, NULL);
		sent += s[i].sent;
		errors += s[i].errors;
		rc |= s[i].rc;
	}
	double secs = now_s() - t0;
	printf("udpgen: sent=%llu errors=%llu seconds=%.3f pps=%.0f\n", (unsigned long long)sent,
	       (unsigned long long)errors, secs, (double)sent / secs);
	return rc;
}
