// 2-D convolutions (NHWC input, HWIO filter, dilation 1) as tiled implicit GEMMs in WGSL, for
// tfjs's webgpu backend: one generator for the forward pass, the input gradient and the filter
// gradient. Each is a matrix product C[M, N] = Σ over k of A[m, k] · B[k, n] whose A and B are
// read straight from the tensors, gathering and zero-padding on the fly (no im2col copy):
//
//   forward          C = y  [batch*outH*outW, outC]   K = kh*kw*inC         A = x windows,  B = W as [K, outC]
//   input gradient   C = dx [batch*inH*inW, inC]      K = kh*kw*outC        A = dy windows, B[(fh,fw,co), ci] = W[fh,fw,ci,co]
//   filter gradient  C = dW [kh*kw*inC, outC]         K = batch*outH*outW   A[(n,oh,ow), (fh,fw,ci)] = x,  B = dy as [K, outC]
//
// In all three C is row-major [M, N] in the output's own layout (NHWC y, NHWC dx, HWIO dW), so
// one epilogue writes them all, adding a bias and a ReLU for FusedConv2D.
//
// Tiling: each workgroup computes a 64x64 tile of C; every thread keeps an 8x8 (or 4x4) block of
// it in registers. The K loop walks the reduction 32 steps at a time, staging a 32x64 slice of A
// and of B in workgroup memory (16 KiB), k-major, so that the inner loop reads 4 rows of A and 4
// columns of B as one vec4 each. How threads share out the staging depends on which index runs
// along consecutive floats in memory (`Operand.along`):
//   "tile": the tile's own (m for A, n for B): a thread loads 4 neighbouring rows at one k
//           (x for the filter gradient; dy and W as plain [K, N] matrices);
//   "k":    the reduction's (channels of a window): a thread loads 4 neighbouring k of one row and
//           scatters them into 4 staged rows (x and dy windows; W for the input gradient, which
//           thus needs no transposed copy of the filter).
// Where a channel count is a multiple of 4, the tensors laid out along it are read and written as
// vec4 (4 channels at once); the others one float at a time.
// Split-K (the gradients: a long reduction over few tiles): the K range can be cut into slices, one
// workgroup per (tile, slice), each writing a partial C that SumPartialsProgram (webgpu/split-k.ts)
// adds up. Not for the forward pass, whose bias and ReLU need the whole sum.
//
// The program class follows tfjs-backend-webgpu's WebGPUProgram interface: the backend declares
// the buffers (`result`, one per variable name), the uniforms and the entry point around getUserCode().
import type { ConvGeometry } from "../conv-geometry.ts";

/** The fields of tfjs-backend-webgpu's WebGPUProgram that these programs use. */
export interface WebGpuProgram {
  variableNames: string[];
  outputShape: number[];
  shaderKey: string;
  dispatchLayout: { x: number[]; y?: number[]; z?: number[] };
  dispatch: [number, number, number];
  workgroupSize: [number, number, number];
  uniforms?: string;
  size?: boolean;
  /** Floats per element of `result` (4: array<vec4<f32>>) and of each input. */
  outputComponent?: number;
  variableComponents?: number[];
  getUserCode(): string;
}

/** One uniform value as runWebGPUProgram takes it. */
export interface Uniform {
  type: "int32" | "float32";
  data: number[];
}

export type ConvGemmKind = "forward" | "inputGrad" | "filterGrad";

// Square tiles: the staging code sizes the tiles of A and of B alike (rows of TILE_M / 4 vec4).
export const TILE_M = 64; // rows of C per workgroup
export const TILE_N = TILE_M; // columns of C per workgroup
export const TILE_K = 32; // reduction steps staged in workgroup memory at a time

/** Rows and columns of C each thread accumulates in registers: 4 or 8 each. */
export interface ThreadBlock {
  rowsPerThread: number;
  colsPerThread: number;
}

