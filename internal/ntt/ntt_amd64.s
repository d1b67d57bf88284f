//go:build amd64 && !purego

#include "textflag.h"

// Register use in every kernel:
//   Z31 = q, Z30 = 2q, Z29 = 4q (all lanes);
//   Z28 = w, Z27 = wp, Z26 = wp>>32 (the twiddle and Shoup's quotient).
//
// SHOUP(y) replaces y (any 64-bit lanes) by T = y·w − q̃·q ∈ [0, 4q),
// where q̃ is Shoup's quotient ⌊y·wp/2^64⌋ less at most 2. AVX-512 has no
// 64×64→128 multiply: q̃ is the sum of the three 32×32-bit products that
// reach the high half, each shifted; the dropped low product and carries
// are < 3·2^32, hence the error of at most 2 (one more conditional
// subtraction of slack for the callers). The low halves of y·w and q̃·q
// come from VPMULLQ. Clobbers Z4–Z7.
#define SHOUP(y) \
	VPSRLQ   $32, y, Z7  \
	VPMULUDQ Z26, y, Z4  \
	VPMULUDQ Z27, Z7, Z5 \
	VPMULUDQ Z26, Z7, Z6 \
	VPSRLQ   $32, Z4, Z4 \
	VPSRLQ   $32, Z5, Z5 \
	VPADDQ   Z4, Z6, Z6  \
	VPADDQ   Z5, Z6, Z6  \
	VPMULLQ  Z28, y, y   \
	VPMULLQ  Z31, Z6, Z6 \
	VPSUBQ   Z6, y, y

// BUTTERFLY (forward, Cooley–Tukey, Harvey) takes X in Z0 and Y in Z1,
// both < 6q, and leaves X′ = X mod 2q + T in Z2 and Y′ = X mod 2q − T + 4q
// in Z3, both < 6q (T = SHOUP(Y) < 4q). 6q < 2^64 needs q < 2^61.
#define BUTTERFLY \
	SHOUP(Z1)             \
	VPSUBQ  Z29, Z0, Z2   \
	VPMINUQ Z2, Z0, Z0    \
	VPSUBQ  Z30, Z0, Z2   \
	VPMINUQ Z2, Z0, Z0    \
	VPADDQ  Z1, Z0, Z2    \
	VPSUBQ  Z1, Z0, Z3    \
	VPADDQ  Z29, Z3, Z3

// IBUTTERFLY (inverse, Gentleman–Sande) takes X in Z0 and Y in Z1, both
// < 2q, and leaves X′ = (X + Y) mod 2q in Z2 and Y′ = SHOUP(X − Y + 2q)
// mod 2q in Z3, both < 2q.
#define IBUTTERFLY \
	VPADDQ  Z1, Z0, Z2  \
	VPSUBQ  Z30, Z2, Z3 \
	VPMINUQ Z3, Z2, Z2  \
	VPSUBQ  Z1, Z0, Z1  \
	VPADDQ  Z30, Z1, Z1 \
	SHOUP(Z1)           \
	VPSUBQ  Z30, Z1, Z3 \
	VPMINUQ Z3, Z1, Z3

#define CONSTANTS(qreg) \
	VPBROADCASTQ qreg, Z31     \
	VPADDQ       Z31, Z31, Z30 \
	VPADDQ       Z30, Z30, Z29

// WIDE(fly) is one stage with butterfly distance t ≥ 8 over m groups: for
// group i < m, X = a[2it : 2it+t], Y = a[2it+t : 2it+2t], twiddle w[m+i],
// read from src and written to dst (src = dst but for a first stage).
#define WIDE(fly, group, inner) \
	MOVQ dst+0(FP), DI             \
	MOVQ src+8(FP), R12            \
	SUBQ DI, R12                   \
	MOVQ t+16(FP), CX              \
	MOVQ m+24(FP), DX              \
	MOVQ w+32(FP), R8              \
	MOVQ wp+40(FP), R9             \
	MOVQ q+48(FP), AX              \
	CONSTANTS(AX)                  \
	LEAQ (R8)(DX*8), R8            \
	LEAQ (R9)(DX*8), R9            \
	SHLQ $3, CX                    \
group:                         \
	VPBROADCASTQ (R8), Z28         \
	VPBROADCASTQ (R9), Z27         \
	VPSRLQ       $32, Z27, Z26     \
	MOVQ         DI, SI            \
	LEAQ         (DI)(CX*1), R10   \
	MOVQ         R10, R11          \
inner:                         \
	VMOVDQU64 (SI)(R12*1), Z0      \
	VMOVDQU64 (R10)(R12*1), Z1     \
	fly                            \
	VMOVDQU64 Z2, (SI)             \
	VMOVDQU64 Z3, (R10)            \
	ADDQ      $64, SI              \
	ADDQ      $64, R10             \
	CMPQ      SI, R11              \
	JB        inner                \
	LEAQ      (DI)(CX*2), DI       \
	ADDQ      $8, R8               \
	ADDQ      $8, R9               \
	DECQ      DX                   \
	JNZ       group                \
	VZEROUPPER                     \
	RET

