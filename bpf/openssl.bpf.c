/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* OpenSSL (libssl 1.1.1 / 3.x) uprobes: TLS secrets once per handshake, optional plaintext.
 *
 * Hook points and why. Cost is the point: a uprobe hit costs ~20 us on this VM (measured with
 * tests/e2e/tlsprobe_bench.cc), so a hook on every SSL_read/SSL_write cuts small-record
 * throughput by 95% (the anchor's naive SSL_write hook cost users 20% on bare metal).
 *  - Primary: uprobe + uretprobe on the SSL's handshake_func, i.e. libssl's internal
 *    ossl_statem_connect / ossl_statem_accept (not exported; engine/tlsprobe reads their file
 *    offsets from the method table that SSL_set_connect_state/SSL_set_accept_state install). Every handshake path runs through it: SSL_do_handshake,
 *    SSL_connect/SSL_accept, the implicit handshake inside SSL_read/SSL_write and the ssl BIO
 *    (openssl s_server -www). It is only called while the SSL is in init, so application
 *    data I/O never traps. Return 1 = handshake complete, secrets final, no app data sent yet.
 *  - Fallback, when handshake_func cannot be located: the same pair on SSL_do_handshake
 *    (SSL_connect/SSL_accept tail-call it) plus entry-only uprobes on SSL_read/SSL_write/_ex and
 *    SSL_get_error (called by the ssl BIO after every read/write) that send the secrets the
 *    first time they see a finished handshake. `ehp_tls_sent` (SSL* -> client_random) makes
 *    every path send each session exactly once.
 *  - -m text: SSL_read/SSL_read_ex entry+return and SSL_write/SSL_write_ex entry, bounded copy.
 *    Not seen: plaintext moved by the ssl BIO (it calls ssl_read_internal directly).
 *
 *  - Secret logger (OpenSSL linked into executables, e.g. Node.js; any version since 1.1.1):
 *    an entry uprobe on ssl_log_secret(conn, label, secret, len), which OpenSSL calls for every
 *    secret whether or not a key log callback is set. No struct layout but the client random's
 *    place in the connection (rodata `cr_*`, decoded from the binary's SSL_get_client_random).
 *
 * Offsets come from userspace (rodata `off`, `cr_*`), read from the mapped binary first.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_endian.h>
#include "abi/tls_abi.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

/* Set between open and load. */
const volatile struct ehp_tls_offsets off = {};
const volatile __u32 targ_pid = 0;  /* tgid to trace; 0 = all */
const volatile __u32 targ_uid = 0;  /* uid to trace when filter_uid */
const volatile bool filter_uid = false;
const volatile bool capture_plaintext = false;
/* false for the logged stacks (OpenSSL's and BoringSSL's secret logger, Go): their secrets come
 * from the logger, `off` is all zero, and SSL_read/SSL_write are hooked for -m text only. */
const volatile bool secrets_from_struct = true;
/* Wake the reader only when the unread bytes cross this (edge); below it the reader's poll
 * timeout collects the records. 0 = wake on every record. A wakeup is an irq_work self-IPI,
 * i.e. an APIC write (a VM exit under KVM) in the traced process's own thread, plus a context
 * switch to the reader: on this VM ~30 us per handshake (docs/performance.md). */
const volatile __u64 wakeup_bytes = 0;

#define S_IFMT 00170000
#define S_IFSOCK 0140000
#define AF_INET 2
#define AF_INET6 10
#define TLS1_VERSION 0x0301
#define TLS1_3_VERSION 0x0304

/* Secrets and plaintext records. One ring: secrets are tiny and rare, ordering with data is
 * preserved for -m text. Size set by userspace before load. */
struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 4 << 20);
} ehp_tls_events SEC(".maps");

/* reserved: the record is already reserved, so the ring's unread bytes include it. */
static __always_inline __u64 wake_flags(__u64 rec_bytes, bool reserved)
{
	if (!wakeup_bytes)
		return 0;
	__u64 unread = bpf_ringbuf_query(&ehp_tls_events, BPF_RB_AVAIL_DATA);
	rec_bytes = (rec_bytes + 8 + 7) & ~7ull; /* record header, 8-byte rounding */
	if (reserved)
		unread = unread > rec_bytes ? unread - rec_bytes : 0;
	return unread < wakeup_bytes && unread + rec_bytes >= wakeup_bytes ? BPF_RB_FORCE_WAKEUP
									  : BPF_RB_NO_WAKEUP;
}

