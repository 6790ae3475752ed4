// SPDX-License-Identifier: BSD-2-Clause
/* A stand-in for OpenSSL linked into a program, for tests/e2e/tls_static.sh: it exports
 * ssl_log_secret(conn, label, secret, len) and an SSL_get_client_random that shows where the
 * connection keeps its client random (conn + 0x160), as OpenSSL 3.0 does. It logs one TLS 1.2
 * secret whose label lives in a page of a file it mapped and never touched: the first read of
 * that page is the probe's, which must fault it in (a process that just started has not mapped
 * most of its library's read-only data either). Prints the key log line it logged.
 *   logger_fault LABELFILE      logger_fault idle */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

__asm__(".globl SSL_get_client_random\n.type SSL_get_client_random,@function\n"
        "SSL_get_client_random:\n  lea 0x160(%rdi),%rax\n  ret\n");

volatile unsigned char sink;
__attribute__((noinline, used)) int ssl_log_secret(void *s, const char *label, const unsigned char *secret, size_t len) {
  sink = ((const unsigned char *)s)[0x160] ^ (unsigned char)len ^ (unsigned char)(size_t)label ^ secret[0];
  return 1;
}

int main(int argc, char **argv) {
  if (argc > 1 && !strcmp(argv[1], "idle")) { for (;;) pause(); }
  if (argc < 2) return 2;
  int fd = open(argv[1], O_RDONLY);
  if (fd < 0) return 3;
  const char *label = mmap(NULL, 4096, PROT_READ, MAP_PRIVATE, fd, 0);  /* not touched here */
  if (label == MAP_FAILED) return 4;
  unsigned char *conn = calloc(1, 0x200), secret[48];
  FILE *r = fopen("/dev/urandom", "rb");
  if (!conn || !r || fread(conn + 0x160, 1, 32, r) != 32 || fread(secret, 1, 48, r) != 48) return 5;
  fclose(r);
  ssl_log_secret(conn, label, secret, sizeof secret);
  printf("CLIENT_RANDOM ");
  for (int i = 0; i < 32; i++) printf("%02x", conn[0x160 + i]);
  printf(" ");
  for (int i = 0; i < 48; i++) printf("%02x", secret[i]);
  printf("\n");
  return 0;
}
