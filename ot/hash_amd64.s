#include "textflag.h"

// The hash of hash.go done entirely in registers: three fixed-key AES
// layers per block with the XORs between them folded into the round keys,
// so there are no intermediate arrays and no Go loops between the layers.
//
// Two identities do the folding. With S(x) = ShiftRows(SubBytes(x)), the
// last round is AESENCLAST(x, k) = S(x) ⊕ k, so anything to be XORed into
// an AES output can be XORed into the last round key instead; and round 0
// is a plain XOR with rk0, so anything to be XORed into an AES input can
// be merged with rk0. For one block (rk0, rk10 the outer round keys, s9
// the state before a layer's last round, T the tweak):
//
//	layer 1 input   x0 ⊕ rk0
//	layer 1 last    key x0 ⊕ mix ⊕ rk0 ⊕ rk10:    output y ⊕ rk0, which
//	                is already layer 2's whitened input (y = a ⊕ x0 ⊕ mix)
//	layer 2 last    key K2 = T ⊕ rk0 ⊕ rk10:       output c' = b ⊕ T ⊕ rk0
//	                = c ⊕ rk0, layer 3's whitened input
//	layer 3 last    key K2: S(s9) ⊕ rk10 ⊕ T ⊕ rk0 = d ⊕ T ⊕ rk0, so
//	                (that ⊕ c') = d ⊕ b, whose low word is the pad
//	                (the AVX-512 code uses key c' ⊕ K2 = b ⊕ rk10 instead
//	                and gets d ⊕ b directly)
//
// A layer is ten dependent AESENCs per block, so several blocks are kept
// in flight: round r of all of them is issued before round r+1 of any,
// which hides the AESENC latency behind the other blocks' throughput.
//
// The AES-NI functions use only SSE2 and AES-NI instructions (the same
// requirement as encryptBlocksAsm). Legacy SSE memory
// operands must be 16-byte aligned, which Go does not guarantee for rk,
// q, cs, x or mix, so every 16-byte memory input goes through MOVOU.

#define TWEAK_HIGH $0x746f6d65646e6174

// ---- AES-NI, eight blocks in X0..X7 ---------------------------------
//
// Register use common to senderPadsAsm and hashBlocksAsm:
//
//	AX          round keys
//	X0..X7      the eight AES states
//	X8, X9, X10 per-call constants (see each function)
//	X11, X12    round keys 1 and 2
//	X13, X14    scratch for the per-block last-round keys
//	X15         round keys 3..9, reloaded from rk each time they are needed
//
// Eight states, three constants and nine middle round keys do not fit in
// sixteen registers, so seven round keys are reloaded per layer: seven L1
// loads per 240 AESENCs, hidden by out-of-order execution. X15 is scratch
// in ABI0; the ABI wrapper re-zeroes it before returning to Go code.

#define ENC8(k) \
	AESENC k, X0; \
	AESENC k, X1; \
	AESENC k, X2; \
	AESENC k, X3; \
	AESENC k, X4; \
	AESENC k, X5; \
	AESENC k, X6; \
	AESENC k, X7

#define LAST8(k) \
	AESENCLAST k, X0; \
	AESENCLAST k, X1; \
	AESENCLAST k, X2; \
	AESENCLAST k, X3; \
	AESENCLAST k, X4; \
	AESENCLAST k, X5; \
	AESENCLAST k, X6; \
	AESENCLAST k, X7

// MIDDLE8 is rounds 1..9 of one layer on X0..X7.
#define MIDDLE8 \
	ENC8(X11); \
	ENC8(X12); \
	MOVOU 48(AX), X15; \
	ENC8(X15); \
	MOVOU 64(AX), X15; \
	ENC8(X15); \
	MOVOU 80(AX), X15; \
	ENC8(X15); \
	MOVOU 96(AX), X15; \
	ENC8(X15); \
	MOVOU 112(AX), X15; \
	ENC8(X15); \
	MOVOU 128(AX), X15; \
	ENC8(X15); \
	MOVOU 144(AX), X15; \
	ENC8(X15)

