// The innermost loop of the matrix multiplication (see gemm.ts): one MR x NR tile of C as
// the sum over kc steps of (column of a packed A panel) times (row of a packed B panel).
//
// Three implementations with the same contract:
// - "wasm-simd": a 318-byte WebAssembly module built below, using 128-bit SIMD (four float32
//   lanes per instruction) with the whole 4 x 8 tile held in eight vector registers. It runs
//   5-8x faster than the best plain JavaScript, because JS has no SIMD and does every
//   float32 multiply-add one at a time in double precision.
// - "wasm-fma": the same module with each multiply and add fused into one relaxed-SIMD
//   f32x4.relaxed_madd (an FMA instruction on x86 and ARM): half the arithmetic instructions,
//   and one rounding instead of two, so results differ from "wasm-simd" in the last bits.
//   Node 22 has relaxed SIMD; Node 20 behind a V8 flag, which relaxedSimdAvailable() sets.
// - "js": the same loop in plain JavaScript, for runtimes without WebAssembly SIMD and as
//   the readable reference the WebAssembly version is checked against in the tests.
//
// Both read and write one shared Float32Array, `heap` (for wasm: its linear memory).
// Layout of the panels, as gemm.ts packs them:
//   A panel: kc steps of MR floats   a[p * MR + i] = A(row i, step p)
//   B panel: kc steps of NR floats   b[p * bStride + j] = B(step p, column j)
//            (bStride NR for a packed panel; wider for rows of B copied into the heap as they are)
//   C tile:  MR rows of NR floats, cStride floats from one row to the next; run() adds the
//            product to it (C += A panel · B panel: the sum over the panels is formed first,
//            from 0, then added, so the rounding is the same as adding a separate tile).

import {
  F32X4_ADD, F32X4_MUL, F32X4_RELAXED_MADD, I32, I32_ADD, I32_LT_U, I32_MUL, V128,
  i32Const, localGet, localSet, v128Load, v128Load32Splat, v128Store, wasmModule,
} from "./wasm-bytes.ts";

export const MR = 4;
export const NR = 8;

export type MicroKernelKind = "wasm-fma" | "wasm-simd" | "js";

export interface MicroKernel {
  kind: MicroKernelKind;
  heap: Float32Array;
  /**
   * C tile += A panel · B panel over kc >= 1 steps; aAt, bAt, cAt are float indices into heap,
   * bStride floats from one step of B to the next, cStride from one row of C to the next.
   */
  run(kc: number, aAt: number, bAt: number, cAt: number, bStride: number, cStride: number): void;
}

/**
 * A micro-kernel over a heap of at least `floats` floats: by default the fastest the runtime has
 * (wasm-fma, then wasm-simd, then js); a kind asked for by name throws where it is unavailable.
 * FINALBN_FMA=0 turns the default FMA off (to compare, or to reproduce results from before it).
 */
export function createMicroKernel(floats: number, kind?: MicroKernelKind): MicroKernel {
  if (kind === "js") return jsMicroKernel(floats);
  if (kind) return wasmMicroKernel(floats, kind === "wasm-fma");
  if (globalThis.process?.env.FINALBN_FMA !== "0" && relaxedSimdAvailable()) return wasmMicroKernel(floats, true);
  try {
    return wasmMicroKernel(floats, false);
  } catch {
    return jsMicroKernel(floats);
  }
}

let relaxedSimd: boolean | undefined;

/**
 * Whether this runtime compiles f32x4.relaxed_madd. Node 20 needs the V8 flag
 * --experimental-wasm-relaxed-simd; setting it from the process works as long as it is set before
 * the module is compiled, and worker threads share it.
 */
export function relaxedSimdAvailable(): boolean {
  if (relaxedSimd !== undefined) return relaxedSimd;
  const bytes = microKernelModuleBytes(true);
  relaxedSimd = WebAssembly.validate(bytes);
  if (!relaxedSimd) {
    try {
      // Synchronous, and absent (so no FMA) outside Node 20.16+ rather than a failed import.
      const v8 = globalThis.process?.getBuiltinModule?.("node:v8") as typeof import("node:v8") | undefined;
      v8?.setFlagsFromString("--experimental-wasm-relaxed-simd");
      relaxedSimd = WebAssembly.validate(bytes);
    } catch {
      relaxedSimd = false;
    }
  }
  return relaxedSimd;
}

// ---------------------------------------------------------------- plain JavaScript

