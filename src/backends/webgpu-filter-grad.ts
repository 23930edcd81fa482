// The filter gradient of a 2-D convolution as WGSL programs for tfjs's webgpu backend.
//
// For NHWC input x, output gradient dy and a filter [kh, kw, ci, co] with dilation 1,
//
//   dW[kh, kw, ci, co] = sum over (n, oh, ow) of x[n, oh*s + kh - pad, ow*s + kw - pad, ci] * dy[n, oh, ow, co]
//
// is a matrix product C = Aᵀ·B with M = kh*kw*ci rows, N = co columns and a reduction over
// K = n*oh*ow: A[k, m] is x gathered on the fly ("implicit GEMM": no im2col copy) and B[k, n] is
// simply dy seen as a [K, co] matrix.
//
// FilterGradGemmProgram: each workgroup of 16x16 threads computes a 64x64 tile of C; every thread
// keeps a 4x4 block of it in registers. The K loop walks the reduction 32 steps at a time, staging
// a 32x64 slice of A and of B in workgroup memory (16 KiB) that all 256 threads then share.
// Split-K: the first VGG layers have tiny filters (27 x 64) but a huge K (n*h*w), so one tile would
// leave a GPU idle. There the K range is cut into `splits` slices, one workgroup per (tile, slice),
// each writing a partial C; SumPartialsProgram then adds the slices up.
//
// These classes follow tfjs-backend-webgpu's WebGPUProgram interface: the backend declares the
// buffers (`result`, one per variable name), the uniforms and the entry point around getUserCode().
import type { ConvGeometry } from "./conv-geometry.ts";

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

/** The sizes of one filter-gradient problem (all from tfjs's Conv2DInfo). */
export type FilterGradShape = ConvGeometry;

export const TILE_M = 64; // rows of C (filter positions x input channels) per workgroup
export const TILE_N = 64; // columns of C (output channels) per workgroup
export const TILE_K = 32; // reduction steps staged in workgroup memory at a time

/** Rows and columns of C each thread accumulates in registers: 4 or 8 each. */
export interface ThreadBlock {
  rowsPerThread: number;
  colsPerThread: number;
}

// 4x4: 256 threads per 64x64 tile. 8x8 (64 threads) ran 20-30% faster on lavapipe, but its shaders
// took about 3 times longer to compile there (up to 16 s each on a loaded 2-core machine; 40 s
// instead of 14 s for test/webgpu-conv.test.ts with an empty shader cache). Untried on a real GPU:
// `npx tsx bench/webgpu-conv.ts --block 8x8` there says which to keep.
export const DEFAULT_BLOCK: ThreadBlock = { rowsPerThread: 4, colsPerThread: 4 };

export interface SplitOptions {
  /** Workgroups worth launching: enough to keep every core of a big GPU busy. */
  targetWorkgroups: number;
  /** Fewest reduction steps a slice should get, so a slice is worth its launch and its partial sum. */
  minKPerSplit: number;
  /** Most floats the partial sums may take. */
  maxPartialFloats: number;
}

export const DEFAULT_SPLIT: SplitOptions = { targetWorkgroups: 512, minKPerSplit: 512, maxPartialFloats: 16 * 1024 * 1024 };

export interface FilterGradPlan {
  M: number;
  N: number;
  K: number;
  tilesM: number;
  tilesN: number;
  /** Number of K slices (1: no split, the GEMM writes dW directly). */
  splits: number;
  /** Reduction steps per slice, a multiple of TILE_K. */
  kPerSplit: number;
}

/** Matrix sizes, tiles and the split-K factor for one problem. */
export function planFilterGrad(shape: FilterGradShape, options: SplitOptions = DEFAULT_SPLIT): FilterGradPlan {
  const M = shape.filterHeight * shape.filterWidth * shape.inChannels;
  const N = shape.outChannels;
  const K = shape.batch * shape.outHeight * shape.outWidth;
  const tilesM = Math.ceil(M / TILE_M);
  const tilesN = Math.ceil(N / TILE_N);
  const tiles = tilesM * tilesN;
  let splits = Math.ceil(options.targetWorkgroups / tiles);
  splits = Math.min(splits, Math.floor(K / options.minKPerSplit), Math.floor(options.maxPartialFloats / (M * N)));
  splits = Math.max(1, splits);
  const kPerSplit = Math.max(1, Math.ceil(K / splits / TILE_K)) * TILE_K;
  splits = Math.max(1, Math.ceil(K / kPerSplit)); // rounding kPerSplit up may leave the last slices empty
  return { M, N, K, tilesM, tilesN, splits, kPerSplit };
}

