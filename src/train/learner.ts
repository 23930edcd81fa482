// The training loop, whole: one-cycle AdamW over the 99:1 training set, evaluated on the balanced
// test set after every epoch, logged, checkpointed, resumable. Callbacks let a terminal or a
// notebook show progress without the loop knowing which one it is talking to. A stop signal
// (interrupt.ts) ends it after the current batch, before anything of the unfinished epoch is written.
import path from "node:path";
import * as tf from "@tensorflow/tfjs";
import { imageBatches, type Batch, type ImageItem } from "../data/images.ts";
import { makeRng, shuffled, subSeed } from "../data/rng.ts";
import { buildModel, setBodyTrainable, loadTorchvisionWeights, logitsModel, setDropoutStep } from "../models/index.ts";
import type { TrainConfig } from "./config.ts";
import { AdamW } from "./adamw.ts";
import { oneCycle } from "./schedule.ts";
import { argmaxRows, crossEntropyFromLogits, minorityMetrics, type Confusion } from "./metrics.ts";
import { loadRunData } from "./data.ts";
import { loadCheckpoint, saveCheckpoint } from "./checkpoint.ts";
import { RunLog, type RunInfo } from "./run-log.ts";
import { Interrupted } from "./interrupt.ts";
import { lockRun } from "./run-lock.ts";

export interface EpochRecord {
  epoch: number;
  trainLoss: number;
  testLoss: number;
  accuracy: number;
  precision: number;
  recall: number;
  f1: number;
  confusion: Confusion;
  lr: number;
  seconds: number;
  imagesPerSec: number;
}

export interface BatchProgress {
  epoch: number;
  epochs: number;
  batch: number;
  batches: number;
  loss: number;
  lr: number;
  imagesPerSec: number;
}

/** What a run starts from: its epochs so far (from a checkpoint; all of them for a finished run that is reused). */
export interface RunStart {
  history: EpochRecord[];
  epochs: number;
}

export interface TrainCallbacks {
  onStart?: (s: RunStart) => void;
  onBatch?: (p: BatchProgress) => void;
  onEpoch?: (r: EpochRecord) => void;
  /** Test hook: stop (as if killed) after this epoch's checkpoint is written. */
  stopAfterEpoch?: number;
}

export interface TrainResult {
  runDir: string;
  history: EpochRecord[];
  /** Epoch the run resumed after, when it found a checkpoint. */
  resumedAfter?: number;
  model: tf.LayersModel;
}

export class NanLossError extends Error {}

const NUM_CLASSES = 2;

export async function train(
  config: TrainConfig,
  opts: { runDir: string; info: RunInfo; callbacks?: TrainCallbacks; signal?: AbortSignal },
): Promise<TrainResult> {
  const unlock = await lockRun(opts.runDir);
  try {
    return await trainLocked(config, opts);
  } finally {
    await unlock();
  }
}