// MIDDLE1 is rounds 1..9 of one layer on X0 alone (tails).
#define MIDDLE1 \
	AESENC X11, X0; \
	AESENC X12, X0; \
	MOVOU 48(AX), X15; \
	AESENC X15, X0; \
	MOVOU 64(AX), X15; \
	AESENC X15, X0; \
	MOVOU 80(AX), X15; \
	AESENC X15, X0; \
	MOVOU 96(AX), X15; \
	AESENC X15, X0; \
	MOVOU 112(AX), X15; \
	AESENC X15, X0; \
	MOVOU 128(AX), X15; \
	AESENC X15, X0; \
	MOVOU 144(AX), X15; \
	AESENC X15, X0

// XOROUT XORs the low word of x into the output word at off(DI).
#define XOROUT(x, off) \
	MOVQ x, R8; \
	XORQ R8, off(DI)

// Sender: SI = &cs[v] for the group's first block; block k's low half of
// C(v)∧s is at 32k(SI) and its low⊕high half at 32k+16(SI).
// X8 = q01 ⊕ rk0, X9 = q01 ⊕ qm ⊕ rk0 ⊕ rk10, X10 = K2.

// SP_IN loads block k's layer 1 input x0 ⊕ rk0 = cs.lo ⊕ X8.
#define SP_IN(lo, x) \
	MOVOU lo(SI), x; \
	PXOR  X8, x

// SP_LAST1 is layer 1's last round with key x0 ⊕ mix ⊕ rk0 ⊕ rk10
// = cs.lo ⊕ cs.hi ⊕ X9.
#define SP_LAST1(lo, hi, x) \
	MOVOU      lo(SI), X13; \
	MOVOU      hi(SI), X14; \
	PXOR       X14, X13; \
	PXOR       X9, X13; \
	AESENCLAST X13, x

// func senderPadsAsm(rk *[11][16]byte, q *[4]uint64, cs *[256][4]uint64, idx uint64, out *[256]uint64)
TEXT ·senderPadsAsm(SB), NOSPLIT, $0-40
	MOVQ rk+0(FP), AX
	MOVQ q+8(FP), BX
	MOVQ cs+16(FP), SI
	MOVQ idx+24(FP), R8
	MOVQ out+32(FP), DI

	MOVOU 0(AX), X0   // rk0
	MOVOU 160(AX), X1 // rk10
	MOVOU 0(BX), X8
	PXOR  X0, X8      // q01 ⊕ rk0
	MOVOU 16(BX), X9
	PXOR  X8, X9
	PXOR  X1, X9      // q01 ⊕ qm ⊕ rk0 ⊕ rk10
	MOVQ  R8, X10     // (idx, 0)
	MOVQ  TWEAK_HIGH, R9
	MOVQ  R9, X2
	PSLLDQ $8, X2     // (0, tweakHigh)
	PXOR  X2, X10
	PXOR  X0, X10
	PXOR  X1, X10     // K2 = T ⊕ rk0 ⊕ rk10
	MOVOU 16(AX), X11
	MOVOU 32(AX), X12

	MOVQ $32, CX // 256 values, eight per group

sp8:
	SP_IN(0, X0)
	SP_IN(32, X1)
	SP_IN(64, X2)
	SP_IN(96, X3)
	SP_IN(128, X4)
	SP_IN(160, X5)
	SP_IN(192, X6)
	SP_IN(224, X7)
	MIDDLE8
	SP_LAST1(0, 16, X0)
	SP_LAST1(32, 48, X1)
	SP_LAST1(64, 80, X2)
	SP_LAST1(96, 112, X3)
	SP_LAST1(128, 144, X4)
	SP_LAST1(160, 176, X5)
	SP_LAST1(192, 208, X6)
	SP_LAST1(224, 240, X7)

	MIDDLE8
	LAST8(X10) // c' = c ⊕ rk0

	// Only the low word of c' is needed at the end, and there is no
	// register left to keep it: park it in the output word.
	MOVQ X0, 0(DI)
	MOVQ X1, 8(DI)
	MOVQ X2, 16(DI)
	MOVQ X3, 24(DI)
	MOVQ X4, 32(DI)
	MOVQ X5, 40(DI)
	MOVQ X6, 48(DI)
	MOVQ X7, 56(DI)

	MIDDLE8
	LAST8(X10) // d ⊕ T ⊕ rk0
	XOROUT(X0, 0)
	XOROUT(X1, 8)
	XOROUT(X2, 16)
	XOROUT(X3, 24)
	XOROUT(X4, 32)
	XOROUT(X5, 40)
	XOROUT(X6, 48)
	XOROUT(X7, 56)

	ADDQ $256, SI
	ADDQ $64, DI
	DECQ CX
	JNZ  sp8
	RET

