// The fused AdamW update as a tfjs kernel of our own name: its name and attributes, shared by the
// optimizer (src/train/adamw.ts) and the backends that implement it (cpu/adamw.ts, webgpu/adamw.ts).
// Inputs: param, grad, m, v (same shape, float32). Outputs: the new param, m and v.
// The kernel uses up its inputs but the param: m and v are the optimizer's private state, assigned
// the outputs right away, and the gradient is disposed after the update (src/train/learner.ts
// trainStep). So an implementation may write the new m and v into their memory and the new param
// into the gradient's (cpu/adamw.ts does, where no other tensor shares it). The param's own memory
// is left alone: model code may still hold its values.
import * as tf from "@tensorflow/tfjs";

export const ADAMW_KERNEL = "FinalbnAdamW";

/** The attributes of one update (see AdamW.apply for where they come from). */
export interface AdamWAttrs {
  lr: number;
  beta1: number;
  beta2: number;
  eps: number;
  /** Bias corrections 1 - beta1^t and 1 - beta2^t. */
  c1: number;
  c2: number;
  /** Decoupled weight decay rate (0 for biases and batch-norm parameters). */
  decay: number;
}


/** Register and unregister one backend's implementation; both are safe to call twice. */
export function adamWKernel(backendName: string, kernelFunc: tf.KernelFunc): { register(): void; unregister(): void } {
  return {
    register: () => {
      if (!tf.getKernel(ADAMW_KERNEL, backendName)) tf.registerKernel({ kernelName: ADAMW_KERNEL, backendName, kernelFunc });
    },
    unregister: () => {
      if (tf.getKernel(ADAMW_KERNEL, backendName)) tf.unregisterKernel(ADAMW_KERNEL, backendName);
    },
  };
}
