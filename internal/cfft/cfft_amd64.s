//go:build amd64 && !purego

#include "textflag.h"

// CMUL(x, wr, wi, out, tmp): out = x·w for four complex lanes, w given as
// (re, re) and (im, im) per lane: tmp = swap(x)·wi = (xi·wi, xr·wi), then
// out = x·wr ∓ tmp = (xr·wr − xi·wi, xi·wr + xr·wi).
#define CMUL(x, wr, wi, out) \
	VPERMILPD      $0x55, x, out \
	VMULPD         wi, out, out  \
	VFMADDSUB231PD wr, x, out

// func radix4Asm(a *complex128, m, h int, tw *float64)
// For each block of 4h: b0..b3 = a[start + {0,1,2,3}·h + k], k < h in
// steps of 4; the table has 6 vectors (384 bytes) per step.
TEXT ·radix4Asm(SB), NOSPLIT, $0-32
	MOVQ a+0(FP), DI
	MOVQ m+8(FP), CX
	MOVQ h+16(FP), DX
	MOVQ tw+24(FP), R8
	SHLQ $4, DX
	SHLQ $4, CX
	LEAQ (DI)(CX*1), R15

r4Block:
	MOVQ DI, SI
	MOVQ R8, R9
	LEAQ (DI)(DX*1), R10

r4Loop:
	LEAQ    (SI)(DX*2), R11
	VMOVUPD (SI), Z0
	VMOVUPD (SI)(DX*1), Z1
	VMOVUPD (R11), Z2
	VMOVUPD (R11)(DX*1), Z3
	VMOVUPD 0(R9), Z20
	VMOVUPD 64(R9), Z21
	VMOVUPD 128(R9), Z22
	VMOVUPD 192(R9), Z23
	VMOVUPD 256(R9), Z24
	VMOVUPD 320(R9), Z25
	CMUL(Z1, Z20, Z21, Z4)
	CMUL(Z3, Z20, Z21, Z5)
	VADDPD  Z4, Z0, Z6
	VSUBPD  Z4, Z0, Z7
	VADDPD  Z5, Z2, Z8
	VSUBPD  Z5, Z2, Z9
	CMUL(Z8, Z22, Z23, Z10)
	CMUL(Z9, Z24, Z25, Z11)
	VADDPD  Z10, Z6, Z12
	VSUBPD  Z10, Z6, Z13
	VADDPD  Z11, Z7, Z14
	VSUBPD  Z11, Z7, Z15
	VMOVUPD Z12, (SI)
	VMOVUPD Z14, (SI)(DX*1)
	VMOVUPD Z13, (R11)
	VMOVUPD Z15, (R11)(DX*1)
	ADDQ    $64, SI
	ADDQ    $384, R9
	CMPQ    SI, R10
	JB      r4Loop

	LEAQ (DI)(DX*4), DI
	CMPQ DI, R15
	JB   r4Block
	VZEROUPPER
	RET

// func radix2Asm(a *complex128, m, h int, tw *float64)
// For each block of 2h: lo = a[start+k], hi = a[start+h+k]; the table has
// 2 vectors (128 bytes) per step of 4.
TEXT ·radix2Asm(SB), NOSPLIT, $0-32
	MOVQ a+0(FP), DI
	MOVQ m+8(FP), CX
	MOVQ h+16(FP), DX
	MOVQ tw+24(FP), R8
	SHLQ $4, DX
	SHLQ $4, CX
	LEAQ (DI)(CX*1), R15

r2Block:
	MOVQ DI, SI
	MOVQ R8, R9
	LEAQ (DI)(DX*1), R10

r2Loop:
	VMOVUPD (SI), Z0
	VMOVUPD (SI)(DX*1), Z1
	VMOVUPD 0(R9), Z20
	VMOVUPD 64(R9), Z21
	CMUL(Z1, Z20, Z21, Z4)
	VADDPD  Z4, Z0, Z6
	VSUBPD  Z4, Z0, Z7
	VMOVUPD Z6, (SI)
	VMOVUPD Z7, (SI)(DX*1)
	ADDQ    $64, SI
	ADDQ    $128, R9
	CMPQ    SI, R10
	JB      r2Loop

	LEAQ (DI)(DX*2), DI
	CMPQ DI, R15
	JB   r2Block
	VZEROUPPER
	RET