// 4x4: 256 threads per 64x64 tile; 8x8: 64 threads. All three kinds use 8x8: on lavapipe at VGG19
// shapes (32 px, batch 2) it ran the forward pass and the input gradient 1.3-1.6x faster than 4x4,
// and took the whole VGG19 filter gradient from 3.4x to 5.0x the stock kernel. Lavapipe runs a
// workgroup 8 threads at a time and switches between those groups at every barrier, so 64 threads
// pay for 8 switches per barrier instead of 32; each thread also does twice the multiply-adds per
// value it reads from workgroup memory (the usual reason for 8x8 on real GPUs too). The price is
// compile time on lavapipe: 1-3 s per 8x8 shader against 0.4 s for 4x4. Untried on a real GPU:
// `npm run bench -- --block 4x4` there says whether to keep it.
export const DEFAULT_BLOCK: ThreadBlock = { rowsPerThread: 8, colsPerThread: 8 };
export const DEFAULT_BLOCKS: Record<ConvGemmKind, ThreadBlock> = {
  forward: DEFAULT_BLOCK,
  inputGrad: DEFAULT_BLOCK,
  filterGrad: DEFAULT_BLOCK,
};

export interface SplitOptions {
  /** Workgroups worth launching: enough to keep every core of a big GPU busy. */
  targetWorkgroups: number;
  /** Fewest reduction steps a slice should get, so a slice is worth its launch and its partial sum. */
  minKPerSplit: number;
  /** Most floats the partial sums may take. */
  maxPartialFloats: number;
}

export interface GemmPlan {
  M: number;
  N: number;
  K: number;
  tilesM: number;
  tilesN: number;
  /** Number of K slices (1: no split, the GEMM writes C directly). */
  splits: number;
  /** Reduction steps per slice, a multiple of TILE_K. */
  kPerSplit: number;
}

/** The matrix sizes of one convolution seen as a GEMM of the given kind. */
export function gemmSize(kind: ConvGemmKind, s: ConvGeometry): { M: number; N: number; K: number } {
  const taps = s.filterHeight * s.filterWidth;
  switch (kind) {
    case "forward":
      return { M: s.batch * s.outHeight * s.outWidth, N: s.outChannels, K: taps * s.inChannels };
    case "inputGrad":
      return { M: s.batch * s.inHeight * s.inWidth, N: s.inChannels, K: taps * s.outChannels };
    case "filterGrad":
      return { M: taps * s.inChannels, N: s.outChannels, K: s.batch * s.outHeight * s.outWidth };
  }
}

/** Tiles and the split-K factor for one problem: one slice unless `split` options are given. */
export function planGemm(kind: ConvGemmKind, shape: ConvGeometry, split?: SplitOptions): GemmPlan {
  const { M, N, K } = gemmSize(kind, shape);
  const tilesM = Math.ceil(M / TILE_M);
  const tilesN = Math.ceil(N / TILE_N);
  let splits = 1;
  if (split) {
    splits = Math.ceil(split.targetWorkgroups / (tilesM * tilesN));
    splits = Math.min(splits, Math.floor(K / split.minKPerSplit), Math.floor(split.maxPartialFloats / (M * N)));
    splits = Math.max(1, splits);
  }
  const kPerSplit = Math.max(1, Math.ceil(K / splits / TILE_K)) * TILE_K;
  splits = Math.max(1, Math.ceil(K / kPerSplit)); // rounding kPerSplit up may leave the last slices empty
  return { M, N, K, tilesM, tilesN, splits, kPerSplit };
}

/** What FusedConv2D adds after the product: a bias per output channel, then an activation. */
export interface Epilogue {
  bias: boolean;
  activation: "linear" | "relu";
}

/** Which channel counts are multiples of 4: tensors laid out along those are read and written as vec4. */
export interface ChannelsBy4 {
  in: boolean;
  out: boolean;
}

export interface ConvGemmOptions {
  by4: ChannelsBy4;
  /** DEFAULT_BLOCKS[kind] if absent. */
  block?: ThreadBlock;
  epilogue?: Epilogue;
}