async function trainLocked(
  config: TrainConfig,
  opts: { runDir: string; info: RunInfo; callbacks?: TrainCallbacks; signal?: AbortSignal },
): Promise<TrainResult> {
  const { runDir, callbacks = {}, signal } = opts;
  const data = await loadRunData(config.manifest, config.data);
  const model = buildModel({
    arch: config.arch,
    head: config.head,
    finalBN: config.finalBN,
    numClasses: NUM_CLASSES,
    inputSize: config.size,
    width: config.width,
    seed: config.seed,
  });
  if (config.pretrained) await loadTorchvisionWeights(model, config.pretrained, { arch: config.arch });

  const params = model.trainableWeights.map((w) => w.read() as tf.Variable);
  const optimizer = new AdamW(params, { weightDecay: config.weightDecay });
  const stepsPerEpoch = Math.floor(data.train.length / config.batchSize);
  if (stepsPerEpoch < 1) throw new Error(`batch size ${config.batchSize} is larger than the ${data.train.length} training images`);
  const totalSteps = stepsPerEpoch * config.epochs;

  const log = new RunLog(runDir);
  const resumed = await loadCheckpoint(runDir, model, optimizer, config);
  const history: EpochRecord[] = resumed?.history ?? [];
  // Only a run that still had epochs to go was resumed; a finished one is merely reused.
  const resumedAfter = resumed && history.length < config.epochs ? history.length : undefined;
  if (!resumed) await log.start(config, opts.info);
  callbacks.onStart?.({ history: [...history], epochs: config.epochs });

  try {
    for (let epoch = history.length + 1; epoch <= config.epochs; epoch++) {
      setBodyTrainable(model, !(config.pretrained && epoch <= config.freezeEpochs));
      const started = performance.now();
      const trainLoss = await trainEpoch({ model, optimizer, config, items: data.train, epoch, stepsPerEpoch, totalSteps, callbacks, signal, runDir });
      const seconds = (performance.now() - started) / 1000;
      const test = await evaluate(model, data.test, config);
      const record: EpochRecord = {
        epoch,
        trainLoss,
        testLoss: test.loss,
        ...test.metrics,
        lr: oneCycle(epoch * stepsPerEpoch - 1, { maxLr: config.lr, totalSteps }).lr,
        seconds,
        imagesPerSec: (stepsPerEpoch * config.batchSize) / seconds,
      };
      history.push(record);
      await saveCheckpoint(runDir, model, optimizer, { config, history });
      await log.epoch(history);
      callbacks.onEpoch?.(record);
      if (callbacks.stopAfterEpoch === epoch) return { runDir, history, resumedAfter, model };
    }
    const final = await evaluate(model, data.test, config);
    await log.finish(history, final);
    return { runDir, history, resumedAfter, model };
  } catch (error) {
    // An interrupted or failed run hands back no model: free its weights here.
    model.dispose();
    throw error;
  } finally {
    optimizer.dispose(); // its moments are in the checkpoint
  }
}

async function trainEpoch(o: {
  model: tf.LayersModel;
  optimizer: AdamW;
  config: TrainConfig;
  items: ImageItem[];
  epoch: number;
  stepsPerEpoch: number;
  totalSteps: number;
  callbacks: TrainCallbacks;
  signal?: AbortSignal;
  runDir: string;
}): Promise<number> {
  const { model, optimizer, config, epoch, stepsPerEpoch, totalSteps, callbacks, signal } = o;
  const stop = (batch: number) =>
    new Interrupted([{ label: path.basename(o.runDir), epoch, batch, batches: stepsPerEpoch, saved: epoch - 1 }]);
  if (signal?.aborted) throw stop(0);
  // The epoch's order comes from (seed, epoch) alone, so a resumed run sees the same batches;
  // the incomplete last batch is dropped, as fastai does, so batch norm never sees a batch of one.
  const order = shuffled(o.items, makeRng(subSeed(config.seed, `epoch-${epoch}`))).slice(0, stepsPerEpoch * config.batchSize);
  const batches = imageBatches(order, {
    size: config.size,
    batchSize: config.batchSize,
    flip: config.flip,
    flipSeed: subSeed(config.seed, `flip-${epoch}`),
    cacheDir: config.cacheDir,
  });
  let lossSum = 0;
  let batch = 0;
  const started = performance.now();
  for await (const b of batches) {
    const step = (epoch - 1) * stepsPerEpoch + batch;
    const { lr, beta1 } = oneCycle(step, { maxLr: config.lr, totalSteps });
    setDropoutStep(model, step);
    const lossTensor = trainStep(model, optimizer, b, { lr, beta1 });
    const loss = (await lossTensor.data())[0];
    lossTensor.dispose();
    if (!Number.isFinite(loss))
      throw new NanLossError(
        `the training loss became ${loss} at epoch ${epoch}, batch ${batch + 1} (learning rate ${lr.toExponential(2)}); ` +
          `the last good checkpoint is kept; try a lower --lr`,
      );
    lossSum += loss;
    batch++;
    callbacks.onBatch?.({
      epoch,
      epochs: config.epochs,
      batch,
      batches: stepsPerEpoch,
      loss: lossSum / batch,
      lr,
      imagesPerSec: (batch * config.batchSize) / ((performance.now() - started) / 1000),
    });
    // Let timers, messages and signals in (on the cpu backend a step never waits for I/O): progress
    // reaches the notebook as it happens and an interrupt is seen at once. The weights have moved
    // on from the last checkpoint, but nothing of this epoch is written: resuming repeats it exactly.
    await new Promise((resolve) => setImmediate(resolve));
    if (signal?.aborted && batch < stepsPerEpoch) throw stop(batch);
  }
  return lossSum / Math.max(1, batch);
}

