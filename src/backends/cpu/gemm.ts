// Blocked single-precision matrix multiplication: C += A · B.
//
// Why blocked: a naive triple loop reloads every operand from memory for each multiply-add
// and runs at a few hundred MFLOP/s. Here, following Goto & van de Geijn, we
//   1. cut the k dimension into slices of KC and the n dimension into slices of NC,
//      and copy ("pack") each KC x NC block of B into a buffer, NR columns at a time;
//   2. cut m into slices of MC and pack each MC x KC block of A, MR rows at a time;
//   3. let a micro-kernel compute one MR x NR tile of C with all MR*NR sums held in
//      registers, streaming through the packed panels front to back (microkernel.ts:
//      WebAssembly SIMD, or plain JavaScript where that is missing).
// Packing makes every operand read in the micro-kernel contiguous whatever the layout of
// A and B (transposed or not), so one routine serves forward and backward convolutions.
// The packed blocks live in the micro-kernel's heap, which for wasm is its linear memory.

import { createMicroKernel, MR, NR, type MicroKernel, type MicroKernelKind } from "./microkernel.ts";

/** A strided view of a matrix: element (i, j) is data[offset + i * rowStride + j * colStride]. */
export interface MatrixView {
  data: Float32Array;
  offset: number;
  rowStride: number;
  colStride: number;
}

/** A row-major output matrix: element (i, j) is data[offset + i * rowStride + j]. */
export interface OutputView {
  data: Float32Array;
  offset: number;
  rowStride: number;
}

export interface GemmArgs {
  /** Rows of A and C. */
  m: number;
  /** Columns of B and C. */
  n: number;
  /** Columns of A = rows of B (the summed dimension). */
  k: number;
  a: MatrixView;
  b: MatrixView;
  c: OutputView;
}

// Cache blocks: a KC x NR panel of B (8 KB) stays in L1 while the micro-kernel sweeps an
// MC x KC block of A (96 KB) that stays in L2; the KC x NC block of B (1 MB) in L2/L3, as does
// the MC x NC block of C (384 KB).
const KC = 256;
const MC = 96; // a multiple of MR
const NC = 1024; // a multiple of NR

// Where the packed blocks and the block of C being summed sit in the micro-kernel's heap (float
// indices). C's block is copied in and out row by row (native copies), so the micro-kernel adds
// its tiles in place: adding each 4 x 8 tile from JavaScript cost more than computing it when k
// is small (a deep layer's filter gradient sums over only batch x 2 x 2 pixels).
const A_AT = 0;
const B_AT = MC * KC;
const C_AT = B_AT + KC * NC + NR; // NR: a row-major B's last panel may read NR - 1 floats past it
// For narrow C (fewer than STAGED_MIN_WIDTH columns) copying rows in and out costs more than it
// saves: there each tile is summed into TILE_AT (kept at zero) and added to C from JavaScript.
const TILE_AT = C_AT + MC * NC;
const HEAP_FLOATS = TILE_AT + MR * NR;
const STAGED_MIN_WIDTH = 64;

let kernel: MicroKernel = createMicroKernel(HEAP_FLOATS);

/** Which micro-kernel gemm uses: "wasm-simd" unless the runtime lacks it, or "js". */
export function microKernelKind(): MicroKernelKind {
  return kernel.kind;
}

/** Switch micro-kernel (tests compare the two; "wasm-simd" throws where it is unavailable). */
export function useMicroKernel(kind: MicroKernelKind): void {
  if (kernel.kind !== kind) kernel = createMicroKernel(HEAP_FLOATS, kind);
}

/** C += A · B for strided A (m x k), B (k x n) and row-major C (m x n). */
export function gemm({ m, n, k, a, b, c }: GemmArgs): void {
  if (m === 0 || n === 0 || k === 0) return;
  for (let jc = 0; jc < n; jc += NC) {
    const nc = Math.min(NC, n - jc);
    for (let pc = 0; pc < k; pc += KC) {
      const kc = Math.min(KC, k - pc);
      const bStride = packB(b, pc, kc, jc, nc);
      for (let ic = 0; ic < m; ic += MC) {
        const mc = Math.min(MC, m - ic);
        packA(a, ic, mc, pc, kc);
        macroKernel(kc, mc, nc, c, ic, jc, bStride);
      }
    }
  }
}