// hashBlocksAsm: SI = x, DX = mix, DI = out (all at the current block),
// BX = index of the current block, R9 = blocks left, R10 = first,
// CX = shift. X8 = rk0, X9 = rk0 ⊕ rk10, X10 = (0, tweakHigh) ⊕ rk0 ⊕ rk10
// (the tweak word of each block is XORed into the low half as needed).

// HB_IN loads layer 1's input x0 ⊕ rk0.
#define HB_IN(off, x) \
	MOVOU off(SI), x; \
	PXOR  X8, x

// HB_LAST1 is layer 1's last round with key x0 ⊕ mix ⊕ rk0 ⊕ rk10.
#define HB_LAST1(off, x) \
	MOVOU      off(SI), X13; \
	MOVOU      off(DX), X14; \
	PXOR       X14, X13; \
	PXOR       X9, X13; \
	AESENCLAST X13, x

// HB_LAST2 is layer 2's last round with key K2 = T(i) ⊕ rk0 ⊕ rk10 for
// this block's i = first + (BX+k)>>shift, giving c' = c ⊕ rk0; it parks
// low(c') ⊕ i in the output word. Layer 3 then ends with the i-free key
// X10, whose low word differs from K2's by exactly i, so XORing its
// output into the parked word gives low(d ⊕ b).
#define HB_LAST2(k, x, off) \
	LEAQ       k(BX), R11; \
	SHRQ       CX, R11; \
	ADDQ       R10, R11; \
	MOVQ       R11, X13; \
	PXOR       X10, X13; \
	AESENCLAST X13, x; \
	MOVQ       x, R12; \
	XORQ       R11, R12; \
	MOVQ       R12, off(DI)

// func hashBlocksAsm(rk *[11][16]byte, x *uint64, mix *uint64, n int, first uint64, shift uint64, out *uint64)
TEXT ·hashBlocksAsm(SB), NOSPLIT, $0-56
	MOVQ rk+0(FP), AX
	MOVQ x+8(FP), SI
	MOVQ mix+16(FP), DX
	MOVQ n+24(FP), R9
	MOVQ first+32(FP), R10
	MOVQ shift+40(FP), CX
	MOVQ out+48(FP), DI
	XORQ BX, BX

	MOVOU  0(AX), X8   // rk0
	MOVOU  160(AX), X9
	PXOR   X8, X9      // rk0 ⊕ rk10
	MOVQ   TWEAK_HIGH, R11
	MOVQ   R11, X10
	PSLLDQ $8, X10
	PXOR   X9, X10     // (0, tweakHigh) ⊕ rk0 ⊕ rk10
	MOVOU  16(AX), X11
	MOVOU  32(AX), X12

	CMPQ R9, $8
	JB   hbtail

hb8:
	HB_IN(0, X0)
	HB_IN(16, X1)
	HB_IN(32, X2)
	HB_IN(48, X3)
	HB_IN(64, X4)
	HB_IN(80, X5)
	HB_IN(96, X6)
	HB_IN(112, X7)
	MIDDLE8
	HB_LAST1(0, X0)
	HB_LAST1(16, X1)
	HB_LAST1(32, X2)
	HB_LAST1(48, X3)
	HB_LAST1(64, X4)
	HB_LAST1(80, X5)
	HB_LAST1(96, X6)
	HB_LAST1(112, X7)

	MIDDLE8
	HB_LAST2(0, X0, 0)
	HB_LAST2(1, X1, 8)
	HB_LAST2(2, X2, 16)
	HB_LAST2(3, X3, 24)
	HB_LAST2(4, X4, 32)
	HB_LAST2(5, X5, 40)
	HB_LAST2(6, X6, 48)
	HB_LAST2(7, X7, 56)

	MIDDLE8
	LAST8(X10)
	XOROUT(X0, 0)
	XOROUT(X1, 8)
	XOROUT(X2, 16)
	XOROUT(X3, 24)
	XOROUT(X4, 32)
	XOROUT(X5, 40)
	XOROUT(X6, 48)
	XOROUT(X7, 56)

	ADDQ $128, SI
	ADDQ $128, DX
	ADDQ $64, DI
	ADDQ $8, BX
	SUBQ $8, R9
	CMPQ R9, $8
	JAE  hb8

