#include "textflag.h"

// Register use in encryptBlocksAsm:
//
//	AX       round keys (rk)
//	DI, SI   dst, src (advanced as blocks are done)
//	CX       blocks left
//	X0..X7   the eight AES states of the 8-way loop (X0 alone in the tail)
//	X8..X14  round keys 0..6, loaded once per call
//	X15      round keys 7..10, reloaded from rk each time they are needed
//
// Eight states plus eleven round keys do not fit in the sixteen XMM
// registers, so the last four round keys go through X15; those four loads
// per eight blocks hit L1 and are hidden by out-of-order execution. (Legacy
// SSE AESENC with a memory operand would require 16-byte alignment of rk,
// which Go does not guarantee, hence the explicit unaligned MOVOU.) X15 is
// scratch in ABI0; the ABI wrapper re-zeroes it before returning to Go code.
//
// Within one round the eight AESENCs are independent, so a new one can issue
// every cycle (or two per cycle on newer cores) while earlier ones are still
// in their ~4-cycle latency: eight blocks in flight cover latency x
// throughput on current Intel and AMD parts.

// ROUND8 applies one middle AES round with key k to X0..X7.
#define ROUND8(k) \
	AESENC k, X0; \
	AESENC k, X1; \
	AESENC k, X2; \
	AESENC k, X3; \
	AESENC k, X4; \
	AESENC k, X5; \
	AESENC k, X6; \
	AESENC k, X7

// LAST8 applies the final AES round with key k to X0..X7.
#define LAST8(k) \
	AESENCLAST k, X0; \
	AESENCLAST k, X1; \
	AESENCLAST k, X2; \
	AESENCLAST k, X3; \
	AESENCLAST k, X4; \
	AESENCLAST k, X5; \
	AESENCLAST k, X6; \
	AESENCLAST k, X7

// WHITEN8 XORs round key 0 (in k) into X0..X7.
#define WHITEN8(k) \
	PXOR k, X0; \
	PXOR k, X1; \
	PXOR k, X2; \
	PXOR k, X3; \
	PXOR k, X4; \
	PXOR k, X5; \
	PXOR k, X6; \
	PXOR k, X7

// func encryptBlocksAsm(rk *[11][16]byte, dst, src *byte, n int)
TEXT ·encryptBlocksAsm(SB), NOSPLIT, $0-32
	MOVQ rk+0(FP), AX
	MOVQ dst+8(FP), DI
	MOVQ src+16(FP), SI
	MOVQ n+24(FP), CX

	MOVOU 0(AX), X8
	MOVOU 16(AX), X9
	MOVOU 32(AX), X10
	MOVOU 48(AX), X11
	MOVOU 64(AX), X12
	MOVOU 80(AX), X13
	MOVOU 96(AX), X14

	CMPQ CX, $8
	JB   tail

loop8:
	// Load all eight blocks before storing any: this is what makes
	// in-place operation (dst == src) safe.
	MOVOU 0(SI), X0
	MOVOU 16(SI), X1
	MOVOU 32(SI), X2
	MOVOU 48(SI), X3
	MOVOU 64(SI), X4
	MOVOU 80(SI), X5
	MOVOU 96(SI), X6
	MOVOU 112(SI), X7

	WHITEN8(X8)
	ROUND8(X9)
	ROUND8(X10)
	ROUND8(X11)
	ROUND8(X12)
	ROUND8(X13)
	ROUND8(X14)
	MOVOU 112(AX), X15
	ROUND8(X15)
	MOVOU 128(AX), X15
	ROUND8(X15)
	MOVOU 144(AX), X15
	ROUND8(X15)
	MOVOU 160(AX), X15
	LAST8(X15)

	MOVOU X0, 0(DI)
	MOVOU X1, 16(DI)
	MOVOU X2, 32(DI)
	MOVOU X3, 48(DI)
	MOVOU X4, 64(DI)
	MOVOU X5, 80(DI)
	MOVOU X6, 96(DI)
	MOVOU X7, 112(DI)

	ADDQ $128, SI
	ADDQ $128, DI
	SUBQ $8, CX
	CMPQ CX, $8
	JAE  loop8

tail:
	// At most seven blocks remain; do them one at a time.
	TESTQ CX, CX
	JZ    done

loop1:
	MOVOU      0(SI), X0
	PXOR       X8, X0
	AESENC     X9, X0
	AESENC     X10, X0
	AESENC     X11, X0
	AESENC     X12, X0
	AESENC     X13, X0
	AESENC     X14, X0
	MOVOU      112(AX), X15
	AESENC     X15, X0
	MOVOU      128(AX), X15
	AESENC     X15, X0
	MOVOU      144(AX), X15
	AESENC     X15, X0
	MOVOU      160(AX), X15
	AESENCLAST X15, X0
	MOVOU      X0, 0(DI)

	ADDQ       $16, SI
	ADDQ       $16, DI
	DECQ       CX
	JNZ        loop1

done:
	RET

// func aesCPUID(leaf, subleaf uint32) (eax, ebx, ecx, edx uint32)
TEXT ·aesCPUID(SB), NOSPLIT, $0-24
	MOVL leaf+0(FP), AX
	MOVL subleaf+4(FP), CX
	CPUID
	MOVL AX, eax+8(FP)
	MOVL BX, ebx+12(FP)
	MOVL CX, ecx+16(FP)
	MOVL DX, edx+20(FP)
	RET
