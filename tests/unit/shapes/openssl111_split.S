/* SPDX-License-Identifier: BSD-2-Clause
 * The code shapes of Debian 11's OpenSSL 1.1.1w libssl (read from its disassembly), reduced to
 * what locate_secret_logger reads:
 *  - SSL_CTX_get_keylog_callback reads the callback at SSL_CTX+0x3a0;
 *  - SSL_get_client_random goes through the s3 pointer: *(s+0xa8)+0xb8;
 *  - GCC split nss_keylog_int after its callback check: the callers check the callback and
 *    jump to the split-out body, which calls it (so hooking the body would miss every program
 *    without a key log callback); ssl_log_secret passes the client random and its length 32.
 * SSL_test_expected_logger (ssl_log_secret) marks where the probe must go. */
	.section .rodata
	.globl OPENSSL_version_text_test
OPENSSL_version_text_test:
	.asciz "OpenSSL 1.1.1w  11 Sep 2023"
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
	mov 0x3a0(%rdi),%rax
	ret
	.cfi_endproc
	.globl SSL_get_client_random
	.type SSL_get_client_random,@function
SSL_get_client_random:
	.cfi_startproc
	mov 0xa8(%rdi),%rax
	lea 0xb8(%rax),%rsi
	mov $0x20,%eax
	ret
	.cfi_endproc
	.type keylog_body,@function
keylog_body:
	.cfi_startproc
	push %r15
	.cfi_def_cfa_offset 16
	mov 0x5a0(%rsi),%rax
	mov %rsi,%rdi
	call *0x3a0(%rax)
	pop %r15
	.cfi_def_cfa_offset 8
	ret
	.cfi_endproc
	.type rsa_logger,@function
rsa_logger:
	.cfi_startproc
	mov 0x5a0(%rdi),%rax
	cmpq $0x0,0x3a0(%rax)
	je 1f
	mov %r8,%r9
	mov %rsi,%rdx
	mov %rcx,%r8
	mov %rdi,%rsi
	mov $0x8,%ecx
	jmp keylog_body
1:	mov $0x1,%eax
	ret
	.cfi_endproc
	.globl SSL_test_expected_logger
	.type SSL_test_expected_logger,@function
SSL_test_expected_logger:
	.cfi_startproc
	mov %rdi,%r10
	mov %rdx,%r8
	mov %rsi,%rdi
	mov %rcx,%r9
	mov 0x5a0(%r10),%rax
	cmpq $0x0,0x3a0(%rax)
	je 1f
	mov 0xa8(%r10),%rax
	mov $0x20,%ecx
	mov %r10,%rsi
	lea 0xb8(%rax),%rdx
	jmp keylog_body
1:	mov $0x1,%eax
	ret
	.cfi_endproc
	.section .note.GNU-stack,"",@progbits
