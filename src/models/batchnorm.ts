// BatchNormalization whose running variance follows PyTorch.
//
// Both frameworks normalise a training batch with its biased variance (divided by n, the number
// of values per channel: batch x H x W). They differ in what they fold into the running estimate:
// PyTorch folds in the unbiased variance (times n / (n - 1)), tfjs's BatchNormalization the biased
// one (tfjs-layers 4.22, layers/normalization.js: call() passes tf.moments' variance straight to
// its moving average). That update sits inline in call(), on fields the typings declare private,
// and the class itself is not exported (only the tf.layers.batchNormalization factory), so there is
// nothing to override short of reaching into privates. Hence a layer of its own: the same ops as
// tfjs's (tf.moments, tf.batchNorm: the same kernels and gradients), the same weights with the
// same names in the same order (gamma, beta, moving_mean, moving_variance), so checkpoints and
// the torchvision loader see no difference; only the running variance changes.
import * as tf from "@tensorflow/tfjs";
import { BATCH_NORM_TRAIN_KERNEL, hasBatchNormKernels } from "../backends/batchnorm-kernel.ts";

export interface BatchNormArgs {
  /** Keras convention: the share of the old running value kept at each update. */
  momentum: number;
  epsilon: number;
  name?: string;
  trainable?: boolean;
}

/** Batch normalisation over the last axis (channels last), running variance as in PyTorch. */
export class BatchNorm extends tf.layers.Layer {
  static className = "BatchNorm";
  readonly momentum: number;
  readonly epsilon: number;
  private gamma!: tf.LayerVariable;
  private beta!: tf.LayerVariable;
  private movingMean!: tf.LayerVariable;
  private movingVariance!: tf.LayerVariable;

  constructor(args: BatchNormArgs) {
    super({ name: args.name, trainable: args.trainable });
    this.momentum = args.momentum;
    this.epsilon = args.epsilon;
  }

  override build(inputShape: tf.Shape | tf.Shape[]): void {
    const shape = (Array.isArray(inputShape[0]) ? inputShape[0] : inputShape) as tf.Shape;
    const channels = shape[shape.length - 1];
    if (channels == null) throw new Error(`${this.name}: the last axis needs a fixed size, got [${shape}]`);
    this.inputSpec = [new tf.InputSpec({ ndim: shape.length, axes: { [shape.length - 1]: channels } })];
    const ones = tf.initializers.ones();
    const zeros = tf.initializers.zeros();
    this.gamma = this.addWeight("gamma", [channels], "float32", ones, undefined, true);
    this.beta = this.addWeight("beta", [channels], "float32", zeros, undefined, true);
    this.movingMean = this.addWeight("moving_mean", [channels], "float32", zeros, undefined, false);
    this.movingVariance = this.addWeight("moving_variance", [channels], "float32", ones, undefined, false);
    this.built = true;
  }

  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  override call(inputs: tf.Tensor | tf.Tensor[], kwargs: { [key: string]: any }): tf.Tensor {
    return tf.tidy(() => {
      const x = Array.isArray(inputs) ? inputs[0] : inputs;
      const gamma = this.gamma.read();
      const beta = this.beta.read();
      if (!kwargs["training"]) return tf.batchNorm(x, this.movingMean.read(), this.movingVariance.read(), beta, gamma, this.epsilon);
      const perChannel = x.size / x.shape[x.rank - 1];
      // PyTorch refuses this too: one value per channel has no variance to estimate.
      if (perChannel < 2) throw new Error(`${this.name}: batch norm in training needs more than one value per channel, got input [${x.shape}]`);
      const { y, mean, variance } = normalizeBatch(x, gamma, beta, this.epsilon);
      this.updateRunning(this.movingMean, mean);
      this.updateRunning(this.movingVariance, tf.mul(variance, perChannel / (perChannel - 1)));
      return y;
    });
  }

  /** running <- running - (running - value) * (1 - momentum), as tfjs writes it. */
  private updateRunning(running: tf.LayerVariable, value: tf.Tensor): void {
    tf.tidy(() => {
      const old = running.read();
      running.write(tf.sub(old, tf.mul(tf.sub(old, value), 1 - this.momentum)));
    });
  }

  override getConfig(): tf.serialization.ConfigDict {
    return { ...super.getConfig(), momentum: this.momentum, epsilon: this.epsilon };
  }
}
tf.serialization.registerClass(BatchNorm);

/**
 * A training batch normalised with its own per-channel mean and biased variance: one fused kernel
 * where the backend has it (backends/batchnorm-kernel.ts), else tf.moments and tf.batchNorm.
 */
function normalizeBatch(x: tf.Tensor, gamma: tf.Tensor, beta: tf.Tensor, epsilon: number): { y: tf.Tensor; mean: tf.Tensor; variance: tf.Tensor } {
  if (hasBatchNormKernels() && x.dtype === "float32") {
    const [y, mean, variance] = tf.engine().runKernel(BATCH_NORM_TRAIN_KERNEL, { x, gamma, beta }, { epsilon }) as tf.Tensor[];
    return { y: y!, mean: mean!, variance: variance! };
  }
  const { mean, variance } = tf.moments(x, [...Array(x.rank - 1).keys()]);
  return { y: tf.batchNorm(x, mean, variance, beta, gamma, epsilon), mean, variance };
}