hbtail:
	// At most seven blocks remain; do them one at a time.
	TESTQ R9, R9
	JZ    hbdone

hb1:
	HB_IN(0, X0)
	MIDDLE1
	HB_LAST1(0, X0)
	MIDDLE1
	HB_LAST2(0, X0, 0)
	MIDDLE1
	AESENCLAST X10, X0
	XOROUT(X0, 0)

	ADDQ $16, SI
	ADDQ $16, DX
	ADDQ $8, DI
	INCQ BX
	DECQ R9
	JNZ  hb1

hbdone:
	RET

// ---- AVX-512 VAES, 32 blocks in Z0..Z7 (four per register) ------------
//
// Register use common to senderPadsVAES and hashBlocksVAES:
//
//	AX          round keys
//	Z0..Z7      the AES states, blocks 4j..4j+3 of the group in Zj
//	Z8..Z15     Zj's per-block keys: layer 1's last-round key, then the
//	            layer 2 key (hashBlocksVAES), then layer 3's last-round key
//	Z16..Z24    round keys 1..9, each broadcast to the four lanes
//	Z25..Z27    per-call constants (see each function)
//	Z28         the qword index vector that packs the low words of two
//	            states into one register
//	Z29..Z31    function-specific
//
// With 32 vector registers everything stays in registers, including the
// per-block keys the AES-NI code has to recompute or park in memory.
// Each VAESENC does four blocks; eight independent registers cover its
// latency several times over.

#define VENC8(k) \
	VAESENC k, Z0, Z0; \
	VAESENC k, Z1, Z1; \
	VAESENC k, Z2, Z2; \
	VAESENC k, Z3, Z3; \
	VAESENC k, Z4, Z4; \
	VAESENC k, Z5, Z5; \
	VAESENC k, Z6, Z6; \
	VAESENC k, Z7, Z7

#define VMIDDLE8 \
	VENC8(Z16); \
	VENC8(Z17); \
	VENC8(Z18); \
	VENC8(Z19); \
	VENC8(Z20); \
	VENC8(Z21); \
	VENC8(Z22); \
	VENC8(Z23); \
	VENC8(Z24)

// VLASTK8 ends a layer with each state's own key.
#define VLASTK8 \
	VAESENCLAST Z8, Z0, Z0; \
	VAESENCLAST Z9, Z1, Z1; \
	VAESENCLAST Z10, Z2, Z2; \
	VAESENCLAST Z11, Z3, Z3; \
	VAESENCLAST Z12, Z4, Z4; \
	VAESENCLAST Z13, Z5, Z5; \
	VAESENCLAST Z14, Z6, Z6; \
	VAESENCLAST Z15, Z7, Z7

// VSAVE8 sets each state's key to c' ⊕ K2 = b ⊕ rk10 (K2 in k or, with
// k the key register itself, per state), layer 3's last-round key.
#define VSAVE8(k0, k1, k2, k3, k4, k5, k6, k7) \
	VPXORQ k0, Z0, Z8; \
	VPXORQ k1, Z1, Z9; \
	VPXORQ k2, Z2, Z10; \
	VPXORQ k3, Z3, Z11; \
	VPXORQ k4, Z4, Z12; \
	VPXORQ k5, Z5, Z13; \
	VPXORQ k6, Z6, Z14; \
	VPXORQ k7, Z7, Z15

