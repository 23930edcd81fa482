// One checkpoint per run, rewritten after every epoch: the model's weights (batch-norm running
// statistics included), AdamW's moments and step, the config and the history so far, in one
// .safetensors file written atomically. Resuming from it continues exactly where the run stopped.
import * as tf from "@tensorflow/tfjs";
import { readFile, access } from "node:fs/promises";
import path from "node:path";
import { parseSafetensors, toFloat32, writeSafetensors, type TensorToWrite } from "../models/safetensors.ts";
import type { TrainConfig } from "./config.ts";
import type { AdamW } from "./adamw.ts";
import type { EpochRecord } from "./learner.ts";
import { writeFileAtomic } from "../data/files.ts";

export const CHECKPOINT_FILE = "checkpoint.safetensors";
const FORMAT = "finalbn-checkpoint/1";

/** Settings that must match for a checkpoint to be resumed (where the data lives may change). */
function identity(c: TrainConfig): string {
  const { data: _d, runsDir: _r, cacheDir: _c, ...rest } = c;
  return JSON.stringify(rest, Object.keys(rest).sort());
}

export async function saveCheckpoint(
  runDir: string,
  model: tf.LayersModel,
  optimizer: AdamW,
  state: { config: TrainConfig; history: EpochRecord[] },
): Promise<void> {
  const tensors: Record<string, TensorToWrite> = {};
  const add = async (name: string, t: tf.Tensor) => {
    tensors[name] = { shape: t.shape, data: (await t.data()) as Float32Array };
  };
  for (const [i, w] of model.weights.entries()) await add(`model.${i}`, w.read());
  for (const [i, t] of optimizer.stateTensors().entries()) await add(`optimizer.${i}`, t);
  const metadata = {
    format: FORMAT,
    step: String(optimizer.step),
    identity: identity(state.config),
    config: JSON.stringify(state.config),
    history: JSON.stringify(state.history),
    weights: JSON.stringify(model.weights.map((w) => w.originalName)),
  };
  await writeFileAtomic(path.join(runDir, CHECKPOINT_FILE), writeSafetensors(tensors, metadata));
}

/**
 * Restore a run from runDir's checkpoint into a freshly built model and optimizer. Returns the
 * history so far, or undefined when there is no checkpoint. A checkpoint of other settings is an
 * error rather than something silently mixed in.
 */
export async function loadCheckpoint(
  runDir: string,
  model: tf.LayersModel,
  optimizer: AdamW,
  config: TrainConfig,
): Promise<{ history: EpochRecord[] } | undefined> {
  const file = path.join(runDir, CHECKPOINT_FILE);
  if (!(await access(file).then(() => true, () => false))) return undefined;
  const ckpt = parseCheckpoint(file, await readFile(file));
  const meta = ckpt.metadata;
  if (meta.format !== FORMAT) throw new Error(`${file} is not a finalbn checkpoint`);
  if (meta.identity !== identity(config))
    throw new Error(`${file} was written with other settings; delete ${runDir} or choose another --out to start afresh`);
  const restore = (name: string, target: tf.Variable | tf.LayerVariable) => {
    const t = ckpt.tensors.get(name);
    if (!t || t.shape.join() !== target.shape.join()) throw new Error(`${file}: ${name} is missing or has the wrong shape`);
    const value = tf.tensor(toFloat32(t, name), t.shape);
    if (target instanceof tf.Variable) target.assign(value);
    else target.write(value);
    value.dispose();
  };
  model.weights.forEach((w, i) => restore(`model.${i}`, w));
  optimizer.stateTensors().forEach((t, i) => restore(`optimizer.${i}`, t));
  optimizer.step = Number(meta.step);
  return { history: JSON.parse(meta.history) as EpochRecord[] };
}

/** The checkpoint's tensors; a damaged file (a full disk, a copy cut short) says what to do about it. */
function parseCheckpoint(file: string, bytes: Uint8Array): ReturnType<typeof parseSafetensors> {
  try {
    return parseSafetensors(bytes);
  } catch (err) {
    throw new Error(
      `checkpoint ${file} is damaged (${(err as Error).message}); delete it to train this run afresh, or restore it from a copy`,
      { cause: err },
    );
  }
}