/* Drop/truncation counters (enum ehp_tls_counter); per-CPU so the hot path never contends. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, EHP_TLS_CNT__MAX);
	__type(key, __u32);
	__type(value, __u64);
} ehp_tls_counters SEC(".maps");

/* (tgid, SSL*) -> client_random of the session already sent. LRU: freed SSL objects age out;
 * an address reused by a new SSL has a new client_random and is sent again. */
struct sent_key {
	__u32 tgid;
	__u32 pad;
	__u64 ssl;
};
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, struct sent_key);
	__type(value, __u8[32]);
} ehp_tls_sent SEC(".maps");

/* tgid -> bpf_ktime_get_ns() of its latest handshake start or logged secret: the processes whose
 * TLS is traced, including those already gone when the hold-back asks about their ClientHello
 * (a short-lived client exits within milliseconds). Shared by every group's object (userspace
 * reuses the first one's fd); read by pipeline/key_policy.cc. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, __u32);
	__type(value, __u64);
} ehp_tls_tgids SEC(".maps");

/* pid_tgid -> SSL* between handshake entry and return. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH); /* LRU: a thread that dies mid-call leaves no leak */
	__uint(max_entries, 16384);
	__type(key, __u64);
	__type(value, __u64);
} ehp_tls_hs_args SEC(".maps");

/* pid_tgid -> SSL_read(_ex) arguments between entry and return (-m text only). */
struct read_args {
	__u64 ssl;
	__u64 buf;
	__u64 readbytes; /* size_t* of SSL_read_ex, 0 for SSL_read */
};
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH); /* LRU: a thread that dies mid-call leaves no leak */
	__uint(max_entries, 16384);
	__type(key, __u64);
	__type(value, struct read_args);
} ehp_tls_read_args SEC(".maps");

/* pid_tgid -> SSL_write/SSL_write_ex args between entry and return (-m text): what was written
 * is known only at return (a write the library could not take yet, e.g. during the handshake,
 * returns <= 0 and is called again with the same bytes). readbytes: SSL_write_ex's size_t*. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 8192);
	__type(key, __u64);
	__type(value, struct read_args);
} ehp_tls_write_args SEC(".maps");

/* Scratch for one data record: header + up to EHP_TLS_MAX_DATA_BYTES, too big for the stack
 * (and for ringbuf_reserve of a fixed worst case, which would waste the ring). */
struct data_scratch {
	struct ehp_tls_data_event ev;
	__u8 data[EHP_TLS_MAX_DATA_BYTES];
};
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct data_scratch);
} ehp_tls_scratch SEC(".maps");

static __always_inline void count(__u32 which)
{
	__u64 *v = bpf_map_lookup_elem(&ehp_tls_counters, &which);
	if (v)
		*v += 1;
}

/* -p / -u filter; returns true when the current task is traced. */
static __always_inline bool traced(void)
{
	if (targ_pid && (bpf_get_current_pid_tgid() >> 32) != targ_pid)
		return false;
	if (filter_uid && (__u32)bpf_get_current_uid_gid() != targ_uid)
		return false;
	return true;
}

/* Marks the current process as one whose TLS is traced (refreshed at most once a second). */
static __always_inline void mark_tls_process(void)
{
	__u32 tgid = bpf_get_current_pid_tgid() >> 32;
	__u64 now = bpf_ktime_get_ns();
	__u64 *seen = bpf_map_lookup_elem(&ehp_tls_tgids, &tgid);
	if (seen && now - *seen < 1000000000ull)
		return;
	bpf_map_update_elem(&ehp_tls_tgids, &tgid, &now, BPF_ANY);
}

static __always_inline void fill_hdr(struct ehp_tls_hdr *h, __u32 kind)
{
	__u64 id = bpf_get_current_pid_tgid();
	h->kind = kind;
	h->pid = id >> 32;
	h->tid = (__u32)id;
	h->uid = (__u32)bpf_get_current_uid_gid();
	h->ts_ns = bpf_ktime_get_ns();
	bpf_get_current_comm(h->comm, sizeof(h->comm));
}