// VPACK8 gathers the low word of every block (the pad) into Z0, Z2, Z4,
// Z6: eight consecutive pads per register.
#define VPACK8 \
	VPERMT2Q Z1, Z28, Z0; \
	VPERMT2Q Z3, Z28, Z2; \
	VPERMT2Q Z5, Z28, Z4; \
	VPERMT2Q Z7, Z28, Z6

// VSETUP_KEYS broadcasts round keys 1..9 into Z16..Z24 and loads the
// packing index into Z28.
#define VSETUP_KEYS \
	VBROADCASTI32X4 16(AX), Z16; \
	VBROADCASTI32X4 32(AX), Z17; \
	VBROADCASTI32X4 48(AX), Z18; \
	VBROADCASTI32X4 64(AX), Z19; \
	VBROADCASTI32X4 80(AX), Z20; \
	VBROADCASTI32X4 96(AX), Z21; \
	VBROADCASTI32X4 112(AX), Z22; \
	VBROADCASTI32X4 128(AX), Z23; \
	VBROADCASTI32X4 144(AX), Z24; \
	VMOVDQU64       hashPackIdx<>(SB), Z28

// Qwords 0, 2, ..., 14 of the concatenation of two registers.
DATA hashPackIdx<>+0(SB)/8, $0
DATA hashPackIdx<>+8(SB)/8, $2
DATA hashPackIdx<>+16(SB)/8, $4
DATA hashPackIdx<>+24(SB)/8, $6
DATA hashPackIdx<>+32(SB)/8, $8
DATA hashPackIdx<>+40(SB)/8, $10
DATA hashPackIdx<>+48(SB)/8, $12
DATA hashPackIdx<>+56(SB)/8, $14
GLOBL hashPackIdx<>(SB), RODATA|NOPTR, $64

// Sender: SI = &cs[v] for the group's first value (32 values per group,
// 32 bytes each); Z25 = q01 ⊕ rk0, Z26 = q01 ⊕ qm ⊕ rk0 ⊕ rk10,
// Z27 = K2 = T ⊕ rk0 ⊕ rk10, all broadcast; Z29, Z30 scratch.

// VSP_IN loads values 4j..4j+3 (128 bytes of cs, at lo) as layer 1's
// input x0 ⊕ rk0 into z and layer 1's last-round key
// x0 ⊕ mix ⊕ rk0 ⊕ rk10 into zk. cs interleaves the low and low⊕high
// halves; the two shuffles split them into one register each.
#define VSP_IN(lo, hi, z, zk) \
	VMOVDQU64  lo(SI), Z29; \
	VMOVDQU64  hi(SI), Z30; \
	VSHUFI64X2 $0x88, Z30, Z29, z; \
	VSHUFI64X2 $0xdd, Z30, Z29, zk; \
	VPTERNLOGQ $0x96, Z26, z, zk; \
	VPXORQ     Z25, z, z

// VSP_GROUP is a Sender group after its inputs and layer 1's keys are
// loaded: the three layers (leaving y ⊕ rk0, then c' = c ⊕ rk0 with
// layer 2's last key ka for Z0..Z3 and kb for Z4..Z7, each block's K2,
// then d ⊕ b) and the 32 pads stored at DI.
#define VSP_GROUP(ka, kb) \
	VMIDDLE8; \
	VLASTK8; \
	VMIDDLE8; \
	VAESENCLAST ka, Z0, Z0; \
	VAESENCLAST ka, Z1, Z1; \
	VAESENCLAST ka, Z2, Z2; \
	VAESENCLAST ka, Z3, Z3; \
	VAESENCLAST kb, Z4, Z4; \
	VAESENCLAST kb, Z5, Z5; \
	VAESENCLAST kb, Z6, Z6; \
	VAESENCLAST kb, Z7, Z7; \
	VSAVE8(ka, ka, ka, ka, kb, kb, kb, kb); \
	VMIDDLE8; \
	VLASTK8; \
	VPACK8; \
	VMOVDQU64 Z0, 0(DI); \
	VMOVDQU64 Z2, 64(DI); \
	VMOVDQU64 Z4, 128(DI); \
	VMOVDQU64 Z6, 192(DI)

