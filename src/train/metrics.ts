// Metrics for the minority class: the paper's question is whether the scarce class is found,
// which accuracy on a balanced test set hides and loss does not measure.

/** Confusion matrix as [[tn, fp], [fn, tp]] with the minority class as positive (label 1). */
export type Confusion = [[number, number], [number, number]];

export interface MinorityMetrics {
  accuracy: number;
  precision: number;
  recall: number;
  f1: number;
  confusion: Confusion;
}

export function confusionMatrix(labels: ArrayLike<number>, predictions: ArrayLike<number>): Confusion {
  const m: Confusion = [[0, 0], [0, 0]];
  for (let i = 0; i < labels.length; i++) m[labels[i] ? 1 : 0][predictions[i] ? 1 : 0]++;
  return m;
}

/** Precision, recall and F1 of the minority class; 0 where undefined (no predicted or no true positives). */
export function minorityMetrics(labels: ArrayLike<number>, predictions: ArrayLike<number>): MinorityMetrics {
  const confusion = confusionMatrix(labels, predictions);
  const [[tn, fp], [fn, tp]] = confusion;
  const precision = tp + fp ? tp / (tp + fp) : 0;
  const recall = tp + fn ? tp / (tp + fn) : 0;
  const f1 = precision + recall ? (2 * precision * recall) / (precision + recall) : 0;
  const total = tn + fp + fn + tp;
  return { accuracy: total ? (tp + tn) / total : 0, precision, recall, f1, confusion };
}

/** Arg-max of each row of a [n, classes] probability array. */
export function argmaxRows(probs: ArrayLike<number>, classes: number): Int32Array {
  const n = probs.length / classes;
  const out = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    let best = 0;
    for (let c = 1; c < classes; c++) if (probs[i * classes + c] > probs[i * classes + best]) best = c;
    out[i] = best;
  }
  return out;
}

/** Mean cross-entropy of probabilities against integer labels (clipped like Keras, eps 1e-7). */
export function crossEntropy(probs: ArrayLike<number>, labels: ArrayLike<number>, classes: number): number {
  let sum = 0;
  for (let i = 0; i < labels.length; i++) sum -= Math.log(Math.min(1 - 1e-7, Math.max(1e-7, probs[i * classes + labels[i]])));
  return labels.length ? sum / labels.length : 0;
}

export function meanStd(xs: readonly number[]): { mean: number; std: number } {
  const mean = xs.reduce((a, b) => a + b, 0) / Math.max(1, xs.length);
  const variance = xs.length > 1 ? xs.reduce((a, b) => a + (b - mean) ** 2, 0) / (xs.length - 1) : 0;
  return { mean, std: Math.sqrt(variance) };
}
