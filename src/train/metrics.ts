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

/**
 * Mean cross-entropy of the softmax of [n, classes] logits against integer labels, by a stable
 * log-softmax (log p = z - max - log(sum(exp(z - max)))): exact where probabilities round to 0 or 1.
 */
export function crossEntropyFromLogits(logits: ArrayLike<number>, labels: ArrayLike<number>, classes: number): number {
  let sum = 0;
  for (let i = 0; i < labels.length; i++) {
    let max = -Infinity;
    for (let c = 0; c < classes; c++) max = Math.max(max, logits[i * classes + c]);
    let exps = 0;
    for (let c = 0; c < classes; c++) exps += Math.exp(logits[i * classes + c] - max);
    sum -= logits[i * classes + labels[i]] - max - Math.log(exps);
  }
  return labels.length ? sum / labels.length : 0;
}

export function meanStd(xs: readonly number[]): { mean: number; std: number } {
  const mean = xs.reduce((a, b) => a + b, 0) / Math.max(1, xs.length);
  const variance = xs.length > 1 ? xs.reduce((a, b) => a + (b - mean) ** 2, 0) / (xs.length - 1) : 0;
  return { mean, std: Math.sqrt(variance) };
}

/** The winning probability of each row of a [n, classes] array: how sure the model is. */
export function topProbabilities(probs: ArrayLike<number>, classes: number): Float64Array {
  const n = probs.length / classes;
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    let best = probs[i * classes];
    for (let c = 1; c < classes; c++) best = Math.max(best, probs[i * classes + c]);
    out[i] = best;
  }
  return out;
}

export interface ReliabilityBin {
  /** Confidence range [lower, upper) (the last bin includes 1). */
  lower: number;
  upper: number;
  count: number;
  /** Mean top probability of the predictions in the bin (0 when empty). */
  confidence: number;
  /** Fraction of them that are right (0 when empty). */
  accuracy: number;
}

/**
 * Predictions grouped by confidence (top probability) into equal-width bins over [0, 1]: a
 * calibrated model is right 80% of the time when it says 0.8. With two classes the confidence
 * is at least 0.5, so the lower bins stay empty.
 */
export function reliabilityBins(probs: ArrayLike<number>, labels: ArrayLike<number>, classes: number, bins = 10): ReliabilityBin[] {
  const confidence = topProbabilities(probs, classes);
  const predicted = argmaxRows(probs, classes);
  const out: ReliabilityBin[] = Array.from({ length: bins }, (_, b) => ({ lower: b / bins, upper: (b + 1) / bins, count: 0, confidence: 0, accuracy: 0 }));
  for (let i = 0; i < labels.length; i++) {
    const bin = out[Math.min(bins - 1, Math.floor(confidence[i] * bins))];
    bin.count++;
    bin.confidence += confidence[i];
    bin.accuracy += predicted[i] === labels[i] ? 1 : 0;
  }
  for (const bin of out) {
    if (!bin.count) continue;
    bin.confidence /= bin.count;
    bin.accuracy /= bin.count;
  }
  return out;
}

/** Expected calibration error: the gap between confidence and accuracy, averaged over bins by their share of predictions. */
export function expectedCalibrationError(bins: readonly ReliabilityBin[]): number {
  const n = bins.reduce((sum, b) => sum + b.count, 0);
  return n ? bins.reduce((sum, b) => sum + (b.count / n) * Math.abs(b.accuracy - b.confidence), 0) : 0;
}
