/* SPDX-License-Identifier: BSD-2-Clause
 * The code shapes of an upstream OpenSSL 3.4 libssl built with its default -O3 (read from the
 * disassembly of real 3.2-3.4 builds), reduced to what locate_secret_logger reads:
 *  - SSL_CTX_get_keylog_callback reads the callback at SSL_CTX+0x3d8;
 *  - SSL_get_client_random first reads the object's type, a QUIC object going through a
 *    pointer at +0x40 to its inner connection, then the client random at conn+0x148;
 *  - nss_keylog_int inlined into both its callers: ssl_log_rsa_client_key_exchange and
 *    ssl_log_secret each call the callback; only ssl_log_secret reads the client random;
 *  - the QUIC packet writer calls through the same displacement of another struct.
 * SSL_test_expected_logger marks where the probe must go. Not linked against anything. */
	.section .rodata
	.globl OPENSSL_version_text_test
OPENSSL_version_text_test:
	.asciz "OpenSSL 3.4.6 9 Jun 2026"
	.text
	.globl SSL_new
	.type SSL_new,@function
SSL_new:
	.cfi_startproc
	xor %eax,%eax
	ret
	.cfi_endproc
	.globl SSL_CTX_get_keylog_callback
	.type SSL_CTX_get_keylog_callback,@function
SSL_CTX_get_keylog_callback:
	.cfi_startproc
	mov 0x3d8(%rdi),%rax
	ret
	.cfi_endproc
	.globl SSL_get_client_random
	.type SSL_get_client_random,@function
SSL_get_client_random:
	.cfi_startproc
	test %rdi,%rdi
	je 1f
	mov (%rdi),%ecx
	test %ecx,%ecx
	je 2f
	xor %eax,%eax
	cmp $0x1,%ecx
	jne 1f
	mov 0x40(%rdi),%rdi
	test %rdi,%rdi
	je 1f
2:	mov $0x20,%eax
	lea 0x148(%rdi),%r8
	mov 0x148(%rdi),%rdx
1:	ret
	.cfi_endproc
	.type rsa_logger,@function
rsa_logger:
	.cfi_startproc
	push %r12
	.cfi_def_cfa_offset 16
	mov 0x8(%rdi),%rax
	cmpq $0x0,0x3d8(%rax)
	je 1f
	mov %rdi,%r12
	mov 0x40(%r12),%rdi
	call *0x3d8(%rax)
1:	pop %r12
	.cfi_def_cfa_offset 8
	ret
	.cfi_endproc
	.globl SSL_test_expected_logger
	.type SSL_test_expected_logger,@function
SSL_test_expected_logger:
	.cfi_startproc
	push %r14
	.cfi_def_cfa_offset 16
	mov %rdi,%r14
	mov 0x8(%rdi),%rax
	cmpq $0x0,0x3d8(%rax)
	je 1f
	lea 0x148(%r14),%r15
	mov 0x40(%r14),%rdi
	call *0x3d8(%rax)
1:	pop %r14
	.cfi_def_cfa_offset 8
	ret
	.cfi_endproc
	.type qtx_write_pkt,@function
qtx_write_pkt:
	.cfi_startproc
	push %rbp
	.cfi_def_cfa_offset 16
	mov %rdi,%rbp
	mov 0x3d8(%rbp),%rax
	test %rax,%rax
	je 1f
	mov 0x3e0(%rbp),%rdi
	call *%rax
1:	pop %rbp
	.cfi_def_cfa_offset 8
	ret
	.cfi_endproc
	.section .note.GNU-stack,"",@progbits
