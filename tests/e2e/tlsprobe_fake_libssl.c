// SPDX-License-Identifier: BSD-2-Clause
/* A fake libssl.so.3 standing in for a vendor build whose layout drifted (docs/facts.md: a vendor
 * 3.0.12 has ssl_st.session at 0x938 where upstream has 0x918). TlsProbe must refuse it. */
#include <stddef.h>

const char OPENSSL_fake_version_text[] = "OpenSSL 3.0.12 24 Oct 2023";

void *SSL_new(void *ctx) { return ctx ? NULL : (void *)OPENSSL_fake_version_text; }
void *SSL_get_session(const void *s) { return *(void *const *)((const char *)s + 0x938); }
int SSL_version(const void *s) { return *(const int *)s; }