/**
 * C = Aᵀ·B, one 64x64 tile and K slice per workgroup, written as [splits, M*N]: the partial sums, or dW itself
 * when splits = 1 (always this rank-2 shape, so one compiled shader serves both cases).
 * `vec4`: input and output channels are multiples of 4, so x, dy and dW are read and written as
 * vec4 (4 consecutive channels at once: fewer loads and bounds checks).
 */
export class FilterGradGemmProgram implements WebGpuProgram {
  variableNames = ["x", "dy"];
  uniforms =
    "M : i32, N : i32, K : i32, kPerSplit : i32, inChannels : i32, filterWidth : i32, " +
    "outArea : i32, outWidth : i32, inHeight : i32, inWidth : i32, strides : vec2<i32>, pads : vec2<i32>, " +
    "tilesN : i32, tilesM : i32, splits : i32,";
  outputShape: number[];
  shaderKey: string;
  // One flat row of workgroups, decoded into (column tile, row tile, slice) by the shader: tfjs
  // compiles a separate shader for dispatches of height 1, and this keeps it to one per kind.
  dispatchLayout = { x: [0, 1] };
  dispatch: [number, number, number];
  workgroupSize: [number, number, number];
  outputComponent: number;
  variableComponents: number[];
  vec4: boolean;
  block: ThreadBlock;

  constructor(plan: FilterGradPlan, filterShape: number[], block: ThreadBlock = DEFAULT_BLOCK) {
    this.block = block;
    this.workgroupSize = [TILE_N / block.colsPerThread, TILE_M / block.rowsPerThread, 1];
    this.outputShape = [plan.splits, plan.M * plan.N];
    this.dispatch = [plan.tilesN * plan.tilesM * plan.splits, 1, 1];
    this.vec4 = filterShape[2]! % 4 === 0 && filterShape[3]! % 4 === 0;
    this.outputComponent = this.vec4 ? 4 : 1;
    this.variableComponents = this.vec4 ? [4, 4] : [1, 1];
    this.shaderKey = `finalbnFilterGradGemm_${TILE_M}_${TILE_N}_${TILE_K}_${block.rowsPerThread}x${block.colsPerThread}_${this.vec4}`;
  }

  /** The uniform values, in the order of `uniforms` above. */
  static uniformData(shape: FilterGradShape, plan: FilterGradPlan): Uniform[] {
    const int = (...data: number[]): Uniform => ({ type: "int32", data });
    return [
      int(plan.M),
      int(plan.N),
      int(plan.K),
      int(plan.kPerSplit),
      int(shape.inChannels),
      int(shape.filterWidth),
      int(shape.outHeight * shape.outWidth),
      int(shape.outWidth),
      int(shape.inHeight),
      int(shape.inWidth),
      int(shape.strideHeight, shape.strideWidth),
      int(shape.padTop, shape.padLeft),
      int(plan.tilesN),
      int(plan.tilesM),
      int(plan.splits),
    ];
  }