// func senderPadsVAES(rk *[11][16]byte, q *[4]uint64, cs *[256][4]uint64, idx uint64, out *[256]uint64)
TEXT ·senderPadsVAES(SB), NOSPLIT, $0-40
	MOVQ rk+0(FP), AX
	MOVQ q+8(FP), BX
	MOVQ cs+16(FP), SI
	MOVQ idx+24(FP), R8
	MOVQ out+32(FP), DI

	VSETUP_KEYS

	// The constants are built in X0..X6 (VEX, upper bits zeroed) and
	// broadcast from lane 0.
	VMOVDQU    0(AX), X0   // rk0
	VMOVDQU    160(AX), X1 // rk10
	VMOVDQU    0(BX), X2   // q01
	VMOVDQU    16(BX), X3  // qm
	VPXOR      X0, X2, X4  // q01 ⊕ rk0
	VPXOR      X3, X4, X5
	VPXOR      X1, X5, X5  // q01 ⊕ qm ⊕ rk0 ⊕ rk10
	MOVQ       TWEAK_HIGH, R9
	VMOVQ      R8, X6
	VPINSRQ    $1, R9, X6, X6 // T = (idx, tweakHigh)
	VPXOR      X0, X6, X6
	VPXOR      X1, X6, X6     // K2
	VSHUFI64X2 $0, Z4, Z4, Z25
	VSHUFI64X2 $0, Z5, Z5, Z26
	VSHUFI64X2 $0, Z6, Z6, Z27

	MOVQ $8, CX // 256 values, 32 per group

vsp:
	VSP_IN(0, 64, Z0, Z8)
	VSP_IN(128, 192, Z1, Z9)
	VSP_IN(256, 320, Z2, Z10)
	VSP_IN(384, 448, Z3, Z11)
	VSP_IN(512, 576, Z4, Z12)
	VSP_IN(640, 704, Z5, Z13)
	VSP_IN(768, 832, Z6, Z14)
	VSP_IN(896, 960, Z7, Z15)
	VSP_GROUP(Z27, Z27)

	ADDQ $1024, SI
	ADDQ $256, DI
	DECQ CX
	JNZ  vsp
	VZEROUPPER
	RET

// func senderPads16VAES(rk *[11][16]byte, consts *[6]uint64, cs16 *[2][16][2]uint64, pairs int, out *uint64)
//
// senderPadsVAES for 1-out-of-16 OTs, two OTs a group: blocks 0..15 of
// the group (Z0..Z3) are OT a's values, 16..31 (Z4..Z7) OT b's. The Go
// caller folds each OT's row and index into three 128-bit constants
// (consts, 48 bytes an OT): A = q01 ⊕ rk0 (layer 1's input whitening),
// B = q23 ⊕ rk0 ⊕ rk10 (with C(v)∧s's high half: layer 1's last key)
// and K2 = T ⊕ rk0 ⊕ rk10 (layer 2's). cs16 holds the 16 values' halves
// of C(v)∧s, low halves then high halves, 16 bytes each. A in Z25 / Z29,
// B in Z26 / Z30, K2 in Z27 / Z31 for OT a / b.
#define VP16_IN(off, z, zb, k, kb) \
	VPXORQ off(SI), Z25, z; \
	VPXORQ off(SI), Z29, zb; \
	VPXORQ off+256(SI), Z26, k; \
	VPXORQ off+256(SI), Z30, kb

TEXT ·senderPads16VAES(SB), NOSPLIT, $0-40
	MOVQ rk+0(FP), AX
	MOVQ consts+8(FP), BX
	MOVQ cs16+16(FP), SI
	MOVQ pairs+24(FP), CX
	MOVQ out+32(FP), DI

	VSETUP_KEYS
	TESTQ CX, CX
	JZ    vp16done