static __always_inline bool same32(const __u8 *a, const __u8 *b)
{
	const __u64 *x = (const __u64 *)a, *y = (const __u64 *)b;
	return x[0] == y[0] && x[1] == y[1] && x[2] == y[2] && x[3] == y[3];
}

/* Reads the session's secrets from `ssl` and sends them once per (SSL*, client_random).
 * check_init: the caller does not know the handshake is over (I/O fallback), so look at
 * ssl->statem.in_init first. */
static __always_inline void emit_secrets(void *ssl, __u16 source, bool check_init, __u16 lib)
{
	struct sent_key key = { .tgid = bpf_get_current_pid_tgid() >> 32, .ssl = (__u64)ssl };
	__u8 cr[32];
	__u8 *sent;
	struct ehp_tls_secrets_event *e;
	void *session = 0, *cipher = 0;
	__u32 cipher_id = 0;
	int version = 0;

	if (check_init) {
		int in_init = 1;
		if (bpf_probe_read_user(&in_init, sizeof(in_init), ssl + off.ssl_st_statem_in_init_offset)) {
			count(EHP_TLS_CNT_READ_FAULT);
			return;
		}
		if (in_init)
			return;
	}
	void *s3 = ssl;
	if (off.ssl_st_s3_ptr_offset &&
	    (bpf_probe_read_user(&s3, sizeof(s3), ssl + off.ssl_st_s3_ptr_offset) || !s3)) {
		count(EHP_TLS_CNT_READ_FAULT);
		return;
	}
	if (bpf_probe_read_user(cr, sizeof(cr), s3 + off.ssl_st_s3_client_random_offset)) {
		count(EHP_TLS_CNT_READ_FAULT);
		return;
	}
	sent = bpf_map_lookup_elem(&ehp_tls_sent, &key);
	if (sent && same32(sent, cr))
		return;

	if (bpf_probe_read_user(&version, sizeof(version), ssl + off.ssl_st_version_offset) ||
	    bpf_probe_read_user(&session, sizeof(session), ssl + off.ssl_st_session_offset)) {
		count(EHP_TLS_CNT_READ_FAULT);
		return;
	}
	/* TLS only (no SSLv3, no DTLS: their versions are outside this range). */
	if (version < TLS1_VERSION || version > TLS1_3_VERSION || !session)
		return;

	e = bpf_ringbuf_reserve(&ehp_tls_events, sizeof(*e), 0);
	if (!e) {
		count(EHP_TLS_CNT_RING_DROP_SECRETS);
		return;
	}
	fill_hdr(&e->hdr, EHP_TLS_EV_SECRETS);
	e->ssl = (__u64)ssl;
	e->version = version;
	e->source = source;
	e->lib = lib;
	__builtin_memcpy(e->client_random, cr, sizeof(cr));
	if (bpf_probe_read_user(&cipher, sizeof(cipher), session + off.ssl_session_st_cipher_offset) == 0 && cipher)
		bpf_probe_read_user(&cipher_id, sizeof(cipher_id), cipher + off.ssl_cipher_st_id_offset);
	e->cipher_id = cipher_id & 0xFFFF; /* SSL_CIPHER id is 0x0300XXXX */

	long rc = bpf_probe_read_user(e->master_key, sizeof(e->master_key), session + off.ssl_session_st_master_key_offset);
	if (version == TLS1_3_VERSION) {
		rc |= bpf_probe_read_user(e->handshake_secret, EHP_TLS_SECRET_BYTES, ssl + off.ssl_st_handshake_secret_offset);
		rc |= bpf_probe_read_user(e->handshake_traffic_hash, EHP_TLS_SECRET_BYTES,
					  ssl + off.ssl_st_handshake_traffic_hash_offset);
		rc |= bpf_probe_read_user(e->client_app_traffic_secret, EHP_TLS_SECRET_BYTES,
					  ssl + off.ssl_st_client_app_traffic_secret_offset);
		rc |= bpf_probe_read_user(e->server_app_traffic_secret, EHP_TLS_SECRET_BYTES,
					  ssl + off.ssl_st_server_app_traffic_secret_offset);
		rc |= bpf_probe_read_user(e->exporter_master_secret, EHP_TLS_SECRET_BYTES,
					  ssl + off.ssl_st_exporter_master_secret_offset);
	} else {
		__builtin_memset(e->handshake_secret, 0, 5 * EHP_TLS_SECRET_BYTES);
	}
	if (rc) {
		count(EHP_TLS_CNT_READ_FAULT);
		bpf_ringbuf_discard(e, 0);
		return;
	}
	/* A finished handshake has non-zero key material; zero means the wrong moment (or wrong
	 * offsets). Not marked as sent, so a later call can still deliver it. */
	__u64 probe = version == TLS1_3_VERSION ? *(__u64 *)e->client_app_traffic_secret
						 : *(__u64 *)e->master_key;
	if (!probe) {
		count(EHP_TLS_CNT_NULL_SECRETS);
		bpf_ringbuf_discard(e, 0);
		return;
	}
	bpf_ringbuf_submit(e, wake_flags(sizeof(*e), true));
	bpf_map_update_elem(&ehp_tls_sent, &key, cr, BPF_ANY);
}

