// Plotly figures as plain data: the same spec is drawn in the HTML report, in JupyterLab and
// VS Code (application/vnd.plotly.v1+json) and in exported notebooks.
import type { VariantRun } from "../train/experiment.ts";
import type { PairedStats } from "../train/stats.ts";

export interface Figure {
  data: Record<string, unknown>[];
  layout: Record<string, unknown>;
}

/** Colours that stay apart for colour-blind readers: orange without the final BN, blue with it. */
export const VARIANT_COLORS = { without: "#d95f02", with: "#1b6ca8" } as const;
const colorOf = (withBN: boolean) => (withBN ? VARIANT_COLORS.with : VARIANT_COLORS.without);
const nameOf = (withBN: boolean) => (withBN ? "with final BN" : "without final BN");

/**
 * The paper's central picture: every epoch of every run as a point of minority F1 against loss,
 * train loss on the left, test loss on the right. With the final BN the points sit higher (better
 * F1) while the loss does not go as low.
 */
export function f1VersusLossFigure(runs: readonly VariantRun[]): Figure {
  const data: Record<string, unknown>[] = [];
  const shown = new Set<boolean>();
  for (const run of runs) {
    const epochs = run.history.map((h) => h.epoch);
    const f1 = run.history.map((h) => h.f1);
    const common = {
      type: "scatter",
      mode: "lines+markers",
      marker: { color: colorOf(run.finalBN), size: 6 },
      line: { color: colorOf(run.finalBN), width: 1 },
      legendgroup: nameOf(run.finalBN),
      text: epochs.map((e) => `${run.label}<br>epoch ${e}`),
      hovertemplate: "%{text}<br>loss %{x:.4f}<br>F1 %{y:.3f}<extra></extra>",
      y: f1,
    };
    data.push({ ...common, name: nameOf(run.finalBN), showlegend: !shown.has(run.finalBN), x: run.history.map((h) => h.trainLoss), xaxis: "x", yaxis: "y" });
    data.push({ ...common, name: nameOf(run.finalBN), showlegend: false, x: run.history.map((h) => h.testLoss), xaxis: "x2", yaxis: "y" });
    shown.add(run.finalBN);
  }
  return {
    data,
    layout: {
      title: { text: "Minority F1 against loss, per epoch" },
      grid: { rows: 1, columns: 2, pattern: "independent" },
      xaxis: { title: { text: "train loss" }, domain: [0, 0.47] },
      xaxis2: { title: { text: "test loss" }, domain: [0.53, 1] },
      yaxis: { title: { text: "minority F1 (test)" }, range: [-0.02, 1.02] },
      legend: { orientation: "h", y: -0.2 },
      margin: { t: 50, r: 20, b: 60, l: 60 },
      height: 420,
    },
  };
}

type Metric = "f1" | "trainLoss" | "testLoss" | "accuracy" | "precision" | "recall";
const METRIC_TITLES: Record<Metric, string> = {
  f1: "minority F1 (test)",
  trainLoss: "train loss",
  testLoss: "test loss",
  accuracy: "accuracy (test)",
  precision: "minority precision (test)",
  recall: "minority recall (test)",
};

/**
 * One metric per epoch, a line per run. Given `epochs`, the axes are those of the whole training
 * from the first frame (epochs 1..n; F1 from 0 to 1), so a live chart does not start as empty axes
 * from -1 to 6 and then jump; runs without points yet still get their legend entry.
 */
export function curveFigure(runs: readonly VariantRun[], metric: Metric, opts: { epochs?: number } = {}): Figure {
  const shown = new Set<boolean>();
  const data = runs.map((run) => {
    const trace = {
      type: "scatter",
      mode: "lines+markers",
      name: nameOf(run.finalBN),
      legendgroup: nameOf(run.finalBN),
      showlegend: !shown.has(run.finalBN),
      x: run.history.map((h) => h.epoch),
      y: run.history.map((h) => h[metric]),
      text: run.history.map(() => run.label),
      hovertemplate: `%{text}<br>epoch %{x}<br>${METRIC_TITLES[metric]} %{y:.4f}<extra></extra>`,
      marker: { color: colorOf(run.finalBN), size: 5 },
      line: { color: colorOf(run.finalBN), width: 1.5 },
    };
    shown.add(run.finalBN);
    return trace;
  });
  const points = runs.some((run) => run.history.length > 0);
  const bounded = metric !== "trainLoss" && metric !== "testLoss";
  return {
    data,
    layout: {
      title: { text: `${METRIC_TITLES[metric]} per epoch` },
      xaxis: { title: { text: "epoch" }, dtick: 1, ...(opts.epochs ? { range: [0.5, opts.epochs + 0.5] } : {}) },
      yaxis: { title: { text: METRIC_TITLES[metric] }, ...(bounded ? { range: [-0.02, 1.02] } : points ? {} : { range: [0, 1] }) },
      legend: { orientation: "h", y: -0.25 },
      showlegend: true,
      margin: { t: 50, r: 20, b: 60, l: 60 },
      height: 340,
    },
  };
}