// NARROW(fly) is one stage with distance 4, 2 or 1: each block of 16 is
// loaded (from src) as A, B; X and Y are gathered by idx[0], idx[1]; the
// results go back (to dst) by idx[2] (A) and idx[3] (B). w and wp hold
// one twiddle per X lane, 8 per block.
#define NARROW(fly, loop) \
	MOVQ      dst+0(FP), DI        \
	MOVQ      src+8(FP), R12       \
	SUBQ      DI, R12              \
	MOVQ      blocks+16(FP), DX    \
	MOVQ      w+24(FP), R8         \
	MOVQ      wp+32(FP), R9        \
	MOVQ      q+40(FP), AX         \
	MOVQ      idx+48(FP), BX       \
	CONSTANTS(AX)                  \
	VMOVDQU64 0(BX), Z24           \
	VMOVDQU64 64(BX), Z23          \
	VMOVDQU64 128(BX), Z22         \
	VMOVDQU64 192(BX), Z21         \
loop:                          \
	VMOVDQU64 (DI)(R12*1), Z10     \
	VMOVDQU64 64(DI)(R12*1), Z11   \
	VMOVDQA64 Z10, Z0              \
	VPERMT2Q  Z11, Z24, Z0         \
	VMOVDQA64 Z10, Z1              \
	VPERMT2Q  Z11, Z23, Z1         \
	VMOVDQU64 (R8), Z28            \
	VMOVDQU64 (R9), Z27            \
	VPSRLQ    $32, Z27, Z26        \
	fly                            \
	VMOVDQA64 Z2, Z4               \
	VPERMT2Q  Z3, Z22, Z4          \
	VPERMT2Q  Z3, Z21, Z2          \
	VMOVDQU64 Z4, (DI)             \
	VMOVDQU64 Z2, 64(DI)           \
	ADDQ      $128, DI             \
	ADDQ      $64, R8              \
	ADDQ      $64, R9              \
	DECQ      DX                   \
	JNZ       loop                 \
	VZEROUPPER                     \
	RET

// func fwdWide(dst, src *uint64, t, m int, w, wp *uint64, q uint64)
TEXT ·fwdWide(SB), NOSPLIT, $0-56
	WIDE(BUTTERFLY, fwdGroup, fwdInner)

// func invWide(dst, src *uint64, t, m int, w, wp *uint64, q uint64)
TEXT ·invWide(SB), NOSPLIT, $0-56
	WIDE(IBUTTERFLY, invGroup, invInner)

// func fwdNarrow(dst, src *uint64, blocks int, w, wp *uint64, q uint64, idx *[4][8]uint64)
TEXT ·fwdNarrow(SB), NOSPLIT, $0-56
	NARROW(BUTTERFLY, fwdNarrowLoop)

// func invNarrow(dst, src *uint64, blocks int, w, wp *uint64, q uint64, idx *[4][8]uint64)
TEXT ·invNarrow(SB), NOSPLIT, $0-56
	NARROW(IBUTTERFLY, invNarrowLoop)

// func reduce6q(a *uint64, n int, q uint64)
// Maps values in [0, 6q) to [0, q), 8 at a time.
TEXT ·reduce6q(SB), NOSPLIT, $0-24
	MOVQ a+0(FP), DI
	MOVQ n+8(FP), DX
	MOVQ q+16(FP), AX
	CONSTANTS(AX)
	SHRQ $3, DX

reduceLoop:
	VMOVDQU64 (DI), Z0
	VPSUBQ    Z29, Z0, Z1
	VPMINUQ   Z1, Z0, Z0
	VPSUBQ    Z30, Z0, Z1
	VPMINUQ   Z1, Z0, Z0
	VPSUBQ    Z31, Z0, Z1
	VPMINUQ   Z1, Z0, Z0
	VMOVDQU64 Z0, (DI)
	ADDQ      $64, DI
	DECQ      DX
	JNZ       reduceLoop
	VZEROUPPER
	RET

// func scaleReduce(a *uint64, n int, w, wp, q uint64)
// a[i] = a[i]·w mod q in [0, q) for a[i] < 2q (SHOUP < 4q, then two
// conditional subtractions): the inverse's factor N⁻¹.
TEXT ·scaleReduce(SB), NOSPLIT, $0-40
	MOVQ a+0(FP), DI
	MOVQ n+8(FP), DX
	MOVQ q+32(FP), AX
	CONSTANTS(AX)
	VPBROADCASTQ w+16(FP), Z28
	VPBROADCASTQ wp+24(FP), Z27
	VPSRLQ       $32, Z27, Z26
	SHRQ         $3, DX

scaleLoop:
	VMOVDQU64 (DI), Z1
	SHOUP(Z1)
	VPSUBQ    Z30, Z1, Z2
	VPMINUQ   Z2, Z1, Z1
	VPSUBQ    Z31, Z1, Z2
	VPMINUQ   Z2, Z1, Z1
	VMOVDQU64 Z1, (DI)
	ADDQ      $64, DI
	DECQ      DX
	JNZ       scaleLoop
	VZEROUPPER
	RET

// func butterflies(n int, q uint64)
// n butterflies' worth of BUTTERFLY on registers only, 8 lanes each, every
// one independent of the last (X and Y restored by register moves): the
// compute limit of the kernels above, for BenchmarkForward's ratio.
TEXT ·butterflies(SB), NOSPLIT, $0-16
	MOVQ n+0(FP), DX
	MOVQ q+8(FP), AX
	CONSTANTS(AX)
	VMOVDQA64 Z31, Z10
	VMOVDQA64 Z30, Z11
	VMOVDQA64 Z31, Z28
	VMOVDQA64 Z30, Z27
	VPSRLQ    $32, Z27, Z26
	SHRQ      $3, DX

flyLoop:
	VMOVDQA64 Z10, Z0
	VMOVDQA64 Z11, Z1
	BUTTERFLY
	DECQ      DX
	JNZ       flyLoop
	VZEROUPPER
	RET
