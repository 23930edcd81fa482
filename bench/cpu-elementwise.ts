// How much faster is a training step with our cpu element-wise kernels (cpu/elementwise.ts)
// than with tfjs's stock ones? Times one training step of VGG19-BN with the fastai head
// (forward, loss, gradients of every weight) both ways, in the same process, alternating,
// and prints ms per step, images/s and a per-kernel profile of one step each way.
// The convolutions use our GEMM kernels (cpu/conv.ts) in both cases.
//   npx tsx bench/cpu-elementwise.ts [--size PX] [--width W] [--batch N] [--rounds R] [--json]
// Times are CPU time of this (single-threaded) process, so other people's jobs on the machine
// move them less than wall-clock time would; still, read the ratios rather than the absolutes.
import * as tf from "@tensorflow/tfjs";
import { numberFlag, parseFlags, runCli } from "../src/cli/args.ts";
import { registerCpuConvKernels } from "../src/backends/cpu/conv.ts";
import {
  CPU_ELEMENTWISE_KERNEL_NAMES,
  cpuElementwiseKernelCalls,
  type CpuElementwiseKernelName,
  registerCpuElementwiseKernels,
  unregisterCpuElementwiseKernels,
} from "../src/backends/cpu/elementwise.ts";
import { buildModel } from "../src/models/index.ts";
import { clockMs, median } from "./timing.ts";
import { textTable } from "./table.ts";

interface Setup {
  size: number;
  width: number;
  batch: number;
}

/** One training step of vgg19_bn + fastai head + final BN on random images; frees what it makes. */
function trainingStep({ size, width, batch }: Setup): { step: () => void; dispose: () => void } {
  const model = buildModel({ arch: "vgg19_bn", head: "fastai", finalBN: true, numClasses: 2, inputSize: size, width, seed: 1 });
  const x = tf.randomNormal([batch, size, size, 3], 0, 1, "float32", 1);
  const labels = tf.oneHot(tf.tensor1d(Array.from({ length: batch }, (_, i) => i % 2), "int32"), 2);
  const vars = model.trainableWeights.map((w) => w.read() as tf.Variable);
  const step = () => {
    const { value, grads } = tf.variableGrads(
      () => tf.losses.softmaxCrossEntropy(labels, model.apply(x, { training: true }) as tf.Tensor) as tf.Scalar,
      vars,
    );
    tf.dispose([value, ...Object.values(grads)]);
  };
  return { step, dispose: () => (tf.dispose([x, labels]), model.dispose()) };
}

const cpuMs = () => clockMs("cpu");

function useOurs(ours: boolean): void {
  if (ours) registerCpuElementwiseKernels();
  else unregisterCpuElementwiseKernels();
}

/** Kernel name -> [ms, calls] for one step; "__op" entries wrap other kernels and are left out. */
async function profileStep(step: () => void): Promise<Map<string, [number, number]>> {
  const info = await tf.profile(step);
  const byKernel = new Map<string, [number, number]>();
  for (const k of info.kernels) {
    if (k.name.endsWith("__op")) continue;
    const entry = byKernel.get(k.name) ?? [0, 0];
    entry[0] += k.kernelTimeMs as number;
    entry[1]++;
    byKernel.set(k.name, entry);
  }
  return byKernel;
}

