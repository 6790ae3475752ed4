/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* The one kernel<->user contract of the OpenSSL uprobes (bpf/openssl.bpf.c <-> engine/tlsprobe).
 *
 * Ring records (BPF_MAP_TYPE_RINGBUF `ehp_tls_events`), each starting with ehp_tls_hdr:
 *
 *   secrets (kind 1), fixed size:
 *   +----------------------+--------+-----------+-------------+----------+--------+
 *   | ehp_tls_hdr (40 B)   | ssl 8B | version 2 | cipher_id 2 | source 2 | lib 2  |
 *   +----------------------+--------+-----------+-------------+----------+--------+
 *   | client_random[32] | master_key[48] | handshake_secret[64] | handshake_traffic_hash[64] |
 *   | client_app_traffic_secret[64] | server_app_traffic_secret[64] | exporter_master_secret[64] |
 *
 *   exec (kind 4): ehp_tls_hdr alone, for a process that exec'ed (pid, uid, comm, ts_ns).
 *
 *   data (kind 2), variable size: ehp_tls_data_event header, then data_len_bytes bytes of
 *   plaintext (the first data_len_bytes of len_bytes; truncated when len_bytes > data_len_bytes).
 *
 * Userspace parses by memcpy into these structs (records in the ring are 8-byte aligned, but
 * never cast). Field names carry units; offsets are asserted at the bottom, in C and C++.
 */
#pragma once
#ifdef __cplusplus
#include <cstdint>
typedef uint8_t ehp_tls_u8;
typedef uint16_t ehp_tls_u16;
typedef uint32_t ehp_tls_u32;
typedef int32_t ehp_tls_s32;
typedef uint64_t ehp_tls_u64;
#else
typedef __u8 ehp_tls_u8;
typedef __u16 ehp_tls_u16;
typedef __u32 ehp_tls_u32;
typedef __s32 ehp_tls_s32;
typedef __u64 ehp_tls_u64;
#endif

#define EHP_TLS_ABI_VERSION 1
#define EHP_TLS_COMM_LEN 16
/* Plaintext bytes copied per SSL_read/SSL_write call; larger calls are truncated and counted.
 * A power of two so the verifier can bound the copy with a mask. */
#define EHP_TLS_MAX_DATA_BYTES 16384
#define EHP_TLS_SECRET_BYTES 64 /* EVP_MAX_MD_SIZE: the size of every TLS 1.3 secret array */
#define EHP_TLS_LABEL_BYTES 48  /* NSS key log labels: "CLIENT_HANDSHAKE_TRAFFIC_SECRET" is 31 */

enum ehp_tls_event_kind {
	EHP_TLS_EV_SECRETS = 1,
	EHP_TLS_EV_DATA = 2,
	EHP_TLS_EV_KEYLOG = 3, /* one secret with its label, from the library's own secret logger */
	EHP_TLS_EV_EXEC = 4,   /* a process exec'ed (ehp_tls_hdr only): userspace looks for new TLS binaries */
};

/* Which probe produced a secrets record (diagnostics; tests use it to see both paths work). */
enum ehp_tls_secrets_source {
	EHP_TLS_SRC_HANDSHAKE_RET = 1, /* handshake_func (or SSL_do_handshake) returned 1 */
	EHP_TLS_SRC_IO_ENTRY = 2,      /* first SSL_read/SSL_write(_ex) entry seen with the handshake finished */
};

/* Per-CPU counters (array `ehp_tls_counters`), summed by userspace. */
enum ehp_tls_counter {
	EHP_TLS_CNT_RING_DROP_SECRETS = 0, /* ringbuf reserve failed for a secrets record */
	EHP_TLS_CNT_RING_DROP_DATA = 1,    /* ringbuf output failed for a data record */
	EHP_TLS_CNT_DATA_TRUNCATED = 2,    /* data records shorter than the SSL call's length */
	EHP_TLS_CNT_READ_FAULT = 3,        /* a secret not readable: the SSL struct, a logger argument */
	EHP_TLS_CNT_NULL_SECRETS = 4,      /* handshake finished but the key material read as zero */
	EHP_TLS_CNT_RING_DROP_EXEC = 5,    /* ringbuf reserve failed for an exec record */
	EHP_TLS_CNT_IO_UNSEEN = 6,         /* -m text: a read/write returned whose entry was not kept
					    * (begun before the attach, or crowded out of the LRU map) */
	EHP_TLS_CNT__MAX = 8,
};

/* Struct offsets the probes use, set in rodata before load by engine/tlsprobe after it has
 * confirmed them against the mapped library. Names follow <struct>_<member>_offset. */