/* Connection tuple of socket `fd` of the current task, read from the kernel's socket (CO-RE)
 * at the moment of the call: no /proc lookup in userspace, which would race with short-lived
 * processes. Leaves ip_version 0 when fd is not an inet socket. */
static __always_inline void fill_tuple(struct ehp_tls_data_event *ev, int fd)
{
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	struct fdtable *fdt = BPF_CORE_READ(task, files, fdt);
	struct file **fds;
	struct file *f = 0;
	struct sock *sk;
	__u16 family;

	ev->ip_version = 0;
	if (fd < 0 || !fdt || (unsigned int)fd >= BPF_CORE_READ(fdt, max_fds))
		return;
	fds = BPF_CORE_READ(fdt, fd);
	if (bpf_probe_read_kernel(&f, sizeof(f), fds + fd) || !f)
		return;
	if ((BPF_CORE_READ(f, f_inode, i_mode) & S_IFMT) != S_IFSOCK)
		return;
	struct socket *sock = BPF_CORE_READ(f, private_data);
	sk = BPF_CORE_READ(sock, sk);
	if (!sk)
		return;
	family = BPF_CORE_READ(sk, __sk_common.skc_family);
	/* BPF_CORE_READ_INTO copies sizeof(*dst): give it typed destinations. */
	if (family == AF_INET) {
		__be32 a = BPF_CORE_READ(sk, __sk_common.skc_rcv_saddr);
		__be32 b = BPF_CORE_READ(sk, __sk_common.skc_daddr);
		__builtin_memcpy(ev->saddr, &a, 4);
		__builtin_memcpy(ev->daddr, &b, 4);
		ev->ip_version = 4;
	} else if (family == AF_INET6) {
		BPF_CORE_READ_INTO((struct in6_addr *)ev->saddr, sk, __sk_common.skc_v6_rcv_saddr);
		BPF_CORE_READ_INTO((struct in6_addr *)ev->daddr, sk, __sk_common.skc_v6_daddr);
		ev->ip_version = 6;
	} else {
		return;
	}
	ev->sport = BPF_CORE_READ(sk, __sk_common.skc_num);
	ev->dport = bpf_ntohs(BPF_CORE_READ(sk, __sk_common.skc_dport));
}