function jsMicroKernel(floats: number): MicroKernel {
  const heap = new Float32Array(floats);
  const run = (kc: number, aAt: number, bAt: number, cAt: number, bStride: number, cStride: number): void => {
    const h = heap;
    let c00 = 0, c01 = 0, c02 = 0, c03 = 0, c04 = 0, c05 = 0, c06 = 0, c07 = 0;
    let c10 = 0, c11 = 0, c12 = 0, c13 = 0, c14 = 0, c15 = 0, c16 = 0, c17 = 0;
    let c20 = 0, c21 = 0, c22 = 0, c23 = 0, c24 = 0, c25 = 0, c26 = 0, c27 = 0;
    let c30 = 0, c31 = 0, c32 = 0, c33 = 0, c34 = 0, c35 = 0, c36 = 0, c37 = 0;
    for (let p = 0; p < kc; p++, aAt += MR, bAt += bStride) {
      const a0 = h[aAt], a1 = h[aAt + 1], a2 = h[aAt + 2], a3 = h[aAt + 3];
      const b0 = h[bAt], b1 = h[bAt + 1], b2 = h[bAt + 2], b3 = h[bAt + 3];
      const b4 = h[bAt + 4], b5 = h[bAt + 5], b6 = h[bAt + 6], b7 = h[bAt + 7];
      c00 += a0 * b0; c01 += a0 * b1; c02 += a0 * b2; c03 += a0 * b3;
      c04 += a0 * b4; c05 += a0 * b5; c06 += a0 * b6; c07 += a0 * b7;
      c10 += a1 * b0; c11 += a1 * b1; c12 += a1 * b2; c13 += a1 * b3;
      c14 += a1 * b4; c15 += a1 * b5; c16 += a1 * b6; c17 += a1 * b7;
      c20 += a2 * b0; c21 += a2 * b1; c22 += a2 * b2; c23 += a2 * b3;
      c24 += a2 * b4; c25 += a2 * b5; c26 += a2 * b6; c27 += a2 * b7;
      c30 += a3 * b0; c31 += a3 * b1; c32 += a3 * b2; c33 += a3 * b3;
      c34 += a3 * b4; c35 += a3 * b5; c36 += a3 * b6; c37 += a3 * b7;
    }
    let t = cAt;
    h[t] += c00; h[t + 1] += c01; h[t + 2] += c02; h[t + 3] += c03; h[t + 4] += c04; h[t + 5] += c05; h[t + 6] += c06; h[t + 7] += c07;
    t += cStride;
    h[t] += c10; h[t + 1] += c11; h[t + 2] += c12; h[t + 3] += c13; h[t + 4] += c14; h[t + 5] += c15; h[t + 6] += c16; h[t + 7] += c17;
    t += cStride;
    h[t] += c20; h[t + 1] += c21; h[t + 2] += c22; h[t + 3] += c23; h[t + 4] += c24; h[t + 5] += c25; h[t + 6] += c26; h[t + 7] += c27;
    t += cStride;
    h[t] += c30; h[t + 1] += c31; h[t + 2] += c32; h[t + 3] += c33; h[t + 4] += c34; h[t + 5] += c35; h[t + 6] += c36; h[t + 7] += c37;
  };
  return { kind: "js", heap, run };
}

// ---------------------------------------------------------------- WebAssembly SIMD
//
// The module, in WebAssembly text format (c_i_h holds tile row i, columns 4h .. 4h+3):
//
// (module
//   (import "env" "memory" (memory 1))
//   (func (export "run") (param $kc i32) (param $a i32) (param $b i32) (param $c i32) (param $bstride i32) (param $cstride i32)
//     (local $c0_0 v128) (local $c0_1 v128) ... (local $c3_1 v128)   ;; 8 accumulators, start at 0
//     (local $b_0 v128) (local $b_1 v128) (local $ai v128) (local $end i32)
//     (local.set $end (i32.add (local.get $a) (i32.mul (local.get $kc) (i32.const 16))))
//     (loop $step
//       (local.set $b_0 (v128.load offset=0 (local.get $b)))          ;; B(p, 0..3)
//       (local.set $b_1 (v128.load offset=16 (local.get $b)))         ;; B(p, 4..7)
//       ;; for i in 0..3:
//       (local.set $ai (v128.load32_splat offset=4*i (local.get $a))) ;; A(i, p) in all 4 lanes
//       (local.set $c<i>_0 (f32x4.add (local.get $c<i>_0) (f32x4.mul (local.get $ai) (local.get $b_0))))
//       (local.set $c<i>_1 (f32x4.add (local.get $c<i>_1) (f32x4.mul (local.get $ai) (local.get $b_1))))
//       (local.set $a (i32.add (local.get $a) (i32.const 16)))        ;; next step: MR floats on
//       (local.set $b (i32.add (local.get $b) (local.get $bstride)))  ;;            a row of B on
//       (br_if $step (i32.lt_u (local.get $a) (local.get $end))))
//     ;; for i: for h: (v128.store offset=16*h (local.get $c)
//     ;;                  (f32x4.add (v128.load offset=16*h (local.get $c)) (local.get $c<i>_<h>)))
//     ;;        (local.set $c (i32.add (local.get $c) (local.get $cstride)))        ;; next row of C
//   ))
//
// Below, each instruction is spelled as its bytes from the WebAssembly binary format spec
// (wasm-bytes.ts).

