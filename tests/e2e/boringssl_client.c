// SPDX-License-Identifier: BSD-2-Clause
/* A BoringSSL HTTPS client for tests/e2e/tls_boringssl.sh: GET / over TLS 1.3, TLS 1.2 and
 * TLS 1.3 to IP PORT, writing its own key log (SSL_CTX_set_keylog_callback) to KEYLOG.
 *   boringssl_client IP PORT KEYLOG      boringssl_client idle   (maps libssl.so.0 and waits)
 *   boringssl_client serve PORT CERT KEY KEYLOG N   (an HTTPS server for N one-request connections) */
#include <arpa/inet.h>
#include <openssl/ssl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
static FILE *klog;
static void keylog_cb(const SSL *ssl, const char *line) { (void)ssl; fprintf(klog, "%s\n", line); fflush(klog); }
static int get(SSL_CTX *ctx, const char *ip, int port, uint16_t maxv) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
  inet_pton(AF_INET, ip, &a.sin_addr);
  if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0) return 1;
  SSL *ssl = SSL_new(ctx);
  SSL_set_max_proto_version(ssl, maxv);
  SSL_set_fd(ssl, fd);
  if (SSL_connect(ssl) != 1) return 2;
  const char req[] = "GET / HTTP/1.0\r\nHost: x\r\n\r\n";
  SSL_write(ssl, req, sizeof req - 1);
  char buf[4096];
  while (SSL_read(ssl, buf, sizeof buf) > 0) {}
  SSL_shutdown(ssl);
  SSL_free(ssl);
  close(fd);
  return 0;
}
/* serve PORT CERT KEY KEYLOG N: an HTTPS server answering N requests, one connection each. */
static int serve(int port, const char *cert, const char *key, int n) {
  SSL_CTX *ctx = SSL_CTX_new(TLS_method());
  SSL_CTX_set_keylog_callback(ctx, keylog_cb);
  if (SSL_CTX_use_certificate_chain_file(ctx, cert) != 1 || SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1)
    return 3;
  int ls = socket(AF_INET, SOCK_STREAM, 0), one = 1;
  setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
  if (bind(ls, (struct sockaddr *)&a, sizeof a) != 0 || listen(ls, 8) != 0) return 4;
  for (int i = 0; i < n; i++) {
    int fd = accept(ls, NULL, NULL);
    if (fd < 0) return 5;
    SSL *ssl = SSL_new(ctx);
    SSL_set_fd(ssl, fd);
    if (SSL_accept(ssl) == 1) {
      char buf[4096];
      if (SSL_read(ssl, buf, sizeof buf) > 0) {
        const char resp[] = "HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 22\r\n\r\nhello from the server\n";
        SSL_write(ssl, resp, sizeof resp - 1);
      }
      SSL_shutdown(ssl);
    }
    SSL_free(ssl);
    close(fd);
  }
  return 0;
}

int main(int argc, char **argv) {
  if (argc > 1 && !strcmp(argv[1], "idle")) { for (;;) pause(); }
  if (argc > 6 && !strcmp(argv[1], "serve")) {
    klog = fopen(argv[5], "w");
    int rc = serve(atoi(argv[2]), argv[3], argv[4], atoi(argv[6]));
    fclose(klog);
    return rc;
  }
  if (argc < 4) return 2;
  klog = fopen(argv[3], "w");
  SSL_CTX *ctx = SSL_CTX_new(TLS_method());
  SSL_CTX_set_keylog_callback(ctx, keylog_cb);
  int port = atoi(argv[2]);
  int rc = get(ctx, argv[1], port, TLS1_3_VERSION) | get(ctx, argv[1], port, TLS1_2_VERSION) | get(ctx, argv[1], port, TLS1_3_VERSION);
  fclose(klog);
  return rc;
}
