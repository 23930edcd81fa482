// Batch normalisation in training as two kernels of our own names, shared by the layer
// (src/models/batchnorm.ts) and the backends that implement them (cpu/batchnorm.ts).
//
//   FinalbnBatchNormTrain  inputs x (channels last), gamma, beta; outputs y, the batch mean and the
//                          batch's biased variance, per channel
//   FinalbnBatchNormGrad   inputs dy, x, gamma, mean, variance; one output, chosen by `output`:
//                          the gradient of x, of gamma or of beta
//
// Without them the layer runs tf.moments and tf.batchNorm, whose forward and backward are some
// twenty broadcasts and reductions, each a pass over the activations and a fresh array: at the
// classroom's scale a third of a training step. The layer calls the kernels where the current
// backend has them and the ops otherwise; both compute the same formula.
import * as tf from "@tensorflow/tfjs";

export const BATCH_NORM_TRAIN_KERNEL = "FinalbnBatchNormTrain";
export const BATCH_NORM_GRAD_KERNEL = "FinalbnBatchNormGrad";

export interface BatchNormTrainAttrs {
  epsilon: number;
}

export interface BatchNormGradAttrs {
  epsilon: number;
  /** Which gradient to return: 0 x, 1 gamma, 2 beta (one per kernel call; see the layer for why). */
  output: 0 | 1 | 2;
}

/** Whether the backend in use has both kernels. */
export function hasBatchNormKernels(): boolean {
  const backend = tf.getBackend();
  return tf.getKernel(BATCH_NORM_TRAIN_KERNEL, backend) !== undefined && tf.getKernel(BATCH_NORM_GRAD_KERNEL, backend) !== undefined;
}

let gradientRegistered = false;

/**
 * Register one backend's implementations, and (once, for every backend) the gradient of the
 * training kernel. Both functions are safe to call twice.
 */
export function batchNormKernels(backendName: string, train: tf.KernelFunc, grad: tf.KernelFunc): { register(): void; unregister(): void } {
  return {
    register: () => {
      if (!tf.getKernel(BATCH_NORM_TRAIN_KERNEL, backendName)) tf.registerKernel({ kernelName: BATCH_NORM_TRAIN_KERNEL, backendName, kernelFunc: train });
      if (!tf.getKernel(BATCH_NORM_GRAD_KERNEL, backendName)) tf.registerKernel({ kernelName: BATCH_NORM_GRAD_KERNEL, backendName, kernelFunc: grad });
      if (!gradientRegistered) {
        tf.registerGradient(BATCH_NORM_TRAIN_GRADIENT);
        gradientRegistered = true;
      }
    },
    unregister: () => {
      if (tf.getKernel(BATCH_NORM_TRAIN_KERNEL, backendName)) tf.unregisterKernel(BATCH_NORM_TRAIN_KERNEL, backendName);
      if (tf.getKernel(BATCH_NORM_GRAD_KERNEL, backendName)) tf.unregisterKernel(BATCH_NORM_GRAD_KERNEL, backendName);
    },
  };
}

// Only y reaches the loss: the mean and variance feed the running estimates, which are not
// differentiated, so their gradients are zero and left out. Each of the three gradients is its own
// kernel call because tfjs runs each input's gradient function in its own tidy scope: one call
// returning all three would see two of them disposed, and a frozen layer asks for x's alone.
const BATCH_NORM_TRAIN_GRADIENT: tf.GradConfig = {
  kernelName: BATCH_NORM_TRAIN_KERNEL,
  inputsToSave: ["x", "gamma"],
  outputsToSave: [false, true, true],
  gradFunc: (dys, saved, attrs) => {
    const dy = (Array.isArray(dys) ? dys[0] : dys) as tf.Tensor;
    const [x, gamma, mean, variance] = saved as tf.Tensor[];
    const { epsilon } = attrs as unknown as BatchNormTrainAttrs;
    const grad = (output: BatchNormGradAttrs["output"]) => () =>
      tf.engine().runKernel(BATCH_NORM_GRAD_KERNEL, { dy, x: x!, gamma: gamma!, mean: mean!, variance: variance! }, { epsilon, output }) as tf.Tensor;
    return { x: grad(0), gamma: grad(1), beta: grad(2) };
  },
};
