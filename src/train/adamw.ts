// AdamW (Loshchilov & Hutter): Adam with weight decay applied to the weights directly instead of
// through the gradient. Written out here because tfjs has no AdamW, and because the one-cycle
// schedule changes lr and beta1 every step, which tfjs's built-in Adam does not allow.
import * as tf from "@tensorflow/tfjs";
import { ADAMW_KERNEL, type AdamWAttrs } from "../backends/adamw-kernel.ts";

export interface AdamWOptions {
  weightDecay: number;
  beta2?: number;
  eps?: number;
}

export class AdamW {
  step = 0;
  readonly m: tf.Variable[];
  readonly v: tf.Variable[];
  private readonly beta2: number;
  private readonly eps: number;

  constructor(readonly params: tf.Variable[], private readonly opts: AdamWOptions) {
    // fastai's defaults: beta2 0.99, eps 1e-5.
    this.beta2 = opts.beta2 ?? 0.99;
    this.eps = opts.eps ?? 1e-5;
    this.m = params.map((p) => tf.variable(tf.zerosLike(p), false));
    this.v = params.map((p) => tf.variable(tf.zerosLike(p), false));
  }

  /** One update. grads[i] belongs to params[i]; undefined means that parameter got no gradient. */
  apply(grads: (tf.Tensor | undefined)[], { lr, beta1 }: { lr: number; beta1: number }): void {
    this.step++;
    const { beta2, eps } = this;
    const c1 = 1 - beta1 ** this.step;
    const c2 = 1 - beta2 ** this.step;
    // One fused kernel per parameter where the backend has it (src/backends/*-adamw.ts), else tfjs ops.
    const fused = tf.getKernel(ADAMW_KERNEL, tf.getBackend()) !== undefined;
    tf.tidy(() => {
      this.params.forEach((p, i) => {
        const g = grads[i];
        if (!g || !p.trainable) return;
        // Decay only kernels: fastai leaves batch-norm and bias parameters undecayed.
        const decay = p.rank > 1 ? this.opts.weightDecay : 0;
        if (fused && p.dtype === "float32" && g.dtype === "float32") {
          const attrs: AdamWAttrs = { lr, beta1, beta2, eps, c1, c2, decay };
          const [p1, m1, v1] = tf.engine().runKernel(ADAMW_KERNEL, { param: p, grad: g, m: this.m[i], v: this.v[i] }, { ...attrs }) as tf.Tensor[];
          p.assign(p1!);
          this.m[i].assign(m1!);
          this.v[i].assign(v1!);
          return;
        }
        const m = this.m[i].mul(beta1).add(g.mul(1 - beta1));
        const v = this.v[i].mul(beta2).add(g.square().mul(1 - beta2));
        this.m[i].assign(m);
        this.v[i].assign(v);
        const decayed = decay > 0 ? p.mul(1 - lr * decay) : p;
        p.assign(decayed.sub(m.div(c1).div(v.div(c2).sqrt().add(eps)).mul(lr)));
      });
    });
  }

  /** The optimizer's tensors, for checkpoints (the step count travels separately). */
  stateTensors(): tf.Variable[] {
    return [...this.m, ...this.v];
  }

  dispose(): void {
    for (const t of this.stateTensors()) t.dispose();
  }
}
