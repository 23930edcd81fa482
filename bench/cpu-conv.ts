// How much faster are our cpu convolution kernels than tfjs's stock ones? For a few VGG19
// layers (real channel counts, small images) and the ResNet34 7x7 stem, times the forward
// pass, the input gradient and the filter gradient with the stock kernels and with ours, in
// the same process, and prints ms, GFLOP/s and the speed-up.
//   npx tsx bench/cpu-conv.ts [--size PX] [--batch N] [--layers conv1_2,stem] [--micro-kernel js] [--json]
// The stock filter gradient runs at about 0.01 GFLOP/s, so it is timed once on batch 1 and
// scaled to the full batch (its work grows linearly with the batch); the table says so.
// Times are CPU time of this (single-threaded) process, so other people's jobs on the machine
// move them less than wall-clock time would; still, read the ratios rather than the absolutes.
import * as tf from "@tensorflow/tfjs";
import { numberFlag, parseFlags, runCli, UsageError } from "../src/cli/args.ts";
import { registerCpuConvKernels, unregisterCpuConvKernels } from "../src/backends/cpu-conv.ts";
import { microKernelKind, useMicroKernel } from "../src/backends/gemm.ts";

interface Layer {
  name: string;
  /** Input height and width as a fraction of --size. */
  scale: number;
  inC: number;
  outC: number;
  k: number;
  stride: number;
}

// VGG19 blocks halve the image each time; one representative layer per block.
const LAYERS: Layer[] = [
  { name: "vgg conv1_1", scale: 1, inC: 3, outC: 64, k: 3, stride: 1 },
  { name: "vgg conv1_2", scale: 1, inC: 64, outC: 64, k: 3, stride: 1 },
  { name: "vgg conv2_2", scale: 1 / 2, inC: 128, outC: 128, k: 3, stride: 1 },
  { name: "vgg conv3_2", scale: 1 / 4, inC: 256, outC: 256, k: 3, stride: 1 },
  { name: "vgg conv4_2", scale: 1 / 8, inC: 512, outC: 512, k: 3, stride: 1 },
  { name: "vgg conv5_2", scale: 1 / 16, inC: 512, outC: 512, k: 3, stride: 1 },
  { name: "resnet stem", scale: 1, inC: 3, outC: 64, k: 7, stride: 2 },
];

type Op = "forward" | "input" | "filter";
const OPS: Op[] = ["forward", "input", "filter"];

interface Row {
  layer: string;
  shape: string;
  op: Op;
  gflop: number;
  stockMs: number;
  oursMs: number;
  stockGflops: number;
  oursGflops: number;
  speedup: number;
  /** Batch the stock kernel actually ran on, when smaller than the full batch. */
  stockBatch: number;
}

/** Random inputs for one kernel and batch: call() runs the kernel once, dispose() frees the inputs. */
function kernelCall(layer: Layer, size: number, batch: number, op: Op): { call: () => void; dispose: () => void } {
  const side = Math.max(1, Math.round(size * layer.scale));
  const x = tf.randomNormal([batch, side, side, layer.inC]) as tf.Tensor4D;
  const w = tf.randomNormal([layer.k, layer.k, layer.inC, layer.outC]) as tf.Tensor4D;
  const y = tf.conv2d(x, w, layer.stride, "same");
  const dy = tf.randomNormal(y.shape);
  y.dispose();
  const strides: [number, number] = [layer.stride, layer.stride];
  const attrs = { strides, pad: "same", dataFormat: "NHWC" };
  const engine = tf.engine();
  const run = {
    forward: () => engine.runKernel("Conv2D", { x, filter: w }, { ...attrs, dilations: [1, 1] }),
    input: () => engine.runKernel("Conv2DBackpropInput", { dy, filter: w }, { ...attrs, inputShape: x.shape }),
    filter: () => engine.runKernel("Conv2DBackpropFilter", { x, dy }, { ...attrs, filterShape: w.shape }),
  }[op];
  return { call: () => tf.dispose(run() as tf.Tensor), dispose: () => tf.dispose([x, w, dy]) };
}

/** Multiply-adds times two; the same for all three products. */
function gflop(layer: Layer, size: number, batch: number): number {
  const side = Math.max(1, Math.round(size * layer.scale));
  const out = Math.ceil(side / layer.stride);
  return (2 * batch * out * out * layer.k * layer.k * layer.inC * layer.outC) / 1e9;
}

/** CPU milliseconds used by this process: unlike the wall clock, barely moved by other people's jobs. */
function cpuMs(): number {
  const { user, system } = process.cpuUsage();
  return (user + system) / 1000;
}

