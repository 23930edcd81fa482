// Charts of a collected sweep (src/sweep/collect.ts rows): a metric against one swept setting, with
// and without the final BN side by side, one dot per seed and each group's mean with its 95%
// t-interval. Plain plotly figures, like charts.ts: the same spec in the HTML report and a notebook.
import { meanInterval95 } from "../train/stats.ts";
import { VARIANT_COLORS, type Figure } from "./charts.ts";

/** What a chart reads from a row: the variant and the seed, and by name the swept setting and the metric (null: not finished). */
export interface ChartRow {
  finalBN: boolean;
  seed: number;
}
const field = (r: ChartRow, name: string) => (r as unknown as Record<string, unknown>)[name];

export interface AxisFigureOptions {
  /** The setting on the x axis (a row field), e.g. "ratio" or "batchSize". */
  axis: string;
  /** Default finalF1. */
  metric?: string;
  title?: string;
  xTitle?: string;
  yTitle?: string;
  /** The x values in this order (as strings); default the order they first appear in. */
  order?: readonly string[];
}

const nameOf = (withBN: boolean) => (withBN ? "with final BN" : "without final BN");
const METRIC_TITLES: Record<string, string> = {
  finalF1: "final minority F1 (test)",
  bestF1: "best minority F1 (test)",
  finalTestLoss: "final test loss",
  finalTrainLoss: "final train loss",
  finalAccuracy: "final accuracy (test)",
};

/** Dots per seed and the mean with its 95% t-interval, per value of `axis` and per variant. */
export function sweepAxisFigure(rows: readonly ChartRow[], o: AxisFigureOptions): Figure {
  const metric = o.metric ?? "finalF1";
  const value = (r: ChartRow) => field(r, metric) as number;
  const x = (r: ChartRow) => String(field(r, o.axis));
  const finished = rows.filter((r) => Number.isFinite(field(r, metric)));
  const xs = o.order ? [...o.order] : [...new Set(finished.map(x))];
  const data: Record<string, unknown>[] = [];
  for (const withBN of [false, true]) {
    const color = withBN ? VARIANT_COLORS.with : VARIANT_COLORS.without;
    const offset = withBN ? 0.15 : -0.15;
    const groups = xs.map((v) => finished.filter((r) => r.finalBN === withBN && x(r) === v));
    if (groups.every((g) => !g.length)) continue;
    const dots = groups.flatMap((g, i) => g.map((r, k) => ({ x: i + offset + jitter(k, g.length), y: value(r), text: `${o.axis} ${xs[i]}, seed ${r.seed}` })));
    data.push({
      type: "scatter",
      mode: "markers",
      name: `${nameOf(withBN)}, per seed`,
      legendgroup: nameOf(withBN),
      x: dots.map((d) => d.x),
      y: dots.map((d) => d.y),
      text: dots.map((d) => d.text),
      hovertemplate: `%{text}<br>%{y:.3f}<extra>${nameOf(withBN)}</extra>`,
      marker: { color, size: 7, opacity: 0.55 },
    });
    const means = groups.map((g, i) => ({ i, ci: meanInterval95(g.map(value)) })).filter((m) => m.ci.n > 0);
    data.push({
      type: "scatter",
      mode: "markers",
      name: `${nameOf(withBN)}, mean and 95% t-interval`,
      legendgroup: nameOf(withBN),
      x: means.map((m) => m.i + offset),
      y: means.map((m) => m.ci.mean),
      text: means.map((m) => (m.ci.low !== null ? `${m.ci.n} seeds, 95% CI ${m.ci.low.toFixed(3)} to ${m.ci.high!.toFixed(3)}` : `${m.ci.n} seed: no interval`)),
      hovertemplate: `${o.axis} %{customdata}<br>mean %{y:.3f}<br>%{text}<extra>${nameOf(withBN)}</extra>`,
      customdata: means.map((m) => xs[m.i]),
      error_y: {
        type: "data",
        symmetric: false,
        array: means.map((m) => (m.ci.high !== null ? m.ci.high - m.ci.mean : 0)),
        arrayminus: means.map((m) => (m.ci.low !== null ? m.ci.mean - m.ci.low : 0)),
        visible: true,
        color,
        thickness: 2,
        width: 6,
      },
      marker: { color, size: 12, symbol: "diamond", line: { color: "#222", width: 1 } },
    });
  }
  const isF1 = metric === "finalF1" || metric === "bestF1";
  return {
    data,
    layout: {
      title: { text: o.title ?? `${METRIC_TITLES[metric] ?? metric} by ${o.axis}` },
      xaxis: { title: { text: o.xTitle ?? o.axis }, tickmode: "array", tickvals: xs.map((_, i) => i), ticktext: xs, range: [-0.5, xs.length - 0.5], zeroline: false },
      yaxis: isF1 && !o.yTitle ? { title: { text: METRIC_TITLES[metric] }, range: [-0.03, 1.03] } : { title: { text: o.yTitle ?? METRIC_TITLES[metric] ?? metric } },
      legend: { orientation: "h", y: -0.25 },
      margin: { t: 50, r: 20, b: 60, l: 60 },
      height: 400,
    },
  };
}

/** Spread the dots of one group a little, deterministically, so equal values (F1 0 on every seed) stay countable. */
function jitter(k: number, n: number): number {
  return n > 1 ? ((k / (n - 1)) * 2 - 1) * 0.07 : 0;
}