struct ehp_tls_offsets {
	ehp_tls_u32 ssl_st_version_offset;
	ehp_tls_u32 ssl_st_rbio_offset;
	ehp_tls_u32 ssl_st_statem_in_init_offset;
	ehp_tls_u32 ssl_st_s3_ptr_offset;           /* 1.1.1: ssl_st.s3 is a pointer; 0 = s3 embedded (3.x) */
	ehp_tls_u32 ssl_st_s3_client_random_offset; /* from ssl_st (3.x) or from *s3 (1.1.1) */
	ehp_tls_u32 ssl_st_session_offset;
	ehp_tls_u32 ssl_st_handshake_secret_offset;
	ehp_tls_u32 ssl_st_handshake_traffic_hash_offset;
	ehp_tls_u32 ssl_st_client_app_traffic_secret_offset;
	ehp_tls_u32 ssl_st_server_app_traffic_secret_offset;
	ehp_tls_u32 ssl_st_exporter_master_secret_offset;
	ehp_tls_u32 ssl_session_st_master_key_offset;
	ehp_tls_u32 ssl_session_st_cipher_offset;
	ehp_tls_u32 ssl_cipher_st_id_offset;
	ehp_tls_u32 bio_st_num_offset; /* 0 = unknown: data records then carry fd -1 */
};

struct ehp_tls_hdr {
	ehp_tls_u32 kind; /* enum ehp_tls_event_kind */
	ehp_tls_u32 pid;  /* tgid */
	ehp_tls_u32 tid;
	ehp_tls_u32 uid;
	ehp_tls_u64 ts_ns; /* bpf_ktime_get_ns (CLOCK_MONOTONIC); userspace converts to wall clock */
	char comm[EHP_TLS_COMM_LEN];
};

struct ehp_tls_secrets_event {
	struct ehp_tls_hdr hdr;
	ehp_tls_u64 ssl; /* SSL* in the traced process, for diagnostics */
	ehp_tls_u16 version;
	ehp_tls_u16 cipher_id; /* low 16 bits of SSL_CIPHER id (0x0300130X -> 0x130X) */
	ehp_tls_u16 source;    /* enum ehp_tls_secrets_source */
	ehp_tls_u16 lib;       /* the hook's BPF cookie: which traced binary (TlsProbe::sources()) */
	ehp_tls_u8 client_random[32];
	ehp_tls_u8 master_key[48];
	ehp_tls_u8 handshake_secret[EHP_TLS_SECRET_BYTES];
	ehp_tls_u8 handshake_traffic_hash[EHP_TLS_SECRET_BYTES];
	ehp_tls_u8 client_app_traffic_secret[EHP_TLS_SECRET_BYTES];
	ehp_tls_u8 server_app_traffic_secret[EHP_TLS_SECRET_BYTES];
	ehp_tls_u8 exporter_master_secret[EHP_TLS_SECRET_BYTES];
};

struct ehp_tls_data_event {
	struct ehp_tls_hdr hdr;
	ehp_tls_u64 ssl;
	ehp_tls_s32 fd;         /* rbio->num (the socket fd for socket BIOs), -1 when unknown */
	ehp_tls_u8 is_write;
	ehp_tls_u8 ip_version;  /* 4 or 6 when fd is a TCP/UDP socket (tuple below valid), else 0 */
	ehp_tls_u16 pad;
	ehp_tls_u32 len_bytes;      /* what the SSL call read/wrote */
	ehp_tls_u32 data_len_bytes; /* what follows this header in the record */
	ehp_tls_u16 sport, dport;   /* host order; s = this process's end */
	ehp_tls_u32 pad2;
	ehp_tls_u8 saddr[16], daddr[16]; /* network order; IPv4 in the first 4 bytes */
	/* ehp_tls_u8 data[data_len_bytes]; */
};

/* One secret as OpenSSL's ssl_log_secret(conn, label, secret, len) is called with it (every
 * OpenSSL since 1.1.1 calls it for each secret, key log callback or not). The client random is
 * read from the connection at the location engine/tlsprobe decoded from the binary. */
struct ehp_tls_keylog_event {
	struct ehp_tls_hdr hdr;
	ehp_tls_u8 label_len; /* bytes of label, without the NUL */
	ehp_tls_u8 secret_len;
	ehp_tls_u16 lib; /* the hook's BPF cookie: which traced binary (TlsProbe::sources()) */
	ehp_tls_u32 pad2;
	char label[EHP_TLS_LABEL_BYTES];
	ehp_tls_u8 client_random[32];
	ehp_tls_u8 secret[EHP_TLS_SECRET_BYTES];
};

#ifdef __cplusplus
#include <cstddef>
static_assert(sizeof(ehp_tls_hdr) == 40, "ehp_tls_hdr layout");
static_assert(offsetof(ehp_tls_secrets_event, client_random) == 56, "secrets layout");
static_assert(sizeof(ehp_tls_secrets_event) == 56 + 32 + 48 + 5 * 64, "secrets layout");
static_assert(sizeof(ehp_tls_data_event) == 104, "data layout");
static_assert(sizeof(ehp_tls_offsets) == 15 * 4, "offsets layout");
#else
_Static_assert(sizeof(struct ehp_tls_hdr) == 40, "ehp_tls_hdr layout");
_Static_assert(__builtin_offsetof(struct ehp_tls_secrets_event, client_random) == 56, "secrets layout");
_Static_assert(sizeof(struct ehp_tls_secrets_event) == 56 + 32 + 48 + 5 * 64, "secrets layout");
_Static_assert(sizeof(struct ehp_tls_data_event) == 104, "data layout");
_Static_assert(sizeof(struct ehp_tls_keylog_event) == 40 + 8 + 48 + 32 + 64, "keylog layout");
_Static_assert(sizeof(struct ehp_tls_offsets) == 15 * 4, "offsets layout");
#endif