vp16:
	VBROADCASTI32X4 0(BX), Z25
	VBROADCASTI32X4 16(BX), Z26
	VBROADCASTI32X4 32(BX), Z27
	VBROADCASTI32X4 48(BX), Z29
	VBROADCASTI32X4 64(BX), Z30
	VBROADCASTI32X4 80(BX), Z31
	VP16_IN(0, Z0, Z4, Z8, Z12)
	VP16_IN(64, Z1, Z5, Z9, Z13)
	VP16_IN(128, Z2, Z6, Z10, Z14)
	VP16_IN(192, Z3, Z7, Z11, Z15)
	VSP_GROUP(Z27, Z31)

	ADDQ $96, BX
	ADDQ $256, DI
	DECQ CX
	JNZ  vp16

vp16done:
	VZEROUPPER
	RET

// hashBlocksVAES: SI = x, DX = mix, DI = out (all at the current group),
// R9 = blocks left. Z25 = rk0, Z26 = rk0 ⊕ rk10,
// Z27 = (0, tweakHigh) ⊕ rk0 ⊕ rk10, all broadcast; Z29 = the next
// blocks' indices (k, 0) per lane; X30 = shift; Z31 = (first, 0)
// broadcast.

// VHB_IN sets z to layer 1's input x0 ⊕ rk0 and zk to layer 1's
// last-round key x0 ⊕ mix ⊕ rk0 ⊕ rk10 for the four blocks at off.
#define VHB_IN(off, z, zk) \
	VMOVDQU64  off(SI), z; \
	VMOVDQU64  off(DX), zk; \
	VPTERNLOGQ $0x96, Z26, z, zk; \
	VPXORQ     Z25, z, z

// VHB_INM is VHB_IN for a partial group: only the qwords selected by
// bits sh.. of R11 are loaded (the others are zero; masked-off lanes
// are never touched, so reading past the end of x or mix is not a risk).
#define VHB_INM(off, sh, z, zk) \
	MOVQ          R11, R12; \
	SHRQ          $sh, R12; \
	KMOVW         R12, K1; \
	VMOVDQU64.Z   off(SI), K1, z; \
	VMOVDQU64.Z   off(DX), K1, zk; \
	VPTERNLOGQ    $0x96, Z26, z, zk; \
	VPXORQ        Z25, z, z

// VHB_K2 sets zk to layer 2's last-round key T(i) ⊕ rk0 ⊕ rk10 for the
// next four blocks, i = first + k>>shift, and advances the indices.
#define VHB_K2(zk) \
	VPSRLQ X30, Z29, zk; \
	VPADDQ Z31, zk, zk; \
	VPXORQ Z27, zk, zk; \
	VPADDQ hashIdxStep<>(SB), Z29, Z29

// VHB_GROUP is a whole group after its inputs are loaded: the three
// layers, leaving the packed pads in Z0, Z2, Z4, Z6.
#define VHB_GROUP \
	VMIDDLE8; \
	VLASTK8; \
	VMIDDLE8; \
	VHB_K2(Z8); \
	VHB_K2(Z9); \
	VHB_K2(Z10); \
	VHB_K2(Z11); \
	VHB_K2(Z12); \
	VHB_K2(Z13); \
	VHB_K2(Z14); \
	VHB_K2(Z15); \
	VLASTK8; \
	VSAVE8(Z8, Z9, Z10, Z11, Z12, Z13, Z14, Z15); \
	VMIDDLE8; \
	VLASTK8; \
	VPACK8

// The block indices of one register, (k, 0) per lane, and their step.
DATA hashIdxInit<>+0(SB)/8, $0
DATA hashIdxInit<>+8(SB)/8, $0
DATA hashIdxInit<>+16(SB)/8, $1
DATA hashIdxInit<>+24(SB)/8, $0
DATA hashIdxInit<>+32(SB)/8, $2
DATA hashIdxInit<>+40(SB)/8, $0
DATA hashIdxInit<>+48(SB)/8, $3
DATA hashIdxInit<>+56(SB)/8, $0
GLOBL hashIdxInit<>(SB), RODATA|NOPTR, $64

DATA hashIdxStep<>+0(SB)/8, $4
DATA hashIdxStep<>+8(SB)/8, $0
DATA hashIdxStep<>+16(SB)/8, $4
DATA hashIdxStep<>+24(SB)/8, $0
DATA hashIdxStep<>+32(SB)/8, $4
DATA hashIdxStep<>+40(SB)/8, $0
DATA hashIdxStep<>+48(SB)/8, $4
DATA hashIdxStep<>+56(SB)/8, $0
GLOBL hashIdxStep<>(SB), RODATA|NOPTR, $64