const VECTORS = NR / 4; // v128 registers per tile row

function wasmMicroKernel(floats: number, fma: boolean): MicroKernel {
  const pages = Math.ceil((floats * 4) / 65536);
  const memory = new WebAssembly.Memory({ initial: pages, maximum: pages });
  const module = new WebAssembly.Module(microKernelModuleBytes(fma));
  const instance = new WebAssembly.Instance(module, { env: { memory } });
  const runWasm = instance.exports.run as (kc: number, a: number, b: number, c: number, bStride: number, cStride: number) => void;
  const heap = new Float32Array(memory.buffer);
  // The wasm function takes byte addresses.
  const run = (kc: number, aAt: number, bAt: number, cAt: number, bStride: number, cStride: number): void =>
    runWasm(kc, aAt * 4, bAt * 4, cAt * 4, bStride * 4, cStride * 4);
  return { kind: fma ? "wasm-fma" : "wasm-simd", heap, run };
}

function microKernelModuleBytes(fma: boolean): Uint8Array<ArrayBuffer> {
  // Local indices: 0..5 are the parameters kc, a, b, c, bStride, cStride.
  const [KC, A, B, C, B_STRIDE, C_STRIDE] = [0, 1, 2, 3, 4, 5];
  const acc = (i: number, h: number) => 6 + i * VECTORS + h;
  const bVec = (h: number) => 6 + MR * VECTORS + h;
  const AI = 6 + MR * VECTORS + VECTORS;
  const END = AI + 1;

  const body: number[] = [];
  body.push(...localGet(A), ...localGet(KC), ...i32Const(MR * 4), ...I32_MUL, ...I32_ADD, ...localSet(END));
  body.push(0x03, 0x40); // loop (no result)
  for (let h = 0; h < VECTORS; h++) body.push(...localGet(B), ...v128Load(16 * h), ...localSet(bVec(h)));
  for (let i = 0; i < MR; i++) {
    body.push(...localGet(A), ...v128Load32Splat(4 * i), ...localSet(AI));
    for (let h = 0; h < VECTORS; h++) {
      if (fma) body.push(...localGet(AI), ...localGet(bVec(h)), ...localGet(acc(i, h)), ...F32X4_RELAXED_MADD, ...localSet(acc(i, h)));
      else body.push(...localGet(acc(i, h)), ...localGet(AI), ...localGet(bVec(h)), ...F32X4_MUL, ...F32X4_ADD, ...localSet(acc(i, h)));
    }
  }
  body.push(...localGet(A), ...i32Const(MR * 4), ...I32_ADD, ...localSet(A));
  body.push(...localGet(B), ...localGet(B_STRIDE), ...I32_ADD, ...localSet(B));
  body.push(...localGet(A), ...localGet(END), ...I32_LT_U, 0x0d, 0); // br_if to the loop
  body.push(0x0b); // end loop
  for (let i = 0; i < MR; i++) {
    for (let h = 0; h < VECTORS; h++) {
      body.push(...localGet(C), ...localGet(C), ...v128Load(16 * h), ...localGet(acc(i, h)), ...F32X4_ADD, ...v128Store(16 * h));
    }
    body.push(...localGet(C), ...localGet(C_STRIDE), ...I32_ADD, ...localSet(C));
  }
  return wasmModule({
    params: [I32, I32, I32, I32, I32, I32],
    locals: [[MR * VECTORS + VECTORS + 1, V128], [1, I32]],
    body,
  });
}
