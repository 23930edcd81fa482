// fastai's one-cycle policy: the learning rate warms up from lr/div to lr along a cosine over
// the first pctStart of the steps, then anneals to lr/divFinal; Adam's beta1 moves the opposite way
// (0.95 -> 0.85 -> 0.95), so the optimizer is most cautious when it steps hardest.

export interface OneCycleOptions {
  maxLr: number;
  totalSteps: number;
  pctStart?: number;
  div?: number;
  divFinal?: number;
  moms?: [number, number, number];
}

const cosine = (start: number, end: number, pct: number) => end + ((start - end) / 2) * (1 + Math.cos(Math.PI * pct));

/** Learning rate and beta1 at a given step (0-based). */
export function oneCycle(step: number, o: OneCycleOptions): { lr: number; beta1: number } {
  const { maxLr, totalSteps, pctStart = 0.25, div = 25, divFinal = 1e5, moms = [0.95, 0.85, 0.95] } = o;
  const warm = Math.max(1, Math.round(totalSteps * pctStart));
  if (step < warm) {
    const pct = step / warm;
    return { lr: cosine(maxLr / div, maxLr, pct), beta1: cosine(moms[0], moms[1], pct) };
  }
  const pct = Math.min(1, (step - warm) / Math.max(1, totalSteps - warm));
  return { lr: cosine(maxLr, maxLr / divFinal, pct), beta1: cosine(moms[1], moms[2], pct) };
}
