// Split-K for the convolution gradients on tfjs's webgpu backend: how many slices to cut a long
// reduction into, and the program that adds the slices' partial results up. The GEMMs themselves
// are ConvGemmProgram (webgpu/conv-gemm.ts), which also describes the tiling.
//
// The filter gradient of the first VGG layers is the case that needs it: for NHWC input x, output
// gradient dy and a filter [kh, kw, ci, co] with dilation 1,
//
//   dW[kh, kw, ci, co] = sum over (n, oh, ow) of x[n, oh*s + kh - pad, ow*s + kw - pad, ci] * dy[n, oh, ow, co]
//
// is a matrix product with M = kh*kw*ci rows, N = co columns and a reduction over K = n*oh*ow: a tiny
// filter (27 x 64) but a huge K (n*h*w), so one tile would leave a GPU idle. There the K range is cut
// into `splits` slices, one workgroup per (tile, slice), each writing a partial C; SumPartialsProgram
// then adds the slices up. The input gradient of the last layers (few pixels, K = 9 * 512) is split
// the same way.
import type { ConvGeometry } from "../conv-geometry.ts";
import { planGemm, type GemmPlan, type SplitOptions, type Uniform, type WebGpuProgram } from "./conv-gemm.ts";


export const DEFAULT_SPLIT: SplitOptions = { targetWorkgroups: 512, minKPerSplit: 512, maxPartialFloats: 16 * 1024 * 1024 };

/** Matrix sizes, tiles and the split-K factor for one problem. */
export function planFilterGrad(shape: ConvGeometry, options: SplitOptions = DEFAULT_SPLIT): GemmPlan {
  return planGemm("filterGrad", shape, options);
}

/**
 * out[i] = sum over s of partials[s, i]: adds up the split-K slices (of dW, or of dx for the input gradient). Each workgroup takes 64 outputs
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

  constructor(outShape: number[]) {
    this.outputShape = outShape;
    const size = outShape.reduce((a, b) => a * b, 1);
    this.dispatch = [Math.ceil(size / 64), 1, 1];
  }

  static uniformData(plan: GemmPlan): Uniform[] {
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
