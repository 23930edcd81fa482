// AdamW's fused kernel (cpu/adamw.ts, webgpu/adamw.ts) against the same update as plain tfjs ops,
// on whatever backend is current: shared by the cpu and webgpu test files.
import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import { AdamW } from "../src/train/adamw.ts";
import { ADAMW_KERNEL } from "../src/backends/adamw-kernel.ts";
import { makeRng } from "../src/data/rng.ts";

export interface FusedCheck {
  register: () => void;
  unregister: () => void;
  /** Weight shapes: rank > 1 gets weight decay, rank 1 does not. */
  shapes: number[][];
  steps: number;
}

/** Runs `steps` updates with changing lr and beta1 both ways; asserts the path taken and no leaks; returns the worst relative difference. */
export async function fusedAgainstOps({ register, unregister, shapes, steps }: FusedCheck): Promise<number> {
  const rng = makeRng(3);
  const random = (shape: number[]) => Float32Array.from({ length: tf.util.sizeFromShape(shape) }, () => 2 * rng() - 1);
  const init = shapes.map(random);
  const grads = Array.from({ length: steps }, () => shapes.map(random));
  const run = async (fused: boolean) => {
    if (fused) register();
    else unregister();
    const params = shapes.map((shape, i) => tf.variable(tf.tensor(init[i]!, shape)));
    const opt = new AdamW(params, { weightDecay: 0.05 });
    const tensors = tf.memory().numTensors;
    for (const [step, g] of grads.entries()) {
      const gt = g.map((values, i) => tf.tensor(values, shapes[i]));
      const profile = await tf.profile(() => opt.apply(gt, { lr: 0.01 * (1 + Math.sin(step)), beta1: 0.85 + 0.005 * step }));
      assert.equal(profile.kernels.some((k) => k.name === ADAMW_KERNEL), fused, "the path under test ran");
      tf.dispose(gt);
    }
    assert.equal(tf.memory().numTensors, tensors, "no tensors leak per step");
    const parts = [];
    for (const t of [...params, ...opt.m, ...opt.v]) parts.push((await t.data()) as Float32Array);
    const values = new Float32Array(parts.reduce((n, part) => n + part.length, 0));
    parts.reduce((at, part) => (values.set(part, at), at + part.length), 0);
    opt.dispose();
    tf.dispose(params);
    unregister();
    return values;
  };
  const ops = await run(false);
  const fused = await run(true);
  // Values are params, then m, then v, end to end: the first init.length values are the first weight tensor.
  assert.ok(ops.subarray(0, init[0]!.length).some((x, i) => x !== init[0]![i]), "the weights moved");
  let worst = 0;
  for (let i = 0; i < ops.length; i++) worst = Math.max(worst, Math.abs(ops[i]! - fused[i]!) / Math.max(1e-3, Math.abs(ops[i]!)));
  return worst;
}