/** Forward, backward and update for one batch; returns the batch's mean loss as a scalar tensor. */
export function trainStep(model: tf.LayersModel, optimizer: AdamW, b: Batch, hyper: { lr: number; beta1: number }): tf.Scalar {
  const trainable = new Set(model.trainableWeights.map((w) => w.read().id));
  const active = optimizer.params.filter((p) => trainable.has(p.id));
  const { value, grads } = tf.tidy(() => {
    const x = tf.tensor4d(b.x, b.shape);
    const y = tf.oneHot(tf.tensor1d(b.labels, "int32"), NUM_CLASSES);
    return tf.variableGrads(() => trainingLoss(model, x, y), active);
  });
  optimizer.apply(
    optimizer.params.map((p) => grads[p.name]),
    hyper,
  );
  tf.dispose(Object.values(grads));
  return value;
}

/** logitsModel(model), built once per model: a view with no weights of its own, so nothing to dispose. */
const logitViews = new WeakMap<tf.LayersModel, tf.LayersModel>();
function logitsOf(model: tf.LayersModel): tf.LayersModel {
  let view = logitViews.get(model);
  if (!view) logitViews.set(model, (view = logitsModel(model)));
  return view;
}

/**
 * The training loss of one batch (one-hot `yTrue`): mean cross-entropy of the model's softmax,
 * computed as PyTorch's cross_entropy does, by a log-softmax of what goes into the softmax (the
 * logits, after final_bn where there is one). Taking the log of the softmax output instead needs
 * a clip against log(0), and the clip gives a sample whose probability is past it no gradient at
 * all. The model runs once, in training mode, through the same layers as model.apply(): batch
 * norm uses and updates its batch statistics once, dropout draws one mask per layer.
 */
export function trainingLoss(model: tf.LayersModel, x: tf.Tensor, yTrue: tf.Tensor): tf.Scalar {
  return tf.tidy(() => {
    const logits = logitsOf(model).apply(x, { training: true }) as tf.Tensor;
    return tf.neg(tf.mean(tf.sum(tf.mul(yTrue, tf.logSoftmax(logits)), -1))) as tf.Scalar;
  });
}

export interface Evaluation {
  loss: number;
  metrics: ReturnType<typeof minorityMetrics>;
  /** [n, 2] softmax probabilities, row-major. */
  probs: Float32Array;
  labels: Int32Array;
  paths: string[];
}

/** Predictions on a split in inference mode (batch norm uses its running statistics). */
export async function evaluate(model: tf.LayersModel, items: ImageItem[], config: Pick<TrainConfig, "size" | "batchSize" | "cacheDir">): Promise<Evaluation> {
  const logits = new Float32Array(items.length * NUM_CLASSES);
  const probs = new Float32Array(items.length * NUM_CLASSES);
  const labels = new Int32Array(items.length);
  const paths: string[] = [];
  let offset = 0;
  for await (const b of imageBatches(items, { size: config.size, batchSize: config.batchSize, cacheDir: config.cacheDir })) {
    // The softmax input, and the softmax as the model's own layer computes it.
    const z = tf.tidy(() => logitsOf(model).predict(tf.tensor4d(b.x, b.shape)) as tf.Tensor);
    const p = tf.softmax(z);
    logits.set(await z.data(), offset * NUM_CLASSES);
    probs.set(await p.data(), offset * NUM_CLASSES);
    tf.dispose([z, p]);
    labels.set(b.labels, offset);
    paths.push(...b.paths);
    offset += b.labels.length;
  }
  const predictions = argmaxRows(probs, NUM_CLASSES);
  // The test loss from the logits, like the training loss: no clip, so a confidently wrong
  // prediction costs what it costs rather than at most -log(1e-7) = 16.1.
  return { loss: crossEntropyFromLogits(logits, labels, NUM_CLASSES), metrics: minorityMetrics(labels, predictions), probs, labels, paths };
}