  getUserCode(): string {
    const { rowsPerThread: RM, colsPerThread: RN } = this.block;
    const threadsX = TILE_N / RN;
    const threadsY = TILE_M / RM;
    const threads = threadsX * threadsY;
    const cols = TILE_M / 4; // vec4 columns of a staged row (64 floats = 16 vec4)
    const rowsPerPart = threads / cols; // staged rows all threads copy at once
    const rangeA = [...Array(RM / 4).keys()]; // this thread's vec4 groups of rows...
    const rangeB = [...Array(RN / 4).keys()]; // ... and of columns
    const accIndex = (q: number, i: number, p: number) => (q * 4 + i) * (RN / 4) + p;
    // The 16 multiply-adds of one 4x4 block (rows group q, columns group p), skipped where the block
    // lies wholly outside C: in edge tiles, such as VGG's first layer whose 27 rows fill less than
    // half a tile, whole warps then idle through the loop instead of multiplying zeros.
    const block = (q: number, p: number) => {
      const fmas = [0, 1, 2, 3].map((i) => `acc[${accIndex(q, i, p)}] = fma(vec4<f32>(a${q}.${XYZW[i]}), b${p}, acc[${accIndex(q, i, p)}]);`);
      return `if (rowsLive${q} && colsLive${p}) {\n          ${fmas.join("\n          ")}\n        }`;
    };
    const fmas = rangeA.flatMap((q) => rangeB.map((p) => block(q, p)));
    return `
  // A K chunk of A and of B, as rows of ${cols} vec4: tileA[k * ${cols} + i] holds A[k, tileRow + 4i .. 4i+3].
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

    // Staging: per part, thread t copies one vec4 of A and one of B: reduction step t / ${cols},
    // columns 4 * (t % ${cols}) .. + 3 of the tile.
    let t = row * ${threadsX} + col;
    let loadK = t / ${cols};
    let loadCol = (t % ${cols}) * 4;
    // The 4 rows of A it copies are fixed: work out their filter position and channel once.
    ${this.vec4 ? rowsOfA([0]) : rowsOfA([0, 1, 2, 3])}
    let nLoad = tileCol + loadCol;

    ${rangeA.map((q) => `let rowsLive${q} = tileRow + 4 * (${q * threadsY} + row) < uniforms.M;`).join("\n    ")}
    ${rangeB.map((p) => `let colsLive${p} = tileCol + 4 * (${p * threadsX} + col) < uniforms.N;`).join("\n    ")}
    var acc : array<vec4<f32>, ${(RM * RN) / 4}>;
    // The chunk count comes from uniforms alone: barriers need control flow that WGSL can prove is
    // the same for the whole workgroup. Steps past kEnd (the last slice's tail) stage zeros.
    let chunks = uniforms.kPerSplit / ${TILE_K};
    for (var chunk = 0; chunk < chunks; chunk = chunk + 1) {
      for (var part = 0; part < ${TILE_K / rowsPerPart}; part = part + 1) {
        let k = kStart + chunk * ${TILE_K} + part * ${rowsPerPart} + loadK;
        var a = vec4<f32>(0.0);
        var b = vec4<f32>(0.0);
        if (k < kEnd) {
          // k = (n, oh, ow): the output position whose input window this step reads.
          let n = k / uniforms.outArea;
          let rest = k - n * uniforms.outArea;
          let oh = rest / uniforms.outWidth;
          let ow = rest - oh * uniforms.outWidth;
          let ih0 = oh * uniforms.strides.x - uniforms.pads.x;
          let iw0 = ow * uniforms.strides.y - uniforms.pads.y;
          let image = n * uniforms.inHeight;
          ${this.vec4 ? loadA4 : loadA1}
          ${this.vec4 ? loadB4 : loadB1}
        }
        tileA[part * ${threads} + t] = a;
        tileB[part * ${threads} + t] = b;
      }
      workgroupBarrier();
      // Only the steps before kEnd: the tail of the last slice (or a tiny K) skips the zeros.
      let steps = min(${TILE_K}, kEnd - (kStart + chunk * ${TILE_K}));
      for (var kk = 0; kk < steps; kk = kk + 1) {
        ${rangeA.map((q) => `let a${q} = tileA[kk * ${cols} + ${q * threadsY} + row];`).join("\n        ")}
        ${rangeB.map((p) => `let b${p} = tileB[kk * ${cols} + ${p * threadsX} + col];`).join("\n        ")}
        ${fmas.join("\n        ")}
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
        ${this.vec4 ? store4(`acc[${accIndex(q, i, p)}]`) : store1(`acc[${accIndex(q, i, p)}]`)}
      }
    }`,
          ),
        ),
      )
      .join("\n    ")}
  }