/* Copies up to EHP_TLS_MAX_DATA_BYTES of plaintext into a data record. */
static __always_inline void emit_data(void *ssl, const void *buf, __u64 len, bool is_write)
{
	__u32 zero = 0;
	struct data_scratch *s;
	__u32 n;

	if (!len)
		return;
	s = bpf_map_lookup_elem(&ehp_tls_scratch, &zero);
	if (!s)
		return;
	fill_hdr(&s->ev.hdr, EHP_TLS_EV_DATA);
	s->ev.ssl = (__u64)ssl;
	s->ev.fd = -1;
	if (off.bio_st_num_offset) {
		void *rbio = 0;
		if (bpf_probe_read_user(&rbio, sizeof(rbio), ssl + off.ssl_st_rbio_offset) == 0 && rbio)
			bpf_probe_read_user(&s->ev.fd, sizeof(s->ev.fd), rbio + off.bio_st_num_offset);
	}
	__builtin_memset(s->ev.saddr, 0, sizeof(s->ev.saddr) + sizeof(s->ev.daddr));
	s->ev.sport = s->ev.dport = 0;
	s->ev.pad = 0;
	s->ev.pad2 = 0;
	fill_tuple(&s->ev, s->ev.fd);
	s->ev.is_write = is_write;
	s->ev.len_bytes = len > 0xffffffffULL ? 0xffffffffU : (__u32)len;
	n = len > EHP_TLS_MAX_DATA_BYTES ? EHP_TLS_MAX_DATA_BYTES : (__u32)len;
	if (n < len)
		count(EHP_TLS_CNT_DATA_TRUNCATED);
	/* Re-bound for the verifier: it must see n <= sizeof(s->data) at the call. */
	n &= (EHP_TLS_MAX_DATA_BYTES << 1) - 1;
	if (n > EHP_TLS_MAX_DATA_BYTES)
		return;
	if (bpf_probe_read_user(s->data, n, buf)) {
		count(EHP_TLS_CNT_READ_FAULT);
		return;
	}
	s->ev.data_len_bytes = n;
	if (bpf_ringbuf_output(&ehp_tls_events, s, sizeof(s->ev) + n, wake_flags(sizeof(s->ev) + n, false)))
		count(EHP_TLS_CNT_RING_DROP_DATA);
}

/* int ossl_statem_connect(SSL *s) / int ossl_statem_accept(SSL *s) (primary), or
 * int SSL_do_handshake(SSL *s) (fallback). */
SEC("uprobe")
int BPF_KPROBE(ehp_handshake, void *ssl)
{
	__u64 id, v;

	if (!traced())
		return 0;
	mark_tls_process();
	id = bpf_get_current_pid_tgid();
	v = (__u64)ssl;
	bpf_map_update_elem(&ehp_tls_hs_args, &id, &v, BPF_ANY);
	return 0;
}

SEC("uretprobe")
int BPF_KRETPROBE(ehp_handshake_ret, int ret)
{
	__u64 id = bpf_get_current_pid_tgid();
	__u64 *ssl = bpf_map_lookup_elem(&ehp_tls_hs_args, &id);

	if (!ssl)
		return 0;
	void *s = (void *)*ssl;
	bpf_map_delete_elem(&ehp_tls_hs_args, &id);
	if (ret == 1) /* handshake complete; nothing sent with the new keys yet */
		emit_secrets(s, EHP_TLS_SRC_HANDSHAKE_RET, false, (__u16)bpf_get_attach_cookie(ctx));
	return 0;
}

/* SSL_read/SSL_write(_ex) entry: the per-call secrets fallback (struct-read stacks), and for
 * -m text the args, kept in args_map until the call returns (io_return): only then is it known
 * what was read, or what the library took (a write retried during the handshake, as Node.js
 * does, would otherwise show its bytes several times). len_ptr: the _ex calls' size_t*. */
static __always_inline void io_entry(void *args_map, void *ssl, const void *buf, void *len_ptr, __u16 lib)
{
	if (!traced())
		return;
	if (secrets_from_struct)
		emit_secrets(ssl, EHP_TLS_SRC_IO_ENTRY, true, lib);
	if (capture_plaintext) {
		__u64 id = bpf_get_current_pid_tgid();
		struct read_args a = { .ssl = (__u64)ssl, .buf = (__u64)buf, .readbytes = (__u64)len_ptr };
		bpf_map_update_elem(args_map, &id, &a, BPF_ANY);
	}
}

/* SSL_read/SSL_write(_ex) returned: the bytes it really moved, from the args kept at entry. */
static __always_inline void io_return(void *args_map, long ret, bool is_ex, bool is_write)
{
	__u64 id = bpf_get_current_pid_tgid();
	struct read_args *a = bpf_map_lookup_elem(args_map, &id);
	__u64 len = 0;

	if (!a) {
		/* A uretprobe fires only for a call whose entry probe ran: the entry was evicted. */
		if (capture_plaintext && traced())
			count(EHP_TLS_CNT_IO_UNSEEN);
		return;
	}
	struct read_args args = *a;
	bpf_map_delete_elem(args_map, &id);
	if (is_ex) {
		if (ret != 1 || !args.readbytes ||
		    bpf_probe_read_user(&len, sizeof(len), (void *)args.readbytes))
			return;
	} else {
		if (ret <= 0)
			return;
		len = ret;
	}
	emit_data((void *)args.ssl, (void *)args.buf, len, is_write);
}


