// Whole training steps (forward, loss, backward, AdamW update: the learner's own trainStep) of
// VGG19 with and without the final BN, in images per second, with tfjs's stock kernels and ours.
import * as tf from "@tensorflow/tfjs";
import { buildModel, type Arch } from "../src/models/index.ts";
import { AdamW } from "../src/train/adamw.ts";
import { trainStep } from "../src/train/learner.ts";
import type { Batch } from "../src/data/images.ts";
import { makeRng } from "../src/data/rng.ts";
import type { KernelSwitch, Kernels } from "./kernel-switch.ts";
import { timeAlternating } from "./timing.ts";

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
    const times = await timeAlternating(
      o.sets.map((set) => ({ before: () => o.kernels.use(set), run: step })),
      { clock: o.kernels.clock, minMs: o.minMs, rounds: o.rounds, slowMs: 120_000 },
    );
    o.sets.forEach((set, i) => {
      const ms = times[i]!;
      rows.push({ arch: o.arch, finalBN, kernels: set, size: o.size, batch: o.batch, width: o.width, msPerStep: ms, imagesPerSec: (o.batch / ms) * 1000 });
      log(`${o.arch} ${finalBN ? "with" : "without"} final BN, ${set} kernels: ${ms.toFixed(0)} ms/step`);
    });
    optimizer.dispose();
    model.dispose();
  }
  return rows;
}
