// placeholder; replaced by tls_keys.cc