/**
 * C = A·B for one kind of convolution, one 64x64 tile and K slice per workgroup, written as
 * [splits, M*N]: the partial sums, or C itself when splits = 1. The inputs are bound as flat
 * arrays (see webgpu/conv.ts), so the shader key depends on the kind and options only.
 */
export class ConvGemmProgram implements WebGpuProgram {
  variableNames: string[];
  uniforms =
    "M : i32, N : i32, K : i32, kPerSplit : i32, tilesN : i32, tilesM : i32, splits : i32, " +
    "inHeight : i32, inWidth : i32, inChannels : i32, outHeight : i32, outWidth : i32, outChannels : i32, " +
    "filterWidth : i32, strides : vec2<i32>, pads : vec2<i32>,";
  outputShape: number[];
  shaderKey: string;
  // One flat row of workgroups, decoded into (column tile, row tile, slice) by the shader: tfjs
  // compiles a separate shader for dispatches of height 1, and this keeps it to one per kind.
  dispatchLayout = { x: [0, 1] };
  dispatch: [number, number, number];
  workgroupSize: [number, number, number];
  outputComponent: number;
  variableComponents: number[];
  kind: ConvGemmKind;
  by4: ChannelsBy4;
  block: ThreadBlock;
  epilogue: Epilogue;

  constructor(kind: ConvGemmKind, plan: GemmPlan, options: ConvGemmOptions) {
    this.kind = kind;
    this.by4 = options.by4;
    this.block = options.block ?? DEFAULT_BLOCKS[kind];
    this.epilogue = options.epilogue ?? { bias: false, activation: "linear" };
    if (plan.splits > 1 && (this.epilogue.bias || this.epilogue.activation !== "linear")) {
      throw new Error("a bias or an activation needs the whole sum: no split-K with an epilogue");
    }
    const { inputs, result } = KINDS[kind];
    const variables = this.epilogue.bias ? [...inputs, BIAS] : inputs;
    this.variableNames = variables.map(([name]) => name);
    this.variableComponents = variables.map(([, channels]) => (this.by4[channels] ? 4 : 1));
    this.outputComponent = this.by4[result] ? 4 : 1;
    this.workgroupSize = [TILE_N / this.block.colsPerThread, TILE_M / this.block.rowsPerThread, 1];
    this.outputShape = [plan.splits, plan.M * plan.N];
    this.dispatch = [plan.tilesN * plan.tilesM * plan.splits, 1, 1];
    const { rowsPerThread, colsPerThread } = this.block;
    const { bias, activation } = this.epilogue;
    this.shaderKey = `finalbnConvGemm_${kind}_${TILE_M}_${TILE_N}_${TILE_K}_${rowsPerThread}x${colsPerThread}_by4${+this.by4.in}${+this.by4.out}_${bias}_${activation}`;
  }

  /** The uniform values, in the order of `uniforms` above. */
  static uniformData(shape: ConvGeometry, plan: GemmPlan): Uniform[] {
    const int = (...data: number[]): Uniform => ({ type: "int32", data });
    return [
      int(plan.M),
      int(plan.N),
      int(plan.K),
      int(plan.kPerSplit),
      int(plan.tilesN),
      int(plan.tilesM),
      int(plan.splits),
      int(shape.inHeight),
      int(shape.inWidth),
      int(shape.inChannels),
      int(shape.outHeight),
      int(shape.outWidth),
      int(shape.outChannels),
      int(shape.filterWidth),
      int(shape.strideHeight, shape.strideWidth),
      int(shape.padTop, shape.padLeft),
    ];
  }

