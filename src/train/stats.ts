// Paired statistics for the with/without-final-BN comparison. Runs of the same seed share the data
// order and the initial weights (all but the final BN itself), so the honest unit of comparison is
// the per-seed difference (with minus without), not two independent means: seed-to-seed spread that
// both variants share cancels in the difference. From the differences we give the mean, the sample
// sd and a 95% Student t-interval, and a sentence that claims no more than that interval supports.
// Pure: numbers in, numbers and strings out.
import type { VariantRun } from "./experiment.ts";
import { meanStd } from "./metrics.ts";

/** What is compared per run: taken from its last epoch, except bestF1 (the best epoch). */
export const PAIRED_METRICS = ["finalF1", "bestF1", "finalTrainLoss", "finalTestLoss"] as const;
export type PairedMetric = (typeof PAIRED_METRICS)[number];
export type RunValues = Record<PairedMetric, number>;

export function runValues(run: VariantRun): RunValues {
  const last = run.history[run.history.length - 1];
  return {
    finalF1: last.f1,
    bestF1: Math.max(...run.history.map((h) => h.f1)),
    finalTrainLoss: last.trainLoss,
    finalTestLoss: last.testLoss,
  };
}

/** One seed trained both ways; difference = with - without, per metric. */
export interface SeedPair {
  seed: number;
  without: RunValues;
  with: RunValues;
  difference: RunValues;
}

/** A run whose seed has no finished run of the other variant: left out of the comparison, and said so. */
export interface UnpairedRun {
  seed: number;
  finalBN: boolean;
  label: string;
}

/**
 * Runs grouped by seed. A seed pairs when both variants have at least one epoch of history; if a
 * seed was listed twice the first run of each variant is used (the second is the same run).
 */
export function pairBySeed(runs: readonly VariantRun[]): { pairs: SeedPair[]; unpaired: UnpairedRun[] } {
  const finished = runs.filter((r) => r.history.length > 0);
  const seeds = [...new Set(finished.map((r) => r.seed))].sort((a, b) => a - b);
  const pairs: SeedPair[] = [];
  const unpaired: UnpairedRun[] = [];
  for (const seed of seeds) {
    const without = finished.find((r) => r.seed === seed && !r.finalBN);
    const withBN = finished.find((r) => r.seed === seed && r.finalBN);
    if (!without || !withBN) {
      const only = (without ?? withBN)!;
      unpaired.push({ seed, finalBN: only.finalBN, label: only.label });
      continue;
    }
    const w = runValues(withBN);
    const wo = runValues(without);
    const difference = Object.fromEntries(PAIRED_METRICS.map((m) => [m, w[m] - wo[m]])) as RunValues;
    pairs.push({ seed, without: wo, with: w, difference });
  }
  return { pairs, unpaired };
}

// Two-sided 95% quantiles of Student's t, t_{0.975, df}, for df = 1..30 (to 4 decimals, as in any
// statistics table; checked against scipy.stats.t.ppf(0.975, df)).
const T975 = [
  12.7062, 4.3027, 3.1824, 2.7764, 2.5706, 2.4469, 2.3646, 2.306, 2.2622, 2.2281, 2.201, 2.1788, 2.1604, 2.1448, 2.1314,
  2.1199, 2.1098, 2.1009, 2.093, 2.086, 2.0796, 2.0739, 2.0687, 2.0639, 2.0595, 2.0555, 2.0518, 2.0484, 2.0452, 2.0423,
];
/** The standard normal's 0.975 quantile, what t_{0.975, df} tends to as df grows. */
const Z975 = 1.959963984540054;

/**
 * t_{0.975, df}: the multiplier of a 95% t-interval. A table up to df 30; beyond it the
 * Cornish-Fisher expansion of t in powers of 1/df (Abramowitz & Stegun 26.7.5), which is within
 * 1e-6 of the exact value there (2.0395 at df 31, 2.0211 at 40, 1.9799 at 120).
 */