/**
 * Part `part` of `parts` of gemm(args), for threads sharing one product: a band of C's rows
 * (copies of B packed per thread) or, when C is wider than tall, a band of its columns (copies of
 * A). Either way each element of C gets its terms in the same order as from gemm(args) itself:
 * the k dimension is cut into the same KC slices. So the parts' results are bit-identical to the
 * whole's, however many threads.
 */
export function gemmPart(args: GemmArgs, part: number, parts: number, { zeroC = false } = {}): void {
  const { m, n, a, b, c } = args;
  const byRows = m >= n;
  const unit = byRows ? MR : NR;
  const tiles = Math.ceil((byRows ? m : n) / unit);
  const first = Math.min(byRows ? m : n, Math.floor((tiles * part) / parts) * unit);
  const end = Math.min(byRows ? m : n, Math.floor((tiles * (part + 1)) / parts) * unit);
  if (end <= first) return;
  // C = A · B rather than C += A · B: each thread clears its own part first, in parallel.
  if (zeroC) {
    const [r0, r1, c0, c1] = byRows ? [first, end, 0, n] : [0, m, first, end];
    for (let i = r0; i < r1; i++) c.data.fill(0, c.offset + i * c.rowStride + c0, c.offset + i * c.rowStride + c1);
  }
  if (byRows) {
    gemm({ ...args, m: end - first, a: { ...a, offset: a.offset + first * a.rowStride }, c: { ...c, offset: c.offset + first * c.rowStride } });
  } else {
    gemm({ ...args, n: end - first, b: { ...b, offset: b.offset + first * b.colStride }, c: { ...c, offset: c.offset + first } });
  }
}

/** Copy A[i0 .. i0+mc, p0 .. p0+kc] to the heap as MR-row panels, one after another. */
function packA(a: MatrixView, i0: number, mc: number, p0: number, kc: number): void {
  const { data, rowStride, colStride } = a;
  for (let ir = 0; ir < mc; ir += MR) {
    const src = a.offset + (i0 + ir) * rowStride + p0 * colStride;
    packPanel(data, src, rowStride, colStride, Math.min(MR, mc - ir), MR, kc, A_AT + ir * kc);
  }
}

/**
 * Copy B[p0 .. p0+kc, j0 .. j0+nc] to the heap, and return the micro-kernel's step from one row of
 * it to the next. Rows of a row-major B go in as they are (nc wide: one native copy per row, no
 * per-element loop); the micro-kernel then reads each NR-column panel with a stride of nc. Any
 * other layout is packed as NR-column panels, one after another (a stride of NR).
 * (With a row-major B the last panel may read up to NR - 1 floats past a row: values of the next
 * row, or of the zeros after the block, in columns the macro-kernel never copies back to C.)
 */
function packB(b: MatrixView, p0: number, kc: number, j0: number, nc: number): number {
  const { data, rowStride, colStride } = b;
  if (colStride === 1) {
    const heap = kernel.heap;
    for (let p = 0, src = b.offset + p0 * rowStride + j0; p < kc; p++, src += rowStride) {
      heap.set(data.subarray(src, src + nc), B_AT + p * nc);
    }
    return nc;
  }
  for (let jr = 0; jr < nc; jr += NR) {
    const src = b.offset + p0 * rowStride + (j0 + jr) * colStride;
    packPanel(data, src, colStride, rowStride, Math.min(NR, nc - jr), NR, kc, B_AT + jr * kc);
  }
  return NR;
}

/**
 * Write one panel: for each of kc steps, `width` lanes (rows of A or columns of B) side by side,
 * heap[at + p * width + l] = data[src + l * laneStride + p * stepStride]; missing lanes are 0.
 */
