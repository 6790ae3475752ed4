// SPDX-License-Identifier: BSD-2-Clause
// faults_tls_exit.sh helper: a TLS client that dlopen()s libssl for every request and
// dlclose()s it afterwards, so the traced library is mapped and unmapped under the uprobes.
//   faults_dlssl IP PORT COUNT -> one line per request: "dl-N ok unmapped=yes|no"
#include <arpa/inet.h>
#include <dlfcn.h>
#include <netinet/in.h>
#include <openssl/ssl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static int libssl_mapped(void) {
  FILE* f = fopen("/proc/self/maps", "r");
  char line[512];
  int found = 0;
  while (f && fgets(line, sizeof line, f))
    if (strstr(line, "libssl.so")) found = 1;
  if (f) fclose(f);
  return found;
}

#define SYM(name) __typeof__(&name) p_##name = (__typeof__(&name))dlsym(h, #name)

int main(int argc, char** argv) {
  if (argc != 4) return 2;
  int count = atoi(argv[3]);
  for (int i = 1; i <= count; i++) {
    void* h = dlopen("libssl.so.3", RTLD_NOW | RTLD_LOCAL);
    if (!h) { fprintf(stderr, "dlopen: %s\n", dlerror()); return 1; }
    SYM(TLS_client_method); SYM(SSL_CTX_new); SYM(SSL_new); SYM(SSL_set_fd); SYM(SSL_connect);
    SYM(SSL_write); SYM(SSL_read); SYM(SSL_shutdown); SYM(SSL_free); SYM(SSL_CTX_free);
    if (!p_TLS_client_method || !p_SSL_CTX_free) { fprintf(stderr, "dlsym failed\n"); return 1; }
    int s = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)atoi(argv[2]))};
    inet_pton(AF_INET, argv[1], &a.sin_addr);
    if (connect(s, (struct sockaddr*)&a, sizeof a) != 0) { perror("connect"); return 1; }
    SSL_CTX* ctx = p_SSL_CTX_new(p_TLS_client_method());
    SSL* ssl = p_SSL_new(ctx);
    p_SSL_set_fd(ssl, s);
    if (p_SSL_connect(ssl) != 1) { fprintf(stderr, "handshake failed\n"); return 1; }
    char req[128], buf[4096];
    int n = snprintf(req, sizeof req, "GET /dl-%d HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", i);
    p_SSL_write(ssl, req, n);
    int got = 0, r;
    while ((r = p_SSL_read(ssl, buf, sizeof buf)) > 0) got += r;
    p_SSL_shutdown(ssl);
    p_SSL_free(ssl);
    p_SSL_CTX_free(ctx);
    close(s);
    dlclose(h);
    printf("dl-%d %s unmapped=%s\n", i, got > 0 ? "ok" : "empty", libssl_mapped() ? "no" : "yes");
    fflush(stdout);
    usleep(200000);
  }
  return 0;
}
