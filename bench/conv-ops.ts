// Per-layer timing of the three convolution products a training step runs (forward pass, input
// gradient, filter gradient), tfjs's stock kernels against ours in the same process.
import * as tf from "@tensorflow/tfjs";
import { convGflop, describeShape, outSide, type BenchModel, type ConvShape } from "./conv-shapes.ts";
import type { KernelSwitch } from "./kernel-switch.ts";
import { timeAlternating } from "./timing.ts";

export type ConvOp = "forward" | "input" | "filter";
export const CONV_OPS: readonly ConvOp[] = ["forward", "input", "filter"];
export const KERNEL_OF: Record<ConvOp, string> = {
  forward: "Conv2D",
  input: "Conv2DBackpropInput",
  filter: "Conv2DBackpropFilter",
};

export interface OpRow {
  model: BenchModel;
  layer: string;
  shape: string;
  /** Convolutions of the model with this shape. */
  count: number;
  op: ConvOp;
  gflop: number;
  stockMs: number;
  /** null: no kernel of ours ran for this op and shape on this backend (the stock one did). */
  oursMs: number | null;
  stockGflops: number;
  oursGflops: number | null;
  speedup: number | null;
  /** Batch the stock kernel really ran on, when it was too slow for the full one (then scaled). */
  stockBatch: number;
  /** max |ours - stock| / max |stock| on the same inputs, where checked. */
  relError?: number;
}

export interface ConvOpOptions {
  batch: number;
  kernels: KernelSwitch;
  minMs: number;
  rounds: number;
  /** Run the stock kernel on batch 1 and scale (cpu filter gradient: about 0.01 GFLOP/s). */
  stockBatchOne?: (op: ConvOp) => boolean;
  /** Compare our result with the stock kernel's on the same inputs before timing. */
  check?: boolean;
}

/** One op on random data: `run()` calls the kernel and waits for its result; `values()` returns it. */
function opCall(shape: ConvShape, batch: number, op: ConvOp): { run: () => Promise<void>; values: () => Promise<Float32Array>; dispose: () => void } {
  const x = tf.randomNormal([batch, shape.side, shape.side, shape.inC]) as tf.Tensor4D;
  const filter = tf.randomNormal([shape.k, shape.k, shape.inC, shape.outC]) as tf.Tensor4D;
  const dy = tf.randomNormal([batch, outSide(shape), outSide(shape), shape.outC]);
  const attrs = { strides: [shape.stride, shape.stride], pad: "same", dataFormat: "NHWC", dilations: [1, 1] };
  const call = {
    forward: () => tf.engine().runKernel("Conv2D", { x, filter }, attrs),
    input: () => tf.engine().runKernel("Conv2DBackpropInput", { dy, filter }, { ...attrs, inputShape: x.shape }),
    filter: () => tf.engine().runKernel("Conv2DBackpropFilter", { x, dy }, { ...attrs, filterShape: filter.shape }),
  }[op];
  const values = async () => {
    const out = call() as tf.Tensor;
    const data = (await out.data()) as Float32Array;
    out.dispose();
    return data;
  };
  // Timed calls wait for the result by reading back one number of it: copying the whole output to
  // the CPU (400 MB for conv1_1 at 224 px, batch 32) would cost more than the kernel on a GPU.
  const run = async () => {
    const out = call() as tf.Tensor;
    const first = tf.tidy(() => tf.slice(tf.reshape(out, [-1]), [0], [1]));
    await first.data();
    tf.dispose([out, first]);
  };
  return {
    run,
    values,
    dispose: () => tf.dispose([x, filter, dy]),
  };
}

/** max |ours - stock| / max |stock| on the same inputs: our kernel checked on this very device. */
async function errorAgainstStock(call: { values: () => Promise<Float32Array> }, kernels: ConvOpOptions["kernels"]): Promise<number> {
  kernels.use("stock");
  const expected = await call.values();
  kernels.use("ours");
  const actual = await call.values();
  let diff = 0;
  let scale = 0;
  for (let i = 0; i < expected.length; i++) {
    diff = Math.max(diff, Math.abs(actual[i]! - expected[i]!));
    scale = Math.max(scale, Math.abs(expected[i]!));
  }
  return diff / Math.max(scale, 1e-30);
}