function packPanel(
  data: Float32Array,
  src: number,
  laneStride: number,
  stepStride: number,
  lanes: number,
  width: number,
  kc: number,
  at: number,
): void {
  const heap = kernel.heap;
  if (lanes < width) heap.fill(0, at, at + kc * width);
  // Loop so that consecutive reads are as close together in memory as possible.
  if (stepStride < laneStride) {
    for (let l = 0; l < lanes; l++) {
      const s = src + l * laneStride;
      for (let p = 0, d = at + l; p < kc; p++, d += width) heap[d] = data[s + p * stepStride];
    }
  } else {
    for (let p = 0; p < kc; p++) {
      const s = src + p * stepStride;
      const d = at + p * width;
      for (let l = 0; l < lanes; l++) heap[d + l] = data[s + l * laneStride];
    }
  }
}

/** Multiply the packed blocks into C[i0 .., j0 ..], one MR x NR tile at a time. */
function macroKernel(kc: number, mc: number, nc: number, c: OutputView, i0: number, j0: number, bStride: number): void {
  const { data, rowStride } = c;
  // C's rows side by side, a whole number of tiles wide (a narrow convolution's whole output):
  // the block goes in and out in one copy each.
  const contiguous = rowStride === nc && nc % NR === 0;
  if (nc < STAGED_MIN_WIDTH && !contiguous) return tiledMacroKernel(kc, mc, nc, c, i0, j0, bStride);
  const { heap, run } = kernel;
  // C's block in the heap: mc rows (padded to MR) of nc floats (padded to NR). The padding is
  // cleared: it takes the zero rows of A and the columns past B's edge, never copied back.
  const width = Math.ceil(nc / NR) * NR;
  const height = Math.ceil(mc / MR) * MR;
  const first = c.offset + i0 * rowStride + j0;
  if (contiguous) {
    heap.set(data.subarray(first, first + mc * nc), C_AT);
  } else {
    for (let i = 0, src = first; i < mc; i++, src += rowStride) {
      heap.set(data.subarray(src, src + nc), C_AT + i * width);
      if (width > nc) heap.fill(0, C_AT + i * width + nc, C_AT + (i + 1) * width);
    }
  }
  if (height > mc) heap.fill(0, C_AT + mc * width, C_AT + height * width);
  for (let jr = 0; jr < nc; jr += NR) {
    const bAt = panelOfB(jr, kc, bStride);
    for (let ir = 0; ir < mc; ir += MR) run(kc, A_AT + ir * kc, bAt, C_AT + ir * width + jr, bStride, width);
  }
  if (contiguous) {
    data.set(heap.subarray(C_AT, C_AT + mc * nc), first);
    return;
  }
  for (let i = 0, dst = first; i < mc; i++, dst += rowStride) {
    data.set(heap.subarray(C_AT + i * width, C_AT + i * width + nc), dst);
  }
}

/** macroKernel for narrow C: each tile summed into the heap's zero tile, added to C, and cleared. */
function tiledMacroKernel(kc: number, mc: number, nc: number, c: OutputView, i0: number, j0: number, bStride: number): void {
  const { data, rowStride } = c;
  const { heap, run } = kernel;
  for (let jr = 0; jr < nc; jr += NR) {
    const cols = Math.min(NR, nc - jr);
    const bAt = panelOfB(jr, kc, bStride);
    for (let ir = 0; ir < mc; ir += MR) {
      const rows = Math.min(MR, mc - ir);
      run(kc, A_AT + ir * kc, bAt, TILE_AT, bStride, NR);
      // Add the tile into C, skipping the zero-padded rows and columns at the edges.
      let dst = c.offset + (i0 + ir) * rowStride + j0 + jr;
      for (let i = 0; i < rows; i++, dst += rowStride) {
        const t = TILE_AT + i * NR;
        for (let j = 0; j < cols; j++) {
          data[dst + j] += heap[t + j]!;
          heap[t + j] = 0;
        }
      }
      // The zero-padded rows summed to 0; columns past a row-major B's edge did not.
      if (cols < NR) heap.fill(0, TILE_AT, TILE_AT + MR * NR);
    }
  }
}

/** Where panel jr of the packed B starts: NR-wide panels one after another, or column jr of the copied rows. */
const panelOfB = (jr: number, kc: number, bStride: number) => B_AT + (bStride === NR ? jr * kc : jr);