  getUserCode(): string {
    const { rowsPerThread: RM, colsPerThread: RN } = this.block;
    const threadsX = TILE_N / RN;
    const threadsY = TILE_M / RM;
    const threads = threadsX * threadsY;
    const cols = TILE_M / 4; // vec4 columns of a staged row (64 floats = 16 vec4)
    const rangeA = [...Array(RM / 4).keys()]; // this thread's vec4 groups of rows...
    const rangeB = [...Array(RN / 4).keys()]; // ... and of columns
    const accIndex = (q: number, i: number, p: number) => (q * 4 + i) * (RN / 4) + p;
    // One k step: the 16 multiply-adds of each 4x4 block (rows group q, columns group p), skipped
    // where the block lies wholly outside C, with the rows' load: in edge tiles, such as VGG's first
    // filter gradient whose 27 rows fill less than half a tile, whole warps then idle through the
    // loop instead of loading and multiplying zeros.
    const step = rangeA.map((q) => {
      const blocks = rangeB.map((p) => {
        const fmas = [0, 1, 2, 3].map((i) => `acc[${accIndex(q, i, p)}] = fma(vec4<f32>(a${q}.${XYZW[i]}), b${p}, acc[${accIndex(q, i, p)}]);`);
        return `if (colsLive${p}) {\n            ${fmas.join("\n            ")}\n          }`;
      });
      return `if (rowsLive${q}) {
          let a${q} = tileA[kk * ${cols} + ${q * threadsY} + row];
          ${blocks.join("\n          ")}
        }`;
    });
    const { a, b } = KINDS[this.kind];
    const stagingA = staging("A", "mA", "tileRow", a, this.by4[a.channels], threads);
    const stagingB = staging("B", "nB", "tileCol", b, this.by4[b.channels], threads);
    return `
  // A K chunk of A and of B, as rows of ${cols} vec4: tileA[k * ${cols} + i] holds A[tileRow + 4i .. 4i+3, k].
  var<workgroup> tileA : array<vec4<f32>, ${TILE_K * cols}>;
  var<workgroup> tileB : array<vec4<f32>, ${TILE_K * cols}>;

  fn main(unused : i32) {
    // This thread's part of C: rows tileRow + 4 * (q * ${threadsY} + row) + i, columns
    // tileCol + 4 * (p * ${threadsX} + col) + j, for q < ${RM / 4}, p < ${RN / 4}, i, j < 4.
    let col = i32(localId.x);
    let row = i32(localId.y);
    // Which workgroup: the backend folds a row longer than the device allows into x and y.
    let group = i32(workgroupId.y * numWorkgroups.x + workgroupId.x);
    let tileCol = (group % uniforms.tilesN) * ${TILE_N};
    let tileRow = ((group / uniforms.tilesN) % uniforms.tilesM) * ${TILE_M};
    let split = group / (uniforms.tilesN * uniforms.tilesM); // >= splits only in a folded row's spare groups
    let kStart = split * uniforms.kPerSplit;
    let kEnd = min(kStart + uniforms.kPerSplit, uniforms.K);
    let t = row * ${threadsX} + col; // this thread's share of the staging

    ${stagingA.setup}
    ${stagingB.setup}

    ${rangeA.map((q) => `let rowsLive${q} = tileRow + 4 * (${q * threadsY} + row) < uniforms.M;`).join("\n    ")}
    ${rangeB.map((p) => `let colsLive${p} = tileCol + 4 * (${p * threadsX} + col) < uniforms.N;`).join("\n    ")}
    var acc : array<vec4<f32>, ${(RM * RN) / 4}>;
    // The chunk count comes from uniforms alone: barriers need control flow that WGSL can prove is
    // the same for the whole workgroup. Steps past kEnd (the last slice's tail) stage zeros.
    let chunks = uniforms.kPerSplit / ${TILE_K};
    for (var chunk = 0; chunk < chunks; chunk = chunk + 1) {
      let kChunk = kStart + chunk * ${TILE_K};
      ${stagingA.stage}
      ${stagingB.stage}
      workgroupBarrier();
      // Only the steps before kEnd: the tail of the last slice (or a tiny K) skips the zeros.
      let steps = min(${TILE_K}, kEnd - kChunk);
      for (var kk = 0; kk < steps; kk = kk + 1) {
        ${rangeB.map((p) => `let b${p} = tileB[kk * ${cols} + ${p * threadsX} + col];`).join("\n        ")}
        ${step.join("\n        ")}
      }
      workgroupBarrier();
    }

    // Write out, unrolled: indexing acc with a loop variable could push it out of registers.
    let base = split * uniforms.M * uniforms.N;
    ${rangeA
      .flatMap((q) =>
        [0, 1, 2, 3].flatMap((i) =>
          rangeB.map(
            (p) => `{
      let m = tileRow + 4 * (${q * threadsY} + row) + ${i};
      let n = tileCol + 4 * (${p * threadsX} + col);
      if (m < uniforms.M && split < uniforms.splits) {
        ${this.store(`acc[${accIndex(q, i, p)}]`)}
      }
    }`,
          ),
        ),
      )
      .join("\n    ")}
  }
`;
  }

