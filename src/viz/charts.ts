// Plotly figures as plain data: the same spec is drawn in the HTML report, in JupyterLab and
// VS Code (application/vnd.plotly.v1+json) and in exported notebooks.
import type { VariantRun } from "../train/experiment.ts";

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

/** One metric per epoch, a line per run. */
export function curveFigure(runs: readonly VariantRun[], metric: Metric): Figure {
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
  return {
    data,
    layout: {
      title: { text: `${METRIC_TITLES[metric]} per epoch` },
      xaxis: { title: { text: "epoch" }, dtick: 1 },
      yaxis: { title: { text: METRIC_TITLES[metric] } },
      legend: { orientation: "h", y: -0.25 },
      margin: { t: 50, r: 20, b: 60, l: 60 },
      height: 340,
    },
  };
}