// func hashBlocksVAES(rk *[11][16]byte, x *uint64, mix *uint64, n int, first uint64, shift uint64, out *uint64)
TEXT ·hashBlocksVAES(SB), NOSPLIT, $0-56
	MOVQ rk+0(FP), AX
	MOVQ x+8(FP), SI
	MOVQ mix+16(FP), DX
	MOVQ n+24(FP), R9
	MOVQ first+32(FP), R10
	MOVQ shift+40(FP), R11
	MOVQ out+48(FP), DI

	VSETUP_KEYS
	VBROADCASTI32X4 0(AX), Z25
	VBROADCASTI32X4 160(AX), Z26
	VPXORQ          Z25, Z26, Z26 // rk0 ⊕ rk10
	MOVQ            TWEAK_HIGH, R12
	VMOVQ           R12, X27
	VPSLLDQ         $8, X27, X27    // (0, tweakHigh)
	VSHUFI64X2      $0, Z27, Z27, Z27
	VPXORQ          Z26, Z27, Z27
	VMOVDQU64       hashIdxInit<>(SB), Z29
	VMOVQ           R11, X30
	VMOVQ           R10, X31
	VSHUFI64X2      $0, Z31, Z31, Z31 // (first, 0) per lane

	CMPQ R9, $32
	JB   vhbtail

vhb:
	VHB_IN(0, Z0, Z8)
	VHB_IN(64, Z1, Z9)
	VHB_IN(128, Z2, Z10)
	VHB_IN(192, Z3, Z11)
	VHB_IN(256, Z4, Z12)
	VHB_IN(320, Z5, Z13)
	VHB_IN(384, Z6, Z14)
	VHB_IN(448, Z7, Z15)
	VHB_GROUP
	VMOVDQU64 Z0, 0(DI)
	VMOVDQU64 Z2, 64(DI)
	VMOVDQU64 Z4, 128(DI)
	VMOVDQU64 Z6, 192(DI)

	ADDQ $512, SI
	ADDQ $512, DX
	ADDQ $256, DI
	SUBQ $32, R9
	CMPQ R9, $32
	JAE  vhb

vhbtail:
	// r < 32 blocks remain: one more group with masked loads and stores.
	// Its unused lanes hash zeros, which are computed and dropped.
	TESTQ R9, R9
	JZ    vhbdone

	LEAQ (R9)(R9*1), CX // 2r input qwords
	MOVQ $1, R11
	SHLQ CX, R11
	DECQ R11            // bit q set for input qword q < 2r
	VHB_INM(0, 0, Z0, Z8)
	VHB_INM(64, 8, Z1, Z9)
	VHB_INM(128, 16, Z2, Z10)
	VHB_INM(192, 24, Z3, Z11)
	VHB_INM(256, 32, Z4, Z12)
	VHB_INM(320, 40, Z5, Z13)
	VHB_INM(384, 48, Z6, Z14)
	VHB_INM(448, 56, Z7, Z15)
	VHB_GROUP

	MOVQ  R9, CX
	MOVQ  $1, R11
	SHLQ  CX, R11
	DECQ  R11 // bit k set for output k < r
	KMOVW R11, K1
	VMOVDQU64 Z0, K1, 0(DI)
	SHRQ  $8, R11
	KMOVW R11, K1
	VMOVDQU64 Z2, K1, 64(DI)
	SHRQ  $8, R11
	KMOVW R11, K1
	VMOVDQU64 Z4, K1, 128(DI)
	SHRQ  $8, R11
	KMOVW R11, K1
	VMOVDQU64 Z6, K1, 192(DI)

vhbdone:
	VZEROUPPER
	RET

// func hashXGETBV0() (eax uint32)
TEXT ·hashXGETBV0(SB), NOSPLIT, $0-4
	XORL   CX, CX
	XGETBV
	MOVL   AX, eax+0(FP)
	RET