/** Stock and ours for one shape and op. */
export async function benchOp(shape: ConvShape, op: ConvOp, o: ConvOpOptions): Promise<OpRow> {
  const stockBatch = o.stockBatchOne?.(op) ? 1 : o.batch;
  const ours = opCall(shape, o.batch, op);
  const stock = stockBatch === o.batch ? ours : opCall(shape, stockBatch, op);
  const kernelName = KERNEL_OF[op];
  const before = o.kernels.calls(kernelName);
  // Check ours against stock first where asked (webgpu): the tests do so on lavapipe and the cpu,
  // this covers the device the bench runs on, e.g. a real GPU.
  const relError = o.check ? await errorAgainstStock(ours, o.kernels) : undefined;
  const [stockMs, oursMs] = await timeAlternating(
    [
      { before: () => o.kernels.use("stock"), run: stock.run },
      { before: () => o.kernels.use("ours"), run: ours.run },
    ],
    // A stock call that takes seconds is timed once (the cpu filter gradient; its cost is linear in the batch).
    { clock: o.kernels.clock, minMs: o.minMs, rounds: o.rounds, slowMs: 3000 },
  );
  ours.dispose();
  if (stock !== ours) stock.dispose();
  // Ours only counts where our code ran: a kernel may hand a case to the stock one by design
  // (webgpu: products too narrow for its tiles), and then there is nothing of ours to time.
  const after = o.kernels.calls(kernelName);
  const haveOurs = after.fast > before.fast && after.fallback === before.fallback;
  const gflop = convGflop(shape, o.batch);
  const stockFull = (stockMs! * o.batch) / stockBatch;
  return {
    model: shape.model,
    layer: shape.name,
    shape: describeShape(shape, o.batch),
    count: shape.count,
    op,
    gflop,
    stockMs: stockFull,
    oursMs: haveOurs ? oursMs! : null,
    stockGflops: gflop / (stockFull / 1000),
    oursGflops: haveOurs ? gflop / (oursMs! / 1000) : null,
    speedup: haveOurs ? stockFull / oursMs! : null,
    stockBatch,
    relError: haveOurs ? relError : undefined,
  };
}

/** A model's whole op: each shape weighted by how often the model has it (its convolutions in one training step). */
export function modelTotal(rows: readonly OpRow[], model: BenchModel, op: ConvOp, { subset = false } = {}): OpRow | undefined {
  const mine = rows.filter((r) => r.model === model && r.op === op);
  if (mine.length === 0) return undefined;
  const sum = (f: (r: OpRow) => number) => mine.reduce((a, r) => a + r.count * f(r), 0);
  const gflop = sum((r) => r.gflop);
  const stockMs = sum((r) => r.stockMs);
  // Shapes ours hands to the stock kernel count with the stock time: what training with ours costs.
  const anyOurs = mine.some((r) => r.oursMs !== null);
  const oursMs = anyOurs ? sum((r) => r.oursMs ?? r.stockMs) : null;
  return {
    model,
    layer: subset ? `${model} listed` : `${model} total`,
    shape: `${mine.reduce((a, r) => a + r.count, 0)} conv layers`,
    count: 0,
    op,
    gflop,
    stockMs,
    oursMs,
    stockGflops: gflop / (stockMs / 1000),
    oursGflops: oursMs === null ? null : gflop / (oursMs / 1000),
    speedup: oursMs === null ? null : stockMs / oursMs,
    stockBatch: Math.min(...mine.map((r) => r.stockBatch)),
  };
}

/** One shape and op with our kernels on each kernel thread count: wall ms per call, in the order given. */
export interface ThreadRow extends Pick<OpRow, "model" | "layer" | "shape" | "count" | "op" | "gflop"> {
  threads: number[];
  ms: number[];
}

/** Our kernel on each of `threads` kernel threads, alternating round by round, by the wall clock. */
export async function benchThreads(
  shape: ConvShape,
  op: ConvOp,
  o: { batch: number; threads: readonly number[]; setThreads: (n: number) => void; minMs: number; rounds: number },
): Promise<ThreadRow> {
  const call = opCall(shape, o.batch, op);
  const ms = await timeAlternating(
    o.threads.map((n) => ({ before: () => o.setThreads(n), run: call.run })),
    { clock: "wall", minMs: o.minMs, rounds: o.rounds },
  );
  call.dispose();
  return { model: shape.model, layer: shape.name, shape: describeShape(shape, o.batch), count: shape.count, op, gflop: convGflop(shape, o.batch), threads: [...o.threads], ms };
}

/** The rows' sum, each weighted by how often its shape occurs (as modelTotal does). */
export function threadTotal(rows: readonly ThreadRow[]): ThreadRow | undefined {
  if (rows.length === 0) return undefined;
  const threads = rows[0]!.threads;
  const ms = threads.map((_, i) => rows.reduce((sum, r) => sum + r.count * r.ms[i]!, 0));
  const layers = rows.reduce((n, r) => n + r.count, 0);
  return { model: rows[0]!.model, layer: "total", shape: `${layers} convolutions`, count: 0, op: rows[0]!.op, gflop: rows.reduce((g, r) => g + r.count * r.gflop, 0), threads, ms };
}