export function tQuantile975(df: number): number {
  if (!Number.isInteger(df) || df < 1) throw new Error(`degrees of freedom must be a positive integer, got ${df}`);
  if (df <= T975.length) return T975[df - 1];
  const z = Z975;
  const g1 = (z ** 3 + z) / 4;
  const g2 = (5 * z ** 5 + 16 * z ** 3 + 3 * z) / 96;
  const g3 = (3 * z ** 7 + 19 * z ** 5 + 17 * z ** 3 - 15 * z) / 384;
  const g4 = (79 * z ** 9 + 776 * z ** 7 + 1482 * z ** 5 - 1920 * z ** 3 - 945 * z) / 92160;
  return z + g1 / df + g2 / df ** 2 + g3 / df ** 3 + g4 / df ** 4;
}

/** A mean with its 95% interval; sd, df, t and the bounds are null below two values (no spread to go on). */
export interface MeanInterval {
  n: number;
  mean: number;
  sd: number | null;
  df: number | null;
  t: number | null;
  low: number | null;
  high: number | null;
}

/**
 * The 95% Student t-interval for a mean: mean ± t_{0.975, n-1} · sd / √n. It assumes the values
 * are independent draws from a roughly normal distribution (here: one difference per seed); with
 * few seeds it is wide, which is the point.
 */
export function meanInterval95(xs: readonly number[]): MeanInterval {
  const n = xs.length;
  const { mean, std } = meanStd(xs);
  if (n < 2) return { n, mean: n ? mean : NaN, sd: null, df: null, t: null, low: null, high: null };
  const t = tQuantile975(n - 1);
  const half = (t * std) / Math.sqrt(n);
  return { n, mean, sd: std, df: n - 1, t, low: mean - half, high: mean + half };
}

/** The paired difference of one metric: its t-interval, both variants' means over the paired seeds, and a count of seeds. */
export interface PairedDifference extends MeanInterval {
  meanWith: number;
  meanWithout: number;
  /** Seeds where the value is higher with the final BN than without (ties count in neither). */
  higherWith: number;
  lowerWith: number;
}

export interface PairedStats {
  pairs: SeedPair[];
  unpaired: UnpairedRun[];
  differences: Record<PairedMetric, PairedDifference>;
}

export function pairedStats(runs: readonly VariantRun[]): PairedStats {
  const { pairs, unpaired } = pairBySeed(runs);
  const differences = Object.fromEntries(
    PAIRED_METRICS.map((m) => {
      const d = pairs.map((p) => p.difference[m]);
      const diff: PairedDifference = {
        ...meanInterval95(d),
        meanWith: meanStd(pairs.map((p) => p.with[m])).mean,
        meanWithout: meanStd(pairs.map((p) => p.without[m])).mean,
        higherWith: d.filter((x) => x > 0).length,
        lowerWith: d.filter((x) => x < 0).length,
      };
      return [m, diff];
    }),
  ) as Record<PairedMetric, PairedDifference>;
  return { pairs, unpaired, differences };
}

/** "+0.10", "-0.10", and "0.00" for what rounds to zero (no "-0.00" from float noise). */
function signed(x: number, digits: number): string {
  const r = Number(x.toFixed(digits));
  return (r > 0 ? "+" : "") + (r === 0 ? 0 : r).toFixed(digits);
}

/** "95% CI 0.30–0.52" (an en dash only when no bound is negative, where it could read as a minus sign). */
export function ciText(d: MeanInterval, digits = 2): string {
  if (d.low === null || d.high === null) return "no interval from one seed";
  const [lo, hi] = [d.low.toFixed(digits), d.high.toFixed(digits)];
  return `95% CI ${d.low >= 0 ? `${lo}–${hi}` : `${lo} to ${hi}`}`;
}

/**
 * What the final BN does to one quantity, as far as the seeds can tell: "the final BN raises
 * minority F1 by 0.41 (95% CI 0.30–0.52, t-interval, 5 seeds; higher on 5 of 5 seeds)". The
 * direction is only claimed when the whole interval lies on one side of 0.
 */
