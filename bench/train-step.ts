// Whole training steps (forward, loss, backward, AdamW update: the learner's own trainStep) of
// VGG19 with and without the final BN, in images per second, with tfjs's stock kernels and ours,
// on each thread count asked for; with the step's GFLOP/s and the share of it in convolutions.
import * as tf from "@tensorflow/tfjs";
import { buildModel, VGG19_STAGES, type Arch } from "../src/models/index.ts";
import { scaled } from "../src/models/common.ts";
import { cpuConvKernelMs } from "../src/backends/cpu/conv.ts";
import { setThreads } from "../src/backends/cpu/thread-pool.ts";
import { AdamW } from "../src/train/adamw.ts";
import { trainStep } from "../src/train/learner.ts";
import type { Batch } from "../src/data/images.ts";
import { makeRng } from "../src/data/rng.ts";
import type { KernelSwitch, Kernels } from "./kernel-switch.ts";
import { timeAlternating, type Clock } from "./timing.ts";

export interface StepOptions {
  arch: Arch;
  size: number;
  batch: number;
  width: number;
  kernels: KernelSwitch;
  /** Which kernel sets to time: ours alone, or stock as well. */
  sets: readonly Kernels[];
  rounds: number;
  minMs: number;
  /** Kernel thread counts to time (cpu; each at most the pool's size). Default: the pool as started. */
  threads?: readonly number[];
}

export interface StepRow {
  arch: Arch;
  finalBN: boolean;
  kernels: Kernels;
  size: number;
  batch: number;
  width: number;
  msPerStep: number;
  imagesPerSec: number;
  /** Kernel threads (cpu; 1 elsewhere). */
  threads: number;
  /** What timed the row: CPU time of the process (one thread) or the wall clock. */
  clock: Clock;
  /** The convolutions' GFLOP per step (forward and both gradients) over the step's time. */
  gflops: number;
  /** Wall-clock ms per step inside our cpu convolution kernels (every call, warm-ups included), and its share of the steps' wall time. */
  convMsPerStep?: number;
  convShare?: number;
}

/**
 * GFLOP of a VGG19 training step's convolutions: the forward pass, the filter gradient and the input
 * gradient (all but the first layer's: nothing needs the image's gradient) cost 2·pixels·patch·out
 * each. The dense head adds well under 1% and is left out.
 */
export function vgg19StepGflop(size: number, batch: number, width: number): number {
  let flops = 0;
  let side = size;
  let inC = 3;
  let first = true;
  for (const stage of VGG19_STAGES) {
    for (const channels of stage) {
      const outC = scaled(channels, width);
      const forward = 2 * batch * side * side * 9 * inC * outC;
      flops += forward * (first ? 2 : 3);
      first = false;
      inC = outC;
    }
    side = Math.max(1, Math.floor(side / 2));
  }
  return flops / 1e9;
}

/** Random images in [-1, 1) with alternating labels: speed does not depend on the pixels. */
function randomBatch(size: number, batch: number): Batch {
  const rng = makeRng(1);
  const x = Float32Array.from({ length: batch * size * size * 3 }, () => 2 * rng() - 1);
  const labels = Int32Array.from({ length: batch }, (_, i) => i % 2);
  return { x, shape: [batch, size, size, 3], labels, paths: [] };
}

/** Both variants (final BN or not), each with every kernel set in `sets`, alternating. */
export async function benchTrainSteps(o: StepOptions, log: (line: string) => void = () => {}): Promise<StepRow[]> {
  const rows: StepRow[] = [];
  const b = randomBatch(o.size, o.batch);
  for (const finalBN of [false, true]) {
    const model = buildModel({ arch: o.arch, head: "fastai", finalBN, numClasses: 2, inputSize: o.size, width: o.width, seed: 1 });
    const params = model.trainableWeights.map((w) => w.read() as tf.Variable);
    const optimizer = new AdamW(params, { weightDecay: 1e-2 });
    // A small learning rate keeps the weights sane however many steps the timing takes.
    const step = async () => {
      const loss = trainStep(model, optimizer, b, { lr: 1e-5, beta1: 0.9 });
      await loss.data();
      loss.dispose();
    };
    // Every kernel set on every thread count, alternating; conv time and wall time summed per contender.
    const threadCounts = o.threads ?? [undefined];
    const contenders = o.sets.flatMap((set) => threadCounts.map((threads) => ({ set, threads, convMs: 0, wallMs: 0, calls: 0 })));
    // Rows on different thread counts are compared: then all of them by the wall clock.
    const anyThreaded = threadCounts.some((t) => t !== undefined && t > 1);
    const times = await timeAlternating(
      contenders.map((c) => ({
        before: () => {
          o.kernels.use(c.set);
          if (c.threads !== undefined) setThreads(c.threads);
        },
        clock: clockFor(o.kernels.clock, c.threads, anyThreaded),
        run: async () => {
          const [conv0, wall0] = [cpuConvKernelMs(), performance.now()];
          await step();
          c.convMs += cpuConvKernelMs() - conv0;
          c.wallMs += performance.now() - wall0;
          c.calls++;
        },
      })),
      { clock: o.kernels.clock, minMs: o.minMs, rounds: o.rounds, slowMs: 120_000 },
    );
    const gflop = vgg19StepGflop(o.size, o.batch, o.width);
    contenders.forEach((c, i) => {
      const ms = times[i]!;
      const threads = c.threads ?? 1;
      const clock = clockFor(o.kernels.clock, c.threads, anyThreaded);
      const ours = o.kernels.backend === "cpu" && c.set === "ours";
      rows.push({
        arch: o.arch, finalBN, kernels: c.set, size: o.size, batch: o.batch, width: o.width, msPerStep: ms,
        imagesPerSec: (o.batch / ms) * 1000, threads, clock, gflops: gflop / (ms / 1000),
        // Wall-clock time inside our convolutions, per step and as a share of the step's wall time.
        ...(ours && c.calls > 0 ? { convShare: c.convMs / c.wallMs, convMsPerStep: c.convMs / c.calls } : {}),
      });
      log(`${o.arch} ${finalBN ? "with" : "without"} final BN, ${c.set} kernels, ${threads} thread${threads > 1 ? "s" : ""}: ${ms.toFixed(0)} ms/step (${clock} clock)`);
    });
    optimizer.dispose();
    model.dispose();
  }
  return rows;
}

/** The threaded path's guard: convolution time per step on 1 thread over that on the most threads timed. */
export function threadSpeedups(steps: readonly StepRow[]): { finalBN: boolean; threads: number; conv: number | null; step: number }[] {
  const ours = steps.filter((r) => r.kernels === "ours");
  const out = [];
  for (const bn of [false, true]) {
    const rows = ours.filter((r) => r.finalBN === bn);
    const one = rows.find((r) => r.threads === 1);
    const most = rows.reduce<StepRow | undefined>((best, r) => (!best || r.threads > best.threads ? r : best), undefined);
    if (!one || !most || most.threads === 1) continue;
    const conv = one.convMsPerStep && most.convMsPerStep ? one.convMsPerStep / most.convMsPerStep : null;
    out.push({ finalBN: bn, threads: most.threads, conv, step: one.msPerStep / most.msPerStep });
  }
  return out;
}

/**
 * On the cpu, CPU time of the process when every row runs on one thread; the wall clock as soon as
 * one runs on more (CPU time would sum over its threads), for all rows, so that they compare.
 */
function clockFor(clock: Clock, threads: number | undefined, anyThreaded: boolean): Clock {
  if (threads === undefined) return clock;
  return anyThreaded ? "wall" : "cpu";
}
