// SPDX-License-Identifier: BSD-2-Clause
// UDP flood with sendmmsg for the capture throughput test:
//   capture_udp_flood DST_IP PORT SECONDS PAYLOAD_BYTES  -> prints "sent=N seconds=S"
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

int main(int argc, char** argv) {
  if (argc != 5) {
    fprintf(stderr, "usage: %s DST_IP PORT SECONDS PAYLOAD_BYTES\n", argv[0]);
    return 2;
  }
  sockaddr_in dst{};
  dst.sin_family = AF_INET;
  dst.sin_port = htons(uint16_t(atoi(argv[2])));
  if (inet_pton(AF_INET, argv[1], &dst.sin_addr) != 1) {
    fprintf(stderr, "bad address %s\n", argv[1]);
    return 2;
  }
  double seconds = atof(argv[3]);
  size_t len = size_t(atoi(argv[4]));
  int s = socket(AF_INET, SOCK_DGRAM, 0);
  if (s < 0 || connect(s, reinterpret_cast<sockaddr*>(&dst), sizeof(dst)) != 0) {
    perror("socket/connect");
    return 1;
  }
  constexpr int kBatch = 64;
  std::vector<char> buf(len, 'x');
  iovec iov[kBatch];
  mmsghdr msgs[kBatch];
  memset(msgs, 0, sizeof(msgs));
  for (int i = 0; i < kBatch; i++) {
    iov[i] = {buf.data(), len};
    msgs[i].msg_hdr.msg_iov = &iov[i];
    msgs[i].msg_hdr.msg_iovlen = 1;
  }
  uint64_t sent = 0;
  auto t0 = std::chrono::steady_clock::now();
  auto end = t0 + std::chrono::duration<double>(seconds);
  while (std::chrono::steady_clock::now() < end) {
    int n = sendmmsg(s, msgs, kBatch, 0);
    if (n > 0) sent += uint64_t(n);
  }
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  printf("sent=%llu seconds=%.3f\n", (unsigned long long)sent, secs);
  return 0;
}