/** Median CPU ms of repeated calls after one warm-up call, spending about minSeconds in total. */
function timeMs(call: () => void, minSeconds: number, maxReps: number): number {
  let t = cpuMs();
  call();
  const first = cpuMs() - t;
  if (first > minSeconds * 1000) return first;
  const times: number[] = [];
  while (times.length < maxReps && times.reduce((a, b) => a + b, 0) < minSeconds * 1000) {
    t = cpuMs();
    call();
    times.push(cpuMs() - t);
  }
  times.sort((a, b) => a - b);
  return times[Math.floor(times.length / 2)];
}

function benchLayer(layer: Layer, size: number, batch: number): Row[] {
  const rows: Row[] = [];
  const side = Math.max(1, Math.round(size * layer.scale));
  for (const op of OPS) {
    // The stock filter gradient is far too slow for the full batch: batch 1, scaled.
    const stockBatch = op === "filter" ? 1 : batch;
    unregisterCpuConvKernels();
    const stock = kernelCall(layer, size, stockBatch, op);
    const stockMs = (timeMs(stock.call, 0.5, 3) * batch) / stockBatch;
    stock.dispose();
    registerCpuConvKernels();
    const ours = kernelCall(layer, size, batch, op);
    const oursMs = timeMs(ours.call, 0.5, 20);
    ours.dispose();
    unregisterCpuConvKernels();
    const g = gflop(layer, size, batch);
    rows.push({
      layer: layer.name,
      shape: `${batch}x${side}x${side}x${layer.inC} -> ${layer.outC}, ${layer.k}x${layer.k}/${layer.stride}`,
      op,
      gflop: g,
      stockMs,
      oursMs,
      stockGflops: g / (stockMs / 1000),
      oursGflops: g / (oursMs / 1000),
      speedup: stockMs / oursMs,
      stockBatch,
    });
  }
  return rows;
}

function printTable(rows: Row[], batch: number): void {
  const header = ["layer", "shape", "op", "GFLOP", "stock ms", "ours ms", "stock GFLOP/s", "ours GFLOP/s", "speed-up"];
  const lines = rows.map((r) => [
    r.layer,
    r.shape,
    r.op,
    r.gflop.toFixed(3),
    r.stockMs.toFixed(0) + (r.stockBatch < batch ? "*" : ""),
    r.oursMs.toFixed(1),
    r.stockGflops.toFixed(3),
    r.oursGflops.toFixed(2),
    r.speedup.toFixed(0) + "x",
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...lines.map((l) => l[i].length)));
  const format = (cells: string[]) => cells.map((c, i) => (i < 3 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join("  ");
  console.log(format(header));
  for (const l of lines) console.log(format(l));
  if (rows.some((r) => r.stockBatch < batch)) {
    console.log(`* stock kernel run once on batch 1 and scaled by ${batch} (its cost is linear in the batch)`);
  }
}

runCli(async () => {
  const flags = parseFlags("bench:cpu-conv", "Time stock vs GEMM-based cpu convolution kernels.", {
    size: { type: "string", help: "input height and width of the first VGG layer and the stem", default: "32" },
    batch: { type: "string", help: "batch size", default: "4" },
    layers: { type: "string", help: `comma-separated subset of: ${LAYERS.map((l) => l.name.split(" ")[1]).join(",")}` },
    "micro-kernel": { type: "string", help: "inner loop of ours: wasm-simd or js (plain JavaScript)", default: "wasm-simd" },
    json: { type: "boolean", help: "print the rows as JSON instead of a table" },
  });
  const kind = flags["micro-kernel"];
  if (kind !== "wasm-simd" && kind !== "js") throw new UsageError(`--micro-kernel must be wasm-simd or js, got "${kind}"`);
  useMicroKernel(kind);
  const size = numberFlag("size", flags.size, { integer: true, min: 8, max: 256 })!;
  const batch = numberFlag("batch", flags.batch, { integer: true, min: 1, max: 64 })!;
  const wanted = flags.layers?.split(",").map((s) => s.trim());
  const layers = wanted ? LAYERS.filter((l) => wanted.includes(l.name.split(" ")[1])) : LAYERS;
  if (wanted && layers.length !== wanted.length) throw new UsageError(`--layers: unknown name in "${flags.layers}" (see --help)`);
  await tf.setBackend("cpu");
  const rows: Row[] = [];
  for (const layer of layers) {
    rows.push(...benchLayer(layer, size, batch));
    if (!flags.json) console.error(`done ${layer.name}`);
  }
  if (flags.json) console.log(JSON.stringify({ size, batch, microKernel: microKernelKind(), rows }, null, 2));
  else {
    console.log(`ours: ${microKernelKind()} micro-kernel; times are CPU ms of this process`);
    printTable(rows, batch);
  }
});
