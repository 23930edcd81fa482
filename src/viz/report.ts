// A self-contained HTML report of an experiment: settings, the summary table and the charts,
// with plotly.js embedded so it opens offline, years later, from a folder of runs.
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import path from "node:path";
import type { ExperimentResult } from "../train/experiment.ts";
import { ciText, verdict } from "../train/stats.ts";
import { writeFileAtomic } from "../data/files.ts";
import { escapeHtml } from "../train/progress.ts";
import { curveFigure, f1VersusLossFigure, pairedSeedFigure, type Figure } from "./charts.ts";

let plotlySource: string | undefined;
/** plotly.min.js, read once; "</script" is escaped so the page cannot be cut short by it. */
export function plotlyScript(): string {
  plotlySource ??= readFileSync(createRequire(import.meta.url).resolve("plotly.js-dist-min/plotly.min.js"), "utf8").replace(/<\/script/gi, "<\\/script");
  return plotlySource;
}

/** A div and the script that draws one figure into it (plotly must already be on the page). */
export function figureHtml(id: string, fig: Figure): string {
  const json = JSON.stringify(fig).replace(/</g, "\\u003c");
  return `<div id="${id}" class="chart"></div>\n<script>Plotly.newPlot(${JSON.stringify(id)}, ...(f => [f.data, f.layout, {responsive: true, displaylogo: false}])(${json}));</script>`;
}

export type ReportInput = Pick<ExperimentResult, "title" | "runs" | "summary" | "paired" | "info" | "config">;

export function reportHtml(r: ReportInput): string {
  const { seed: _seed, finalBN: _finalBN, ...settings } = r.config;
  const f = (x: number) => x.toFixed(3);
  const pm = (m: number, sd: number, n: number) => (n > 1 ? `${f(m)} ± ${f(sd)}` : f(m));
  const rows = r.summary
    .map(
      (s) =>
        `<tr><td>${escapeHtml(s.variant)}</td><td>${s.seeds}</td><td>${pm(s.finalF1, s.finalF1Std, s.seeds)}</td><td>${pm(s.bestF1, s.bestF1Std, s.seeds)}</td>` +
        `<td>${s.finalTestLoss.toFixed(4)}</td><td>${s.finalTrainLoss.toFixed(4)}</td><td>${f(s.finalAccuracy)}</td></tr>`,
    )
    .join("\n");
  const signed = (x: number) => (x >= 0 ? "+" : "") + f(x);
  const pairRows = r.paired.pairs
    .map((p) => `<tr><td>${p.seed}</td><td>${f(p.without.finalF1)}</td><td>${f(p.with.finalF1)}</td><td>${signed(p.difference.finalF1)}</td></tr>`)
    .join("\n");
  const d = r.paired.differences.finalF1;
  const meanRow = d.n > 1 ? `<tr><th>mean</th><td>${f(d.meanWithout)}</td><td>${f(d.meanWith)}</td><td>${signed(d.mean)} (${ciText(d, 3)}, t-interval)</td></tr>` : "";
  const settingRows = Object.entries({ ...settings, seeds: r.runs.map((x) => x.seed).filter((s, i, a) => a.indexOf(s) === i).join(", "), backend: r.info.backend, device: r.info.device })
    .map(([k, v]) => `<tr><th>${escapeHtml(k)}</th><td>${escapeHtml(String(v))}</td></tr>`)
    .join("\n");
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>${escapeHtml(r.title)}</title>
<style>
body { font: 15px/1.45 system-ui, sans-serif; max-width: 1100px; margin: 2em auto; padding: 0 1em; color: #222; }
table { border-collapse: collapse; margin: 1em 0; } td, th { padding: 4px 10px; border-bottom: 1px solid #ddd; text-align: right; }
th { text-align: left; } td:first-child { text-align: left; } .chart { margin: 1.5em 0; }
.note { color: #555; } .verdict { font-weight: 600; }
</style>
<script>${plotlyScript()}</script>
</head><body>
<h1>${escapeHtml(r.title)}</h1>
<p class="note">Minority-class F1 on the balanced test set, for the same network trained with and without a
BatchNormalization layer on the logits right before the softmax (Kocaman, Shir and Bäck, 2020).
Mean ± standard deviation over seeds.</p>
<table><thead><tr><th>variant</th><th>seeds</th><th>final F1</th><th>best F1</th><th>test loss</th><th>train loss</th><th>accuracy</th></tr></thead>
<tbody>
${rows}
</tbody></table>
<h2>Paired by seed</h2>
<p class="note">The two runs of a seed share the data order and the initial weights, all but the final BN
itself: the difference (with minus without) per seed is the comparison, and its mean comes with a 95%
Student t-interval over the seeds.</p>
<p class="verdict">${escapeHtml(verdict(r.paired))}</p>
${
  r.paired.pairs.length
    ? `<table><thead><tr><th>seed</th><th>final F1 without</th><th>final F1 with</th><th>with - without</th></tr></thead>
<tbody>
${pairRows}
${meanRow}
</tbody></table>
${figureHtml("paired-seeds", pairedSeedFigure(r.paired))}`
    : ""
}
${figureHtml("f1-vs-loss", f1VersusLossFigure(r.runs))}
${figureHtml("f1-curve", curveFigure(r.runs, "f1"))}
${figureHtml("test-loss-curve", curveFigure(r.runs, "testLoss"))}
${figureHtml("train-loss-curve", curveFigure(r.runs, "trainLoss"))}
<h2>Settings</h2>
<table>${settingRows}</table>
<p class="note">Versions: ${escapeHtml(Object.entries(r.info.versions).map(([k, v]) => `${k} ${v}`).join(", "))}</p>
</body></html>
`;
}

export async function writeReport(file: string, input: ReportInput): Promise<void> {
  await writeFileAtomic(file, reportHtml(input));
}

/** The experiment's report.html in its output folder; returns the file's path. */
export async function writeExperimentReport(experiment: ReportInput & Pick<ExperimentResult, "outDir">): Promise<string> {
  const file = path.join(experiment.outDir, "report.html");
  await writeReport(file, experiment);
  return file;
}