  /** Stores C[m, n .. n+3] (as far as it exists), through the epilogue. */
  private store(value: string): string {
    const { bias, activation } = this.epilogue;
    const vec4 = this.outputComponent === 4;
    const finish = (v: string, b: string) => {
      const biased = bias ? `${v} + ${b}` : v;
      return activation === "relu" ? `max(${biased}, ${vec4 ? "vec4<f32>(0.0)" : "0.0"})` : biased;
    };
    if (vec4) {
      return `if (n < uniforms.N) { result[(base + m * uniforms.N + n) / 4] = ${finish(value, "bias[n / 4]")}; }`;
    }
    return [0, 1, 2, 3]
      .map((j) => `if (n + ${j} < uniforms.N) { result[base + m * uniforms.N + n + ${j}] = ${finish(`${value}.${XYZW[j]}`, `bias[n + ${j}]`)}; }`)
      .join("\n        ");
  }
}

const XYZW = ["x", "y", "z", "w"];

type Channels = keyof ChannelsBy4;
/** FusedConv2D's bias: one value per output channel. */
const BIAS: [string, Channels] = ["bias", "out"];

/**
 * How one operand is fetched. WGSL names in scope: `uniforms`, the input arrays, `kEnd`; for
 * along "tile" the thread's first tile index (`mA` or `nB`, the rows or columns r .. r+3 it loads)
 * and, in load, the step `k` (< kEnd); for along "k" its one tile index (`mA` or `nB`) and, in load,
 * the first of its 4 steps `k0`. load sets the zeroed vec4 `v`: v[j] = operand at (r + j, k) for
 * "tile", at (r, k0 + j) for "k", leaving zeros outside the matrix and in the padding.
 */
interface Operand {
  along: "tile" | "k";
  /** The channel count its vec4 loads run along. */
  channels: Channels;
  setup(vec4: boolean): string;
  load(vec4: boolean): string;
}

/** A [K, N] matrix stored row-major in `name` (dy, or W for the forward pass), loaded along n. */
function matrixByRows(name: string): Operand {
  return {
    along: "tile",
    channels: "out",
    setup: () => "",
    load: (vec4) =>
      vec4
        ? `if (nB < uniforms.N) { v = ${name}[(k * uniforms.N + nB) / 4]; }`
        : [0, 1, 2, 3].map((j) => `if (nB + ${j} < uniforms.N) { v.${XYZW[j]} = ${name}[k * uniforms.N + nB + ${j}]; }`).join("\n          "),
  };
}

/**
 * `body` for the steps k0 .. k0+3 that exist, each as `k`, where `live` (the thread's row or column
 * is inside the matrix): once with j = -1 when one vec4 load covers all four, else once per lane j.
 */
function perStep(vec4: boolean, live: string, body: (j: number) => string): string {
  if (vec4) return `if (${live} && k0 < kEnd) {\n            let k = k0;\n            ${body(-1)}\n          }`;
  return [0, 1, 2, 3]
    .map((j) => `{\n            let k = k0 + ${j};\n            if (${live} && k < kEnd) {\n              ${body(j)}\n            }\n          }`)
    .join("\n          ");
}

/** `v = value` for a whole vec4 load (j < 0), else `v.<lane> = value`. */
const assign = (j: number, vec4Value: string, value: string) => (j < 0 ? `v = ${vec4Value};` : `v.${XYZW[j]} = ${value};`);

