// AdamW's update of one parameter as a single cpu kernel: one pass over the weights instead of a
// dozen element-wise ops, each allocating and filling a whole new array. For VGG19 at full width
// (20M weights with the fastai head) those ops took about 1.4 s of a 2.1 s training step on one core.
//
// A kernel of our own name, not a replacement for a stock one (adamw-kernel.ts): src/train/adamw.ts
// calls it where the current backend has it, and otherwise runs the same formula as tfjs ops.
import * as tf from "@tensorflow/tfjs";
import { adamWKernel, type AdamWAttrs } from "../adamw-kernel.ts";
import {
  brIf, END, F32, F32X4_ADD, F32X4_DIV, F32X4_MUL, F32X4_SPLAT, F32X4_SQRT, F32X4_SUB, I32, I32_ADD, I32_LT_U, LOOP, V128,
  i32Const, localGet, localSet, v128Load, v128Store, wasmModule,
} from "./wasm-bytes.ts";
import { ownedValues, requireFloat32Values, type CpuBackend } from "./tensor-data.ts";

/** new param, m, v from param, grad, m, v: the same formula as the op chain in adamw.ts. */
function adamWCpu({ inputs, backend, attrs }: Parameters<tf.KernelFunc>[0]): tf.TensorInfo[] {
  const cpu = backend as unknown as CpuBackend;
  const { param, grad, m, v } = inputs as Record<"param" | "grad" | "m" | "v", tf.TensorInfo>;
  const { lr, beta1, beta2, eps, c1, c2, decay } = attrs as unknown as AdamWAttrs;
  const read = (t: tf.TensorInfo) => requireFloat32Values(cpu, t, "FinalbnAdamW");
  const [p0, g0, m0, v0] = [read(param), read(grad), read(m), read(v)];
  const n = p0.length;
  // m and v are the optimizer's own state and the gradient is used up (adamw-kernel.ts): where no
  // other tensor shares their memory, the new m and v go where the old ones were and the new param
  // where the gradient was. Fresh arrays cost more than the update itself: the system maps and
  // zeroes every page on first touch (80 MB an array at full width).
  const p1 = ownedValues(cpu, grad) ?? new Float32Array(n);
  const m1 = ownedValues(cpu, m) ?? new Float32Array(n);
  const v1 = ownedValues(cpu, v) ?? new Float32Array(n);
  const keep = 1 - lr * decay;
  // lr * (m / c1) / (sqrt(v / c2) + eps) with the constant factors taken out of the loop.
  const stepSize = lr / c1;
  const invSqrtC2 = 1 / Math.sqrt(c2);
  const update = kind === "wasm" && wasmUpdate ? wasmUpdate : jsUpdate;
  update({ p0, g0, m0, v0, p1, m1, v1 }, { beta1, beta2, keep, stepSize, invSqrtC2, eps });
  return [p1, m1, v1].map((values) => cpu.makeTensorInfo(param.shape, "float32", values));
}

interface Arrays {
  p0: Float32Array;
  g0: Float32Array;
  m0: Float32Array;
  v0: Float32Array;
  /** The outputs; each may be the memory of one of the inputs above (the same index is read before it is written). */
  p1: Float32Array;
  m1: Float32Array;
  v1: Float32Array;
}

interface Factors {
  beta1: number;
  beta2: number;
  keep: number;
  stepSize: number;
  invSqrtC2: number;
  eps: number;
}

/** The update in JavaScript: each element in double precision, rounded to float32 when stored. */
function jsUpdate({ p0, g0, m0, v0, p1, m1, v1 }: Arrays, { beta1, beta2, keep, stepSize, invSqrtC2, eps }: Factors): void {
  for (let i = 0; i < p0.length; i++) {
    const g = g0[i]!;
    const mi = beta1 * m0[i]! + (1 - beta1) * g;
    const vi = beta2 * v0[i]! + (1 - beta2) * g * g;
    m1[i] = mi;
    v1[i] = vi;
    p1[i] = p0[i]! * keep - (stepSize * mi) / (Math.sqrt(vi) * invSqrtC2 + eps);
  }
}

// The update in WebAssembly SIMD, four float32 lanes at a time, in float32 as PyTorch computes it:
// the square root and the division, in double precision one element at a time, were what made the
// JavaScript loop slow (83 ms for VGG19's 20M weights; memory allows about half that). The arrays
// are not in the module's memory, so they go through it a chunk at a time (native copies, in cache).
//
// run(bytes, p, g, m, v, beta1, 1 - beta1, beta2, 1 - beta2, keep, stepSize, invSqrtC2, eps), on
// byte addresses, bytes a multiple of 16: m and v updated in place, the new parameter over p.
const CHUNK = 8192;
const wasmUpdate = createWasmUpdate();
let kind: "wasm" | "js" = wasmUpdate ? "wasm" : "js";