/* int SSL_read(SSL *ssl, void *buf, int num); */
SEC("uprobe")
int BPF_KPROBE(ehp_ssl_read, void *ssl, void *buf, int num)
{
	io_entry(&ehp_tls_read_args, ssl, buf, 0, (__u16)bpf_get_attach_cookie(ctx));
	return 0;
}

SEC("uretprobe")
int BPF_KRETPROBE(ehp_ssl_read_ret, int ret)
{
	io_return(&ehp_tls_read_args, ret, false, false);
	return 0;
}

/* int SSL_read_ex(SSL *ssl, void *buf, size_t num, size_t *readbytes); */
SEC("uprobe")
int BPF_KPROBE(ehp_ssl_read_ex, void *ssl, void *buf, __u64 num, void *readbytes)
{
	io_entry(&ehp_tls_read_args, ssl, buf, readbytes, (__u16)bpf_get_attach_cookie(ctx));
	return 0;
}

SEC("uretprobe")
int BPF_KRETPROBE(ehp_ssl_read_ex_ret, int ret)
{
	io_return(&ehp_tls_read_args, ret, true, false);
	return 0;
}

/* int SSL_write(SSL *ssl, const void *buf, int num); */
SEC("uprobe")
int BPF_KPROBE(ehp_ssl_write, void *ssl, const void *buf, int num)
{
	io_entry(&ehp_tls_write_args, ssl, buf, 0, (__u16)bpf_get_attach_cookie(ctx));
	return 0;
}

SEC("uretprobe")
int BPF_KRETPROBE(ehp_ssl_write_ret, int ret)
{
	io_return(&ehp_tls_write_args, ret, false, true);
	return 0;
}

/* int SSL_write_ex(SSL *ssl, const void *buf, size_t num, size_t *written); */
SEC("uprobe")
int BPF_KPROBE(ehp_ssl_write_ex, void *ssl, const void *buf, __u64 num, void *written)
{
	io_entry(&ehp_tls_write_args, ssl, buf, written, (__u16)bpf_get_attach_cookie(ctx));
	return 0;
}

SEC("uretprobe")
int BPF_KRETPROBE(ehp_ssl_write_ex_ret, int ret)
{
	io_return(&ehp_tls_write_args, ret, true, true);
	return 0;
}

/* int SSL_get_error(const SSL *s, int ret_code); */
SEC("uprobe")
int BPF_KPROBE(ehp_ssl_get_error, void *ssl)
{
	if (traced())
		emit_secrets(ssl, EHP_TLS_SRC_IO_ENTRY, true, (__u16)bpf_get_attach_cookie(ctx));
	return 0;
}

/* A key log record for one logged secret, its header filled (NULL: ring full, counted). */
static __always_inline struct ehp_tls_keylog_event *reserve_keylog(__u16 lib)
{
	struct ehp_tls_keylog_event *e = bpf_ringbuf_reserve(&ehp_tls_events, sizeof(*e), 0);
	if (!e) {
		count(EHP_TLS_CNT_RING_DROP_SECRETS);
		return NULL;
	}
	fill_hdr(&e->hdr, EHP_TLS_EV_KEYLOG);
	e->lib = lib;
	e->pad2 = 0;
	return e;
}

/* ssl_log_secret(conn, label, secret, len). Its BPF cookie says which binary (bits 0-15) and
 * where that binary keeps the connection's client random (tlsprobe/stack.h logger_cookie): at
 * conn + cr_off (bits 16-31), or, when cr_ptr_off (bits 32-47) is set (1.1.1's s->s3 pointer),
 * at *(conn + cr_ptr_off) + cr_off. One loaded object serves every such binary. */
/* The loggers' programs are sleepable (uprobe.s): a label is a string in the library's
 * read-only data, which a process that just started may not have faulted in yet, and
 * bpf_probe_read_user cannot fault (measured: 4 of 6 TLS 1.2 handshakes of fresh s_client
 * processes lost their one secret on an upstream 3.4 build). Each read tries the non-faulting
 * copy first and faults the page in only when that fails. */
