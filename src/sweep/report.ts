// The sweep's report.html: minority F1 against each swept setting (one dot per seed, the mean with
// its 95% t-interval, with and without the final BN), the paired difference per grid point, the
// runs that failed or are still to come, and the fixed settings. plotly.js is embedded, as in the
// experiment report, so the page opens offline from the sweep folder.
import { escapeHtml } from "../train/progress.ts";
import { ciText, pairedStats } from "../train/stats.ts";
import { figureHtml, plotlyScript } from "../viz/report.ts";
import { sweepAxisFigure } from "../viz/sweep-charts.ts";
import type { CollectedSweep } from "./collect.ts";
import { formatValue } from "./plan.ts";
import { SETTING_KEYS, type SettingKey } from "./spec.ts";

export function sweepReportHtml(c: CollectedSweep, opts: { title?: string } = {}): string {
  const title = opts.title ?? `finalbn sweep: ${c.plan.name}`;
  const gridAxes = c.plan.axes.filter((a) => a !== "seed" && a !== "finalBN");
  const chartAxes: SettingKey[] = gridAxes.length ? gridAxes : ["model"];
  const charts = chartAxes
    .map((axis, i) => {
      const order = [...new Set(c.rows.map((r) => String(r[axis])))];
      const others = gridAxes.filter((a) => a !== axis);
      const pooled = others.length ? ` (pooled over ${others.join(", ")})` : "";
      return figureHtml(`axis-${i}`, sweepAxisFigure(c.rows, { axis, order, title: `Final minority F1 by ${axis}${pooled}` }));
    })
    .join("\n");

  const f = (x: number) => x.toFixed(3);
  const signed = (x: number) => (x >= 0 ? "+" : "") + f(x);
  const groups = new Map<string, CollectedSweep["rows"]>();
  for (const r of c.rows) {
    const key = gridAxes.map((a) => formatValue(a, r[a])).join(" · ") || "all runs";
    groups.set(key, [...(groups.get(key) ?? []), r]);
  }
  const groupRows = [...groups]
    .map(([key, rs]) => {
      const ids = new Set(rs.map((r) => r.run));
      const p = pairedStats(c.runs.filter((r) => ids.has(r.id)));
      const d = p.differences.finalF1;
      const variant = (withBN: boolean) => {
        const xs = rs.filter((r) => r.finalBN === withBN && r.finalF1 !== null).map((r) => r.finalF1!);
        return xs.length ? `${f(xs.reduce((a, b) => a + b, 0) / xs.length)} (${xs.length})` : "-";
      };
      const diff = d.n ? `${signed(d.mean)}${d.n > 1 ? ` (${ciText(d, 3)})` : " (one seed)"}` : "-";
      return `<tr><td>${escapeHtml(key)}</td><td>${rs.filter((r) => r.status === "done").length}/${rs.length}</td><td>${variant(false)}</td><td>${variant(true)}</td><td>${diff}</td></tr>`;
    })
    .join("\n");

  const notDone = c.statuses.filter((s) => s.state !== "done");
  const notDoneRows = notDone.map((s) => `<tr><td>${escapeHtml(s.run.id)}</td><td>${s.state}</td><td>${escapeHtml(s.detail)}</td></tr>`).join("\n");
  const first = c.rows[0];
  const settingRows = first
    ? SETTING_KEYS.filter((k) => !c.plan.axes.includes(k))
        .map((k) => `<tr><th>${k}</th><td>${escapeHtml(formatValue(k, first[k]))}</td></tr>`)
        .join("\n")
    : "";
  const counts = ["done", "running", "pending", "failed"].map((s) => `${c.statuses.filter((x) => x.state === s).length} ${s}`).join(", ");
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>${escapeHtml(title)}</title>
<style>
body { font: 15px/1.45 system-ui, sans-serif; max-width: 1100px; margin: 2em auto; padding: 0 1em; color: #222; }
table { border-collapse: collapse; margin: 1em 0; } td, th { padding: 4px 10px; border-bottom: 1px solid #ddd; text-align: right; }
th { text-align: left; } td:first-child { text-align: left; } .chart { margin: 1.5em 0; } .note { color: #555; }
</style>
<script>${plotlyScript()}</script>
</head><body>
<h1>${escapeHtml(title)}</h1>
<p class="note">${c.rows.length} runs: ${counts}. Minority-class F1 on the balanced test set after the last epoch, with and
without a BatchNormalization layer on the logits right before the softmax. One dot per seed; the diamond is the mean
with its 95% Student t-interval over the seeds. The table in sweep.csv and sweep.json (${escapeHtml(c.plan.out)}).</p>
${charts}
<h2>Per grid point</h2>
<p class="note">Mean final F1 (finished seeds in brackets) and the paired difference, with minus without the final BN,
seed by seed (same data order and initial weights), with its 95% t-interval.</p>
<table><thead><tr><th>${escapeHtml(gridAxes.join(" · ") || "grid point")}</th><th>done</th><th>without final BN</th><th>with final BN</th><th>with - without</th></tr></thead>
<tbody>
${groupRows}
</tbody></table>
${notDone.length ? `<h2>Not finished</h2>\n<table><thead><tr><th>run</th><th>state</th><th>detail</th></tr></thead>\n<tbody>\n${notDoneRows}\n</tbody></table>` : ""}
<h2>Fixed settings</h2>
<table>${settingRows}</table>
</body></html>
`;
}