`;
  }
}

const XYZW = ["x", "y", "z", "w"];

/** Filter row, column and channel of the A rows mA<j> = tileRow + loadCol + j. */
function rowsOfA(lanes: number[]): string {
  return lanes
    .map(
      (j) => `let mA${j} = tileRow + loadCol + ${j};
    let c${j} = mA${j} % uniforms.inChannels;
    let fw${j} = (mA${j} / uniforms.inChannels) % uniforms.filterWidth;
    let fh${j} = mA${j} / (uniforms.inChannels * uniforms.filterWidth);`,
    )
    .join("\n    ");
}

// A[k, mA0 .. mA0+3] one float at a time: the 4 rows may belong to different filter positions.
const loadA1 = [0, 1, 2, 3]
  .map(
    (j) => `{
            let ih = ih0 + fh${j};
            let iw = iw0 + fw${j};
            if (mA${j} < uniforms.M && ih >= 0 && ih < uniforms.inHeight && iw >= 0 && iw < uniforms.inWidth) {
              a.${XYZW[j]} = x[((image + ih) * uniforms.inWidth + iw) * uniforms.inChannels + c${j}];
            }
          }`,
  )
  .join("\n          ");

// With channels a multiple of 4, the 4 rows are 4 channels of one filter position: one vec4 load.
const loadA4 = `let ih = ih0 + fh0;
          let iw = iw0 + fw0;
          if (mA0 < uniforms.M && ih >= 0 && ih < uniforms.inHeight && iw >= 0 && iw < uniforms.inWidth) {
            a = x[(((image + ih) * uniforms.inWidth + iw) * uniforms.inChannels + c0) / 4];
          }`;

// B[k, nLoad .. nLoad+3] = dy[k, nLoad .. nLoad+3].
const loadB1 = [0, 1, 2, 3]
  .map((j) => `if (nLoad + ${j} < uniforms.N) { b.${XYZW[j]} = dy[k * uniforms.N + nLoad + ${j}]; }`)
  .join("\n          ");

const loadB4 = `if (nLoad < uniforms.N) { b = dy[(k * uniforms.N + nLoad) / 4]; }`;

/** Stores 4 consecutive columns of C (as far as they exist), one float at a time. */
function store1(value: string): string {
  return [0, 1, 2, 3]
    .map((j) => `if (n + ${j} < uniforms.N) { result[base + m * uniforms.N + n + ${j}] = ${value}.${XYZW[j]}; }`)
    .join("\n        ");
}

/** Stores 4 consecutive columns of C as one vec4 (N is a multiple of 4). */
function store4(value: string): string {
  return `if (n < uniforms.N) { result[(base + m * uniforms.N + n) / 4] = ${value}; }`;
}

/**
 * dW[i] = sum over s of partials[s, i]: adds up the split-K slices. Each workgroup takes 64 outputs
 * with 4 threads per output (each summing every 4th slice), so a thousand slices still sum quickly.
 */
export class SumPartialsProgram implements WebGpuProgram {
  variableNames = ["partials"];
  uniforms = "splits : i32,";
  outputShape: number[];
  shaderKey = "finalbnSumPartials";
  dispatchLayout = { x: [0, 1, 2, 3] };
  dispatch: [number, number, number];
  workgroupSize: [number, number, number] = [64, 4, 1];
  size = true;

  constructor(filterShape: number[]) {
    this.outputShape = filterShape;
    const size = filterShape.reduce((a, b) => a * b, 1);
    this.dispatch = [Math.ceil(size / 64), 1, 1];
  }

  static uniformData(plan: FilterGradPlan): Uniform[] {
    return [{ type: "int32", data: [plan.splits] }];
  }

  getUserCode(): string {
    return `
  var<workgroup> laneSums : array<f32, 256>;

  fn main(unused : i32) {
    // Our own output index: the backend may fold a long dispatch into x and y.
    let index = i32(workgroupId.y * numWorkgroups.x + workgroupId.x) * 64 + i32(localId.x);
    let lane = i32(localId.y);
    var sum = 0.0;
    if (index < uniforms.size) {
      for (var s = lane; s < uniforms.splits; s = s + 4) {
        sum = sum + partials[s * uniforms.size + index];
      }
    }
    laneSums[lane * 64 + i32(localId.x)] = sum;
    workgroupBarrier();
    if (lane == 0 && index < uniforms.size) {
      let i = i32(localId.x);
      setOutputAtIndex(index, laneSums[i] + laneSums[64 + i] + laneSums[128 + i] + laneSums[192 + i]);
    }
  }
`;
  }
}