// Forward: A[m = (n, oh, ow), k = (fh, fw, ci)] = x[n, oh*s + fh - pad, ow*s + fw - pad, ci].
const forwardA: Operand = {
  along: "k",
  channels: "in",
  setup: () => `let outArea = uniforms.outHeight * uniforms.outWidth;
    let aImage = mA / outArea;
    let aOh = (mA % outArea) / uniforms.outWidth;
    let aOw = mA % uniforms.outWidth;
    let aIh0 = aOh * uniforms.strides.x - uniforms.pads.x;
    let aIw0 = aOw * uniforms.strides.y - uniforms.pads.y;
    let aLive = mA < uniforms.M;`,
  load: (vec4) =>
    perStep(vec4, "aLive", (j) => {
      const index = `((aImage * uniforms.inHeight + ih) * uniforms.inWidth + iw) * uniforms.inChannels + ci`;
      return `let ci = k % uniforms.inChannels;
              let tap = k / uniforms.inChannels;
              let ih = aIh0 + tap / uniforms.filterWidth;
              let iw = aIw0 + tap % uniforms.filterWidth;
              if (ih >= 0 && ih < uniforms.inHeight && iw >= 0 && iw < uniforms.inWidth) {
                ${assign(j, `x[(${index}) / 4]`, `x[${index}]`)}
              }`;
    }),
};

// Input gradient: A[m = (n, ih, iw), k = (fh, fw, co)] = dy[n, oh, ow, co] where
// oh * s = ih + pad - fh (exactly, and 0 <= oh < outHeight), the same for ow.
const inputGradA: Operand = {
  along: "k",
  channels: "out",
  setup: () => `let inArea = uniforms.inHeight * uniforms.inWidth;
    let aImage = mA / inArea;
    let aTop = (mA % inArea) / uniforms.inWidth + uniforms.pads.x;
    let aLeft = mA % uniforms.inWidth + uniforms.pads.y;
    let aLive = mA < uniforms.M;`,
  load: (vec4) =>
    perStep(vec4, "aLive", (j) => {
      const index = `((aImage * uniforms.outHeight + oh) * uniforms.outWidth + ow) * uniforms.outChannels + co`;
      return `let co = k % uniforms.outChannels;
              let tap = k / uniforms.outChannels;
              let th = aTop - tap / uniforms.filterWidth;
              let tw = aLeft - tap % uniforms.filterWidth;
              let oh = th / uniforms.strides.x;
              let ow = tw / uniforms.strides.y;
              if (th >= 0 && tw >= 0 && oh * uniforms.strides.x == th && ow * uniforms.strides.y == tw &&
                  oh < uniforms.outHeight && ow < uniforms.outWidth) {
                ${assign(j, `dy[(${index}) / 4]`, `dy[${index}]`)}
              }`;
    }),
};

// Input gradient: B[k = (fh, fw, co), n = ci] = W[fh, fw, ci, co], contiguous along k.
const inputGradB: Operand = {
  along: "k",
  channels: "out",
  setup: () => `let bLive = nB < uniforms.N;`,
  load: (vec4) =>
    perStep(vec4, "bLive", (j) => {
      const index = `(k / uniforms.outChannels * uniforms.inChannels + nB) * uniforms.outChannels + k % uniforms.outChannels`;
      return assign(j, `W[(${index}) / 4]`, `W[${index}]`);
    }),
};

