// AdamW's update on the webgpu backend: three small shaders per weight tensor (new weights, first
// and second moments), each one pass over the four inputs, instead of a dozen element-wise ops,
// each a dispatch of its own and a full-size temporary buffer. Same formula as cpu/adamw.ts.
import * as tf from "@tensorflow/tfjs";
import { adamWKernel, type AdamWAttrs } from "../adamw-kernel.ts";
import type { Uniform, WebGpuProgram } from "./conv-gemm.ts";

interface WebGpuBackend {
  runWebGPUProgram(program: WebGpuProgram, inputs: tf.TensorInfo[], outputDtype: tf.DataType, uniforms?: Uniform[]): tf.TensorInfo;
}

type Output = "param" | "m" | "v";
const WORKGROUP = 64;

class AdamWProgram implements WebGpuProgram {
  variableNames = ["param", "grad", "m", "v"];
  uniforms = "stepSize : f32, beta1 : f32, beta2 : f32, eps : f32, invSqrtC2 : f32, keep : f32,";
  outputShape: number[];
  shaderKey: string;
  dispatchLayout: { x: number[] };
  dispatch: [number, number, number];
  workgroupSize: [number, number, number] = [WORKGROUP, 1, 1];
  size = true;

  constructor(shape: number[], private readonly output: Output) {
    this.outputShape = shape;
    this.dispatchLayout = { x: shape.map((_, i) => i) };
    this.dispatch = [Math.ceil(tf.util.sizeFromShape(shape) / WORKGROUP), 1, 1];
    this.shaderKey = `finalbnAdamW_${output}`;
  }

  getUserCode(): string {
    const value = { param: "p * uniforms.keep - uniforms.stepSize * mi / (sqrt(vi) * uniforms.invSqrtC2 + uniforms.eps)", m: "mi", v: "vi" }[this.output];
    return `
  fn main(unused : i32) {
    // Our own index: the backend may fold a long dispatch into x and y.
    let index = i32(workgroupId.y * numWorkgroups.x + workgroupId.x) * ${WORKGROUP} + i32(localId.x);
    if (index < uniforms.size) {
      let g = grad[index];
      let mi = uniforms.beta1 * m[index] + (1.0 - uniforms.beta1) * g;
      let vi = uniforms.beta2 * v[index] + (1.0 - uniforms.beta2) * g * g;
      let p = param[index]; // read by every variant: an input no shader uses breaks tfjs's bind group
      _ = p;
      setOutputAtIndex(index, ${value});
    }
  }
`;
  }
}

function adamWWebGpu({ inputs, backend, attrs }: Parameters<tf.KernelFunc>[0]): tf.TensorInfo[] {
  const gpu = backend as unknown as WebGpuBackend;
  const { param, grad, m, v } = inputs as Record<"param" | "grad" | "m" | "v", tf.TensorInfo>;
  const { lr, beta1, beta2, eps, c1, c2, decay } = attrs as unknown as AdamWAttrs;
  const f32 = (x: number): Uniform => ({ type: "float32", data: [x] });
  const uniforms = [f32(lr / c1), f32(beta1), f32(beta2), f32(eps), f32(1 / Math.sqrt(c2)), f32(1 - lr * decay)];
  return (["param", "m", "v"] as const).map((output) =>
    gpu.runWebGPUProgram(new AdamWProgram(param.shape, output), [param, grad, m, v], "float32", uniforms),
  );
}

const kernel = adamWKernel("webgpu", adamWWebGpu as tf.KernelFunc);
/** Make the fused update available on the webgpu backend (after it is imported). Safe to call twice. */
export const registerWebGpuAdamW = (): void => kernel.register();
export const unregisterWebGpuAdamW = (): void => kernel.unregister();