export function describeDifference(d: PairedDifference, quantity: string, digits = 2): string {
  if (d.n === 0) return `no seed was trained both with and without the final BN, so nothing can be said about ${quantity}`;
  if (d.n === 1) return `one seed cannot tell what the final BN does to ${quantity}: the single difference (with minus without) is ${signed(d.mean, digits)}`;
  const detail = `${ciText(d, digits)}, t-interval, ${d.n} seeds; higher on ${d.higherWith} of ${d.n} seeds`;
  if (d.higherWith === 0 && d.lowerWith === 0) return `the final BN leaves ${quantity} unchanged on all ${d.n} seeds`;
  if (d.low! > 0) return `the final BN raises ${quantity} by ${d.mean.toFixed(digits)} (${detail})`;
  if (d.high! < 0) return `the final BN lowers ${quantity} by ${(-d.mean).toFixed(digits)} (${detail})`;
  return `the ${d.n} seeds cannot tell whether the final BN raises or lowers ${quantity}: mean difference ${signed(d.mean, digits)} (${detail})`;
}

const seedList = (seeds: readonly number[]) => (seeds.length === 1 ? `seed ${seeds[0]}` : `seeds ${seeds.join(", ")}`);

/**
 * The comparison in two sentences, computed from the paired differences: minority F1 after the
 * last epoch, then the train loss (the paper: it stays higher with the final BN), each with its
 * interval; unpaired seeds are named.
 */
export function verdict(p: PairedStats): string {
  const leftOut = p.unpaired.length
    ? ` Left out: ${p.unpaired.map((u) => `seed ${u.seed} (only ${u.finalBN ? "with" : "without"} the final BN)`).join(", ")}.`
    : "";
  if (!p.pairs.length) return `No seed was trained both with and without the final BN: nothing to compare.${leftOut}`;
  const { finalF1: f1, finalTrainLoss: loss } = p.differences;
  const over = p.pairs.length === 1 ? `on ${seedList(p.pairs.map((x) => x.seed))}` : `means over ${p.pairs.length} seeds`;
  const paper =
    loss.n < 2 || (loss.low! <= 0 && loss.high! >= 0)
      ? " (the paper: the loss stays higher with the final BN)"
      : loss.low! > 0
        ? ", as in the paper, where the loss stays higher with the final BN"
        : ", unlike the paper, where the loss stays higher with the final BN";
  return (
    `Final minority F1 ${f1.meanWith.toFixed(2)} with the final BN, ${f1.meanWithout.toFixed(2)} without (${over}): ` +
    `${describeDifference(f1, "minority F1")}. ` +
    `Train loss ${loss.meanWith.toFixed(3)} with, ${loss.meanWithout.toFixed(3)} without: ${describeDifference(loss, "the train loss", 3)}${paper}.` +
    leftOut
  );
}

/** One line per paired seed: each metric without, with, and the difference (summary-paired.csv). */
export function pairedCsv(p: PairedStats): string {
  const columns = ["seed", ...PAIRED_METRICS.flatMap((m) => [`${m}Without`, `${m}With`, `${m}Difference`])];
  const rows = p.pairs.map((x) => [x.seed, ...PAIRED_METRICS.flatMap((m) => [x.without[m], x.with[m], x.difference[m]])].join(","));
  return [columns.join(","), ...rows].join("\n") + "\n";
}

/** The per-seed final F1 of both variants and the difference, and the mean difference with its interval, as plain text. */
export function pairedTable(p: PairedStats): string {
  if (!p.pairs.length) return "no seed trained both with and without the final BN: no paired comparison";
  const head = ["seed", "F1 without", "F1 with", "with - without"];
  const body = p.pairs.map((x) => [String(x.seed), x.without.finalF1.toFixed(3), x.with.finalF1.toFixed(3), signed(x.difference.finalF1, 3)]);
  const widths = head.map((h, i) => Math.max(h.length, ...body.map((r) => r[i].length)));
  const line = (cells: string[]) => cells.map((c, i) => c.padStart(widths[i])).join("  ");
  const d = p.differences.finalF1;
  const mean =
    d.n > 1
      ? `mean difference ${signed(d.mean, 3)} (${ciText(d, 3)}, t-interval, ${d.n} seeds, sd ${d.sd!.toFixed(3)}); higher with the final BN on ${d.higherWith} of ${d.n}`
      : `difference ${signed(d.mean, 3)} on one seed: no interval`;
  const leftOut = p.unpaired.map((u) => `left out: seed ${u.seed}, only ${u.finalBN ? "with" : "without"} the final BN`);
  return ["final minority F1 per seed (paired: same seed, same data order and initial weights)", line(head), widths.map((w) => "-".repeat(w)).join("  "), ...body.map(line), mean, ...leftOut].join("\n");
}