/** Which loop the cpu kernel runs: "wasm" where WebAssembly SIMD is (the default there), or "js" (tests run both). */
export function useAdamWUpdate(wanted?: "wasm" | "js"): "wasm" | "js" {
  if (wanted) kind = wanted === "wasm" && wasmUpdate ? "wasm" : "js";
  return kind;
}

function createWasmUpdate(): ((arrays: Arrays, factors: Factors) => void) | undefined {
  let run: (...args: number[]) => void;
  let heap: Float32Array;
  try {
    const memory = new WebAssembly.Memory({ initial: Math.ceil((4 * CHUNK * 4) / 65536) });
    const instance = new WebAssembly.Instance(new WebAssembly.Module(adamWModuleBytes()), { env: { memory } });
    run = instance.exports.run as (...args: number[]) => void;
    heap = new Float32Array(memory.buffer);
  } catch {
    return undefined; // no WebAssembly SIMD: the JavaScript loop
  }
  const [P, G, M, V] = [0, 1, 2, 3].map((i) => i * CHUNK);
  return ({ p0, g0, m0, v0, p1, m1, v1 }, { beta1, beta2, keep, stepSize, invSqrtC2, eps }) => {
    for (let at = 0; at < p0.length; at += CHUNK) {
      const len = Math.min(CHUNK, p0.length - at);
      heap.set(p0.subarray(at, at + len), P!);
      heap.set(g0.subarray(at, at + len), G!);
      heap.set(m0.subarray(at, at + len), M!);
      heap.set(v0.subarray(at, at + len), V!);
      // Lanes past len (at most 3) compute on stale values and are not copied out.
      run(Math.ceil(len / 4) * 16, P! * 4, G! * 4, M! * 4, V! * 4, beta1, 1 - beta1, beta2, 1 - beta2, keep, stepSize, invSqrtC2, eps);
      p1.set(heap.subarray(P!, P! + len), at);
      m1.set(heap.subarray(M!, M! + len), at);
      v1.set(heap.subarray(V!, V! + len), at);
    }
  };
}

function adamWModuleBytes(): Uint8Array<ArrayBuffer> {
  const [BYTES, P, G, M, V] = [0, 1, 2, 3, 4];
  const SCALARS = 8; // beta1, 1 - beta1, beta2, 1 - beta2, keep, stepSize, invSqrtC2, eps (params 5..12)
  const splat = (k: number) => 5 + SCALARS + k; // each scalar in all four lanes
  const [B1, OB1, B2, OB2, KEEP, STEP, ISC, EPS] = [0, 1, 2, 3, 4, 5, 6, 7].map(splat) as number[];
  const [GV, MI, VI] = [13 + SCALARS, 14 + SCALARS, 15 + SCALARS];
  const END_AT = 16 + SCALARS;
  const mul = (a: number[], b: number[]) => [...a, ...b, ...F32X4_MUL];
  const add = (a: number[], b: number[]) => [...a, ...b, ...F32X4_ADD];
  const get = localGet;
  const body: number[] = [];
  for (let k = 0; k < SCALARS; k++) body.push(...localGet(5 + k), ...F32X4_SPLAT, ...localSet(splat(k)));
  body.push(...get(P), ...get(BYTES), ...I32_ADD, ...localSet(END_AT));
  body.push(...LOOP);
  body.push(...get(G), ...v128Load(0), ...localSet(GV));
  // m = beta1 * m + (1 - beta1) * g;  v = beta2 * v + (1 - beta2) * g * g
  body.push(...add(mul(get(B1), [...get(M), ...v128Load(0)]), mul(get(OB1), get(GV))), ...localSet(MI));
  body.push(...add(mul(get(B2), [...get(V), ...v128Load(0)]), mul(mul(get(OB2), get(GV)), get(GV))), ...localSet(VI));
  body.push(...get(M), ...get(MI), ...v128Store(0));
  body.push(...get(V), ...get(VI), ...v128Store(0));
  // p = p * keep - (stepSize * m) / (sqrt(v) * invSqrtC2 + eps)
  body.push(...get(P));
  body.push(...mul([...get(P), ...v128Load(0)], get(KEEP)));
  body.push(...mul(get(STEP), get(MI)), ...add(mul([...get(VI), ...F32X4_SQRT], get(ISC)), get(EPS)), ...F32X4_DIV);
  body.push(...F32X4_SUB, ...v128Store(0));
  for (const pointer of [P, G, M, V]) body.push(...get(pointer), ...i32Const(16), ...I32_ADD, ...localSet(pointer));
  body.push(...get(P), ...get(END_AT), ...I32_LT_U, ...brIf(0), ...END);
  return wasmModule({ params: [I32, I32, I32, I32, I32, ...Array(SCALARS).fill(F32)], locals: [[SCALARS + 3, V128], [1, I32]], body });
}


const kernel = adamWKernel("cpu", adamWCpu as tf.KernelFunc);
/** Make the fused update available on the cpu backend. Safe to call twice. */
export const registerCpuAdamW = (): void => kernel.register();
export const unregisterCpuAdamW = (): void => kernel.unregister();