/** One variant's top softmax probabilities on the test set (see topProbabilities in train/metrics.ts). */
export interface ConfidenceGroup {
  name: string;
  finalBN: boolean;
  confidence: ArrayLike<number>;
}

/** How sure each variant is: a histogram of the winning probability per test image, overlaid. */
export function confidenceHistogramFigure(groups: readonly ConfidenceGroup[]): Figure {
  return {
    data: groups.map((g) => ({
      type: "histogram",
      name: g.name,
      x: Array.from(g.confidence),
      xbins: { start: 0.5, end: 1.0001, size: 0.025 },
      opacity: 0.6,
      marker: { color: colorOf(g.finalBN) },
      hovertemplate: "top probability %{x}<br>%{y} images<extra>" + g.name + "</extra>",
    })),
    layout: {
      title: { text: "Top softmax probability on the test set" },
      barmode: "overlay",
      xaxis: { title: { text: "top softmax probability (confidence)" }, range: [0.5, 1.0001] },
      yaxis: { title: { text: "test images" } },
      legend: { orientation: "h", y: -0.25 },
      margin: { t: 50, r: 20, b: 60, l: 60 },
      height: 360,
    },
  };
}

/** One variant's reliability bins (see reliabilityBins and expectedCalibrationError in train/metrics.ts). */
export interface ReliabilityGroup {
  name: string;
  finalBN: boolean;
  bins: readonly { lower: number; upper: number; count: number; confidence: number; accuracy: number }[];
  ece: number;
}

/**
 * A reliability diagram: accuracy against confidence per bin, one line per variant, against the
 * diagonal of perfect calibration. Below the diagonal the model is overconfident.
 */
export function reliabilityFigure(groups: readonly ReliabilityGroup[]): Figure {
  const data: Record<string, unknown>[] = [
    { type: "scatter", mode: "lines", name: "perfect calibration", x: [0, 1], y: [0, 1], line: { color: "#999", dash: "dot", width: 1 }, hoverinfo: "skip" },
  ];
  for (const g of groups) {
    const bins = g.bins.filter((b) => b.count > 0);
    data.push({
      type: "scatter",
      mode: "lines+markers",
      name: `${g.name} (ECE ${g.ece.toFixed(3)})`,
      x: bins.map((b) => b.confidence),
      y: bins.map((b) => b.accuracy),
      text: bins.map((b) => `${b.count} images with confidence ${b.lower.toFixed(1)}–${b.upper.toFixed(1)}`),
      hovertemplate: "%{text}<br>mean confidence %{x:.3f}<br>accuracy %{y:.3f}<extra></extra>",
      marker: { color: colorOf(g.finalBN), size: bins.map((b) => 5 + Math.sqrt(b.count)) },
      line: { color: colorOf(g.finalBN), width: 1.5 },
    });
  }
  return {
    data,
    layout: {
      title: { text: "Reliability diagram (test set)" },
      xaxis: { title: { text: "mean confidence in bin" }, range: [0, 1.02] },
      yaxis: { title: { text: "accuracy in bin" }, range: [0, 1.02] },
      legend: { orientation: "h", y: -0.25 },
      margin: { t: 50, r: 20, b: 60, l: 60 },
      height: 400,
    },
  };
}

/** One bar of a sweep: a setting (x) and a variant, with mean and standard deviation over seeds. */
export interface SweepPoint {
  x: string;
  finalBN: boolean;
  mean: number;
  std: number;
}

/** A sweep (imbalance ratio, batch size, ...) as grouped bars per variant, with ± one sd over seeds. */
export function sweepFigure(points: readonly SweepPoint[], o: { title: string; xTitle: string; yTitle?: string }): Figure {
  const data = [false, true]
    .map((withBN) => points.filter((p) => p.finalBN === withBN))
    .filter((ps) => ps.length > 0)
    .map((ps) => ({
      type: "bar",
      name: nameOf(ps[0].finalBN),
      x: ps.map((p) => p.x),
      y: ps.map((p) => p.mean),
      error_y: { type: "data", array: ps.map((p) => p.std), visible: true },
      marker: { color: colorOf(ps[0].finalBN) },
      hovertemplate: `${o.xTitle} %{x}<br>%{y:.3f}<extra>${nameOf(ps[0].finalBN)}</extra>`,
    }));
  return {
    data,
    layout: {
      title: { text: o.title },
      barmode: "group",
      xaxis: { title: { text: o.xTitle }, type: "category" },
      // F1 (the default) lives in [0, 1]; other quantities get plotly's own range.
      yaxis: o.yTitle ? { title: { text: o.yTitle } } : { title: { text: "minority F1 (test)" }, range: [0, 1.05] },
      legend: { orientation: "h", y: -0.25 },
      margin: { t: 50, r: 20, b: 60, l: 60 },
      height: 360,
    },
  };
}