static __always_inline long read_user(void *dst, __u32 size, const void *src)
{
	if (bpf_probe_read_user(dst, size, src) == 0)
		return 0;
	return bpf_copy_from_user(dst, size, src);
}

/* A NUL-terminated label into e->label: its length + 1, or <= 0. */
static __always_inline long read_label(char *dst, const char *src)
{
	long n = bpf_probe_read_user_str(dst, EHP_TLS_LABEL_BYTES, src);
	if (n > 1)
		return n;
	/* Fault the page in: the whole field, or (a label that ends near the end of its mapping)
	 * the longest NSS label's 32 bytes. */
	if (bpf_copy_from_user(dst, EHP_TLS_LABEL_BYTES, src) != 0 && bpf_copy_from_user(dst, 32, src) != 0)
		return -1;
	for (int i = 0; i < EHP_TLS_LABEL_BYTES; i++)
		if (dst[i] == 0)
			return i + 1;
	return -1;
}

SEC("uprobe.s")
int BPF_KPROBE(ehp_ssl_log_secret, void *conn, const char *label, const __u8 *secret, __u64 len)
{
	if (!traced())
		return 0;
	mark_tls_process();
	__u64 cookie = bpf_get_attach_cookie(ctx);
	__u32 cr_off = (cookie >> 16) & 0xffff, cr_ptr_off = (cookie >> 32) & 0xffff;
	struct ehp_tls_keylog_event *e = reserve_keylog((__u16)cookie);
	if (!e)
		return 0;
	long n = read_label(e->label, label);
	__u32 sl = len > EHP_TLS_SECRET_BYTES ? EHP_TLS_SECRET_BYTES : (__u32)len;
	const char *base = conn;
	long rc = n > 1 && sl > 0 ? 0 : -1;
	if (rc == 0 && cr_ptr_off)
		rc = read_user(&base, sizeof(base), (const char *)conn + cr_ptr_off);
	if (rc == 0)
		rc = read_user(e->client_random, sizeof(e->client_random), base + cr_off);
	if (rc == 0)
		rc = read_user(e->secret, sl <= EHP_TLS_SECRET_BYTES ? sl : 0, secret);
	if (rc != 0) {
		bpf_ringbuf_discard(e, BPF_RB_NO_WAKEUP);
		count(EHP_TLS_CNT_READ_FAULT);
		return 0;
	}
	e->label_len = (__u8)(n - 1);
	e->secret_len = (__u8)sl;
	bpf_ringbuf_submit(e, wake_flags(sizeof(*e), true));
	return 0;
}

/* Go crypto/tls (Go 1.18+, amd64): an entry uprobe on
 *   func (c *Config) writeKeyLog(label string, clientRandom, secret []byte) error
 * which every handshake calls for each secret whether or not KeyLogWriter is set. Go's register
 * ABI (ABIInternal, Go 1.17+) passes c in rax, label (ptr, len) in rbx, rcx, clientRandom
 * (ptr, len, cap) in rdi, rsi, r8 and secret (ptr, len, cap) in r9, r10, r11. Entry only: a
 * uretprobe rewrites the return address on the goroutine's stack, which Go moves when it grows
 * it; the secrets are all arguments, so nothing is needed at return. */
SEC("uprobe.s")
int ehp_go_write_key_log(struct pt_regs *ctx)
{
	if (!traced())
		return 0;
	mark_tls_process();
	const char *label = (const char *)ctx->bx;
	__u64 label_len = ctx->cx;
	const __u8 *random = (const __u8 *)ctx->di;
	__u64 random_len = ctx->si;
	const __u8 *secret = (const __u8 *)ctx->r9;
	__u64 secret_len = ctx->r10;
	if (label_len == 0 || label_len >= EHP_TLS_LABEL_BYTES || random_len != 32 || secret_len == 0 ||
	    secret_len > EHP_TLS_SECRET_BYTES) {
		count(EHP_TLS_CNT_READ_FAULT);
		return 0;
	}
	struct ehp_tls_keylog_event *e = reserve_keylog((__u16)bpf_get_attach_cookie(ctx));
	if (!e)
		return 0;
	/* Checked above; again here, on the values the reads use, for the verifier. */
	__u32 ll = label_len < EHP_TLS_LABEL_BYTES ? (__u32)label_len : 0;
	__u32 sl = secret_len <= EHP_TLS_SECRET_BYTES ? (__u32)secret_len : 0;
	long rc = read_user(e->label, ll, label);
	if (rc == 0)
		rc = read_user(e->client_random, sizeof(e->client_random), random);
	if (rc == 0)
		rc = read_user(e->secret, sl, secret);
	if (rc != 0) {
		bpf_ringbuf_discard(e, BPF_RB_NO_WAKEUP);
		count(EHP_TLS_CNT_READ_FAULT);
		return 0;
	}
	if (ll < EHP_TLS_LABEL_BYTES)
		e->label[ll] = 0;
	e->label_len = (__u8)ll;
	e->secret_len = (__u8)sl;
	bpf_ringbuf_submit(e, wake_flags(sizeof(*e), true));
	return 0;
}