// Filter gradient: A[k = (n, oh, ow), m = (fh, fw, ci)] = x[n, oh*s + fh - pad, ow*s + fw - pad, ci].
// The 4 rows a thread loads are fixed: their filter position and channel are worked out once
// (with vec4, they are 4 channels of one filter position: one load).
const filterGradA: Operand = {
  along: "tile",
  channels: "in",
  setup: (vec4) =>
    (vec4 ? [0] : [0, 1, 2, 3])
      .map(
        (j) => `let mA${j} = mA + ${j};
    let c${j} = mA${j} % uniforms.inChannels;
    let fw${j} = (mA${j} / uniforms.inChannels) % uniforms.filterWidth;
    let fh${j} = mA${j} / (uniforms.inChannels * uniforms.filterWidth);`,
      )
      .join("\n    ") + `\n    let outArea = uniforms.outHeight * uniforms.outWidth;`,
  load: (vec4) => {
    const lane = (j: number) => {
      const index = `((image + ih) * uniforms.inWidth + iw) * uniforms.inChannels + c${j}`;
      return `{
            let ih = ih0 + fh${j};
            let iw = iw0 + fw${j};
            if (mA${j} < uniforms.M && ih >= 0 && ih < uniforms.inHeight && iw >= 0 && iw < uniforms.inWidth) {
              ${vec4 ? `v = x[(${index}) / 4];` : `v.${XYZW[j]} = x[${index}];`}
            }
          }`;
    };
    // k = (n, oh, ow): the output position whose input window this step reads.
    return `let n = k / outArea;
          let oh = (k % outArea) / uniforms.outWidth;
          let ow = k % uniforms.outWidth;
          let ih0 = oh * uniforms.strides.x - uniforms.pads.x;
          let iw0 = ow * uniforms.strides.y - uniforms.pads.y;
          let image = n * uniforms.inHeight;
          ${(vec4 ? [0] : [0, 1, 2, 3]).map(lane).join("\n          ")}`;
  },
};

/**
 * Per kind: the input arrays (the names the shader reads, with the channel count each is laid out
 * along: W's last axis is the output channels), how A and B come from them, and the channels of C.
 */
const KINDS: Record<ConvGemmKind, { inputs: [string, Channels][]; a: Operand; b: Operand; result: Channels }> = {
  forward: { inputs: [["x", "in"], ["W", "out"]], a: forwardA, b: matrixByRows("W"), result: "out" },
  inputGrad: { inputs: [["dy", "out"], ["W", "out"]], a: inputGradA, b: inputGradB, result: "in" },
  filterGrad: { inputs: [["x", "in"], ["dy", "out"]], a: filterGradA, b: matrixByRows("dy"), result: "out" },
};

/**
 * WGSL that copies one operand's 32 x 64 slice into tile<name> each chunk: 512 vec4 per chunk,
 * `threads` at a time. `index` names the tile index the thread loads (mA, nB), from `origin`.
 */
function staging(name: "A" | "B", index: string, origin: string, operand: Operand, vec4: boolean, threads: number) {
  const tile = `tile${name}`;
  const p = name.toLowerCase();
  const width = name === "A" ? TILE_M : TILE_N;
  const parts = (TILE_K * (width / 4)) / threads;
  if (operand.along === "tile") {
    // Part by part, thread t copies 4 neighbouring tile indices at step t / 16: a vec4 of the tile.
    const perPart = threads / (width / 4); // staged steps per part
    return {
      setup: `let ${index} = ${origin} + (t % ${width / 4}) * 4;
    ${operand.setup(vec4)}`,
      stage: `for (var part = 0; part < ${parts}; part = part + 1) {
        let k = kChunk + part * ${perPart} + t / ${width / 4};
        var v = vec4<f32>(0.0);
        if (k < kEnd) {
          ${operand.load(vec4)}
        }
        ${tile}[part * ${threads} + t] = v;
      }`,
    };
  }
  // Thread t copies 4 neighbouring steps of tile index t % 64 and spreads them over 4 staged rows;
  // neighbouring threads write neighbouring floats.
  const perPart = threads / width; // groups of 4 steps per part
  return {
    setup: `let ${p}Load = t % ${width};
    let ${index} = ${origin} + ${p}Load;
    ${operand.setup(vec4)}`,
    stage: `for (var part = 0; part < ${parts}; part = part + 1) {
        let kLocal = (part * ${perPart} + t / ${width}) * 4;
        let k0 = kChunk + kLocal;
        var v = vec4<f32>(0.0);
        ${operand.load(vec4)}
        ${[0, 1, 2, 3].map((j) => `${tile}[(kLocal + ${j}) * ${width / 4} + ${p}Load / 4][${p}Load % 4] = v.${XYZW[j]};`).join("\n        ")}
      }`,
  };
}