/**
 * Final minority F1 seed by seed. Left: one dot per run, the two runs of a seed joined by a thin
 * grey line (same seed, same data and initial weights), and each variant's mean as a bar. Right:
 * the per-seed differences (with minus without) with their mean and its 95% t-interval, against
 * a line at 0: the interval, not the two clouds of dots, is what says whether the final BN helps.
 */
export function pairedSeedFigure(p: PairedStats): Figure {
  const x = [nameOf(false), nameOf(true)];
  const joins = p.pairs.map((pair) => ({
    type: "scatter",
    mode: "lines",
    x,
    y: [pair.without.finalF1, pair.with.finalF1],
    line: { color: "#bbb", width: 1 },
    showlegend: false,
    hoverinfo: "skip",
  }));
  const dots = [false, true].map((withBN) => ({
    type: "scatter",
    mode: "markers",
    name: nameOf(withBN),
    x: p.pairs.map(() => nameOf(withBN)),
    y: p.pairs.map((pair) => (withBN ? pair.with : pair.without).finalF1),
    text: p.pairs.map((pair) => `seed ${pair.seed}`),
    hovertemplate: `%{text}<br>final F1 %{y:.3f}<extra>${nameOf(withBN)}</extra>`,
    marker: { color: colorOf(withBN), size: 9 },
  }));
  const d = p.differences.finalF1;
  const means = [false, true].map((withBN) => ({
    type: "scatter",
    mode: "markers",
    name: `mean, ${nameOf(withBN)}`,
    showlegend: false,
    x: [nameOf(withBN)],
    y: [withBN ? d.meanWith : d.meanWithout],
    hovertemplate: `mean final F1 %{y:.3f}<extra>${nameOf(withBN)}</extra>`,
    marker: { color: colorOf(withBN), symbol: "line-ew-open", size: 40, line: { width: 3, color: colorOf(withBN) } },
  }));
  const ci = d.low !== null && d.high !== null;
  const differences = [
    {
      type: "scatter",
      mode: "markers",
      name: "difference per seed",
      x: p.pairs.map(() => "per seed"),
      y: p.pairs.map((pair) => pair.difference.finalF1),
      text: p.pairs.map((pair) => `seed ${pair.seed}`),
      hovertemplate: "%{text}<br>difference %{y:+.3f}<extra></extra>",
      marker: { color: "#555", size: 8 },
      xaxis: "x2",
      yaxis: "y2",
    },
    {
      type: "scatter",
      mode: "markers",
      name: ci ? "mean difference, 95% t-interval" : "mean difference (one seed: no interval)",
      x: ["mean"],
      y: [d.mean],
      error_y: ci ? { type: "data", symmetric: false, array: [d.high! - d.mean], arrayminus: [d.mean - d.low!], visible: true, color: "#222", thickness: 2, width: 8 } : { visible: false },
      hovertemplate: ci
        ? `mean %{y:+.3f}<br>95% CI ${d.low!.toFixed(3)} to ${d.high!.toFixed(3)} (t, ${d.n} seeds)<extra></extra>`
        : "difference %{y:+.3f}<extra></extra>",
      marker: { color: "#222", size: 11, symbol: "diamond" },
      xaxis: "x2",
      yaxis: "y2",
    },
  ];
  return {
    data: [...joins, ...dots, ...means, ...differences],
    layout: {
      title: { text: `Final minority F1 per seed (${p.pairs.length} paired)` },
      xaxis: { domain: [0, 0.55], type: "category" },
      yaxis: { title: { text: "final minority F1 (test)" }, range: [-0.02, 1.02] },
      xaxis2: { domain: [0.68, 1], type: "category", anchor: "y2" },
      // rangemode tozero: the line at 0 stays in view however far the differences are from it.
      yaxis2: { title: { text: "final F1, with - without" }, anchor: "x2", rangemode: "tozero", zeroline: true, zerolinecolor: "#888", zerolinewidth: 1 },
      legend: { orientation: "h", y: -0.2 },
      margin: { t: 50, r: 20, b: 60, l: 60 },
      height: 400,
    },
  };
}