/* -m text for Go crypto/tls (Go 1.18+, amd64, register ABI: receiver in rax, b []byte in rbx, rcx,
 * rdi; results in rax, rbx...; r14 holds the running goroutine, g).
 *   func (c *Conn) Write(b []byte) (int, error): its entry, the bytes as the program hands them;
 *   func (c *Conn) Read(b []byte) (int, error): its entry keeps (c, b) by goroutine, and uprobes
 * on each of its RET instructions (engine/tlsprobe gobin.h go_ret_offsets; never a uretprobe,
 * which Go's moving stacks forbid) copy the n bytes it returns. Keyed by goroutine, not thread:
 * a Read that waits for the network resumes on whatever thread the scheduler gives it. */
struct go_read_key {
	__u32 tgid;
	__u32 pad;
	__u64 g;
};
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH); /* LRU: a goroutine that never returns leaves no leak */
	__uint(max_entries, 16384);
	__type(key, struct go_read_key);
	__type(value, struct read_args);
} ehp_go_read_args SEC(".maps");

SEC("uprobe")
int ehp_go_write(struct pt_regs *ctx)
{
	if (!traced() || !capture_plaintext)
		return 0;
	if ((long)ctx->cx > 0)
		emit_data((void *)ctx->ax, (const void *)ctx->bx, ctx->cx, true);
	return 0;
}

SEC("uprobe")
int ehp_go_read(struct pt_regs *ctx)
{
	if (!traced() || !capture_plaintext)
		return 0;
	struct go_read_key k = { .tgid = bpf_get_current_pid_tgid() >> 32, .g = ctx->r14 };
	struct read_args a = { .ssl = ctx->ax, .buf = ctx->bx, .readbytes = ctx->cx };
	bpf_map_update_elem(&ehp_go_read_args, &k, &a, BPF_ANY);
	return 0;
}

SEC("uprobe")
int ehp_go_read_ret(struct pt_regs *ctx)
{
	struct go_read_key k = { .tgid = bpf_get_current_pid_tgid() >> 32, .g = ctx->r14 };
	struct read_args *a = bpf_map_lookup_elem(&ehp_go_read_args, &k);
	if (!a) {
		/* A read begun before the attach (a goroutine parked in it), or its entry evicted. */
		if (capture_plaintext && traced())
			count(EHP_TLS_CNT_IO_UNSEEN);
		return 0;
	}
	struct read_args args = *a;
	bpf_map_delete_elem(&ehp_go_read_args, &k);
	long n = (long)ctx->ax;
	if (n > 0 && (__u64)n <= args.readbytes)
		emit_data((void *)args.ssl, (const void *)args.buf, (__u64)n, false);
	return 0;
}

/* Processes started after the capture: every exec (within -p/-u) is told to userspace, which
 * reads the new process's maps for a TLS binary not yet traced (engine/tlsprobe, late looks).
 * Loaded by the first BPF object only. Woken at once: the look races the program's first
 * handshake. */
SEC("tracepoint/sched/sched_process_exec")
int ehp_exec(void *ctx)
{
	if (!traced())
		return 0;
	struct ehp_tls_hdr *h = bpf_ringbuf_reserve(&ehp_tls_events, sizeof(*h), 0);
	if (!h) {
		count(EHP_TLS_CNT_RING_DROP_EXEC);
		return 0;
	}
	fill_hdr(h, EHP_TLS_EV_EXEC);
	bpf_ringbuf_submit(h, BPF_RB_FORCE_WAKEUP);
	return 0;
}