runCli(async () => {
  const flags = parseFlags("bench:cpu-elementwise", "Time a VGG19-BN training step with stock vs our cpu element-wise kernels.", {
    size: { type: "string", help: "input height and width", default: "32" },
    width: { type: "string", help: "channel multiplier of the network", default: "0.125" },
    batch: { type: "string", help: "batch size", default: "16" },
    rounds: { type: "string", help: "timed steps each way (alternating)", default: "5" },
    json: { type: "boolean", help: "print the results as JSON instead of tables" },
  });
  const setup: Setup = {
    size: numberFlag("size", flags.size, { integer: true, min: 32, max: 256 })!,
    width: numberFlag("width", flags.width, { min: 1 / 64, max: 1 })!,
    batch: numberFlag("batch", flags.batch, { integer: true, min: 2, max: 128 })!,
  };
  const rounds = numberFlag("rounds", flags.rounds, { integer: true, min: 1, max: 100 })!;
  await tf.setBackend("cpu");
  registerCpuConvKernels();
  const { step, dispose } = trainingStep(setup);

  // Warm up both ways (JIT, first allocations), then alternate so drifts in load hit both alike.
  for (const ours of [false, true, true]) (useOurs(ours), step());
  const times = { stock: [] as number[], ours: [] as number[] };
  for (let r = 0; r < rounds; r++) {
    for (const ours of [false, true]) {
      useOurs(ours);
      const t = cpuMs();
      step();
      times[ours ? "ours" : "stock"].push(cpuMs() - t);
    }
    if (!flags.json) console.error(`round ${r + 1}/${rounds}: stock ${times.stock[r].toFixed(0)} ms, ours ${times.ours[r].toFixed(0)} ms`);
  }

  useOurs(false);
  const stockProfile = await profileStep(step);
  useOurs(true);
  const before = cpuElementwiseKernelCalls();
  const oursProfile = await profileStep(step);
  const after = cpuElementwiseKernelCalls();
  dispose();

  const stockMs = median(times.stock);
  const oursMs = median(times.ours);
  const paths = Object.fromEntries(
    CPU_ELEMENTWISE_KERNEL_NAMES.map((n) => [n, { fast: after[n].fast - before[n].fast, fallback: after[n].fallback - before[n].fallback }]),
  ) as Record<CpuElementwiseKernelName, { fast: number; fallback: number }>;
  const kernels = [...new Set([...stockProfile.keys(), ...oursProfile.keys()])]
    .map((name) => ({
      name,
      calls: oursProfile.get(name)?.[1] ?? 0,
      stockMs: stockProfile.get(name)?.[0] ?? 0,
      oursMs: oursProfile.get(name)?.[0] ?? 0,
      ...(paths[name as CpuElementwiseKernelName] ?? {}),
    }))
    .sort((a, b) => b.oursMs - a.oursMs);
  const result = {
    setup: { arch: "vgg19_bn", head: "fastai", finalBN: true, ...setup, rounds },
    stock: { msPerStep: stockMs, imagesPerSecond: (setup.batch / stockMs) * 1000, times: times.stock },
    ours: { msPerStep: oursMs, imagesPerSecond: (setup.batch / oursMs) * 1000, times: times.ours },
    speedup: stockMs / oursMs,
    kernels,
  };
  if (flags.json) {
    console.log(JSON.stringify(result, null, 2));
    return;
  }
  console.log(`vgg19_bn + fastai head, width ${setup.width}, ${setup.size} px, batch ${setup.batch}; median CPU ms of ${rounds} steps`);
  console.log(`stock element-wise kernels: ${stockMs.toFixed(0)} ms/step, ${result.stock.imagesPerSecond.toFixed(1)} images/s`);
  console.log(`ours:                       ${oursMs.toFixed(0)} ms/step, ${result.ours.imagesPerSecond.toFixed(1)} images/s`);
  console.log(`speed-up: ${result.speedup.toFixed(2)}x`);
  console.log("");
  console.log("per-kernel wall ms of one step (tf.profile), sorted by ours; fast/fallback = calls of our kernels");
  const lines = kernels
    .filter((k) => k.stockMs >= 0.5 || k.oursMs >= 0.5)
    .map((k) => [k.name, String(k.calls), k.stockMs.toFixed(1), k.oursMs.toFixed(1), String(k.fast ?? ""), String(k.fallback ?? "")]);
  const total = (p: Map<string, [number, number]>) => [...p.values()].reduce((s, [ms]) => s + ms, 0);
  lines.push(["total", "", total(stockProfile).toFixed(0), total(oursProfile).toFixed(0), "", ""]);
  console.log(textTable(["kernel", "calls", "stock ms", "ours ms", "fast", "fallback"], lines));
});
