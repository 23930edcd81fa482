// A sweep as one table: a row per planned run with its state, its swept settings, its final and best
// minority F1 and losses (empty until it finishes) and every other setting. Written as sweep.csv,
// sweep.json (an array of records: `new dfd.DataFrame(rows)` or dfd.readJSON reads it) and a
// self-contained report.html with F1 against each swept setting.
import path from "node:path";
import { writeFileAtomic } from "../data/files.ts";
import type { VariantRun } from "../train/experiment.ts";
import { formatValue, type SweepPlan } from "./plan.ts";
import { readHistory } from "./run-files.ts";
import { SETTING_KEYS, type RunSettings } from "./spec.ts";
import { runStatuses, type RunState, type RunStatus } from "./status.ts";
import type { QueueState } from "./slurm.ts";
import { sweepReportHtml } from "./report.ts";

export const METRIC_COLUMNS = ["epochsDone", "finalF1", "bestF1", "bestEpoch", "finalPrecision", "finalRecall", "finalAccuracy", "finalTestLoss", "finalTrainLoss"] as const;
export type MetricColumn = (typeof METRIC_COLUMNS)[number];

export type SweepRow = { run: string; status: RunState } & RunSettings & Record<Exclude<MetricColumn, "epochsDone">, number | null> & { epochsDone: number };

export interface CollectedSweep {
  plan: SweepPlan;
  /** Every planned run, in plan order. */
  rows: SweepRow[];
  /** The finished runs with their per-epoch history (for the experiment charts and paired statistics). */
  runs: (VariantRun & { id: string })[];
  statuses: RunStatus[];
  /** Column order: run, status, the swept settings, the metrics, the other settings. */
  columns: string[];
}

export async function collectSweep(plan: SweepPlan, opts: { queue?: Map<string, QueueState> } = {}): Promise<CollectedSweep> {
  const statuses = await runStatuses(plan, opts.queue);
  const rows: SweepRow[] = [];
  const runs: CollectedSweep["runs"] = [];
  for (const status of statuses) {
    const { run } = status;
    const history = status.state === "done" ? readHistory(run.dir) : [];
    const last = history.at(-1);
    const best = history.reduce<(typeof history)[number] | undefined>((a, b) => (a === undefined || b.f1 > a.f1 ? b : a), undefined);
    rows.push({
      run: run.id,
      status: status.state,
      ...run.settings,
      epochsDone: status.epochsDone,
      finalF1: last?.f1 ?? null,
      bestF1: best?.f1 ?? null,
      bestEpoch: best?.epoch ?? null,
      finalPrecision: last?.precision ?? null,
      finalRecall: last?.recall ?? null,
      finalAccuracy: last?.accuracy ?? null,
      finalTestLoss: last?.testLoss ?? null,
      finalTrainLoss: last?.trainLoss ?? null,
    });
    if (last) runs.push({ id: run.id, label: run.id, finalBN: run.settings.finalBN, seed: run.settings.seed, runDir: run.dir, history });
  }
  const columns = ["run", "status", ...plan.axes, ...METRIC_COLUMNS, ...SETTING_KEYS.filter((k) => !plan.axes.includes(k))];
  return { plan, rows: rows.map((r) => Object.fromEntries(columns.map((c) => [c, r[c as keyof SweepRow]])) as unknown as SweepRow), runs, statuses, columns };
}

/** RFC 4180 CSV: empty cells for null, quotes where a value needs them. */
export function sweepCsv(rows: readonly SweepRow[], columns: readonly string[]): string {
  const cell = (v: unknown) => {
    const s = v === null || v === undefined ? "" : String(v);
    return /[",\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
  };
  return [columns.join(","), ...rows.map((r) => columns.map((c) => cell((r as Record<string, unknown>)[c])).join(","))].join("\n") + "\n";
}

/** sweep.csv, sweep.json and report.html in the sweep folder (or `dir`); returns their paths. */
export async function writeSweepResults(c: CollectedSweep, opts: { dir?: string; title?: string } = {}): Promise<{ csv: string; json: string; html: string }> {
  const dir = opts.dir ?? c.plan.out;
  const files = { csv: path.join(dir, "sweep.csv"), json: path.join(dir, "sweep.json"), html: path.join(dir, "report.html") };
  await writeFileAtomic(files.csv, sweepCsv(c.rows, c.columns));
  await writeFileAtomic(files.json, JSON.stringify(c.rows, null, 1) + "\n");
  await writeFileAtomic(files.html, sweepReportHtml(c, { title: opts.title }));
  return files;
}

/** A short text table of the finished runs' mean final F1 per swept value and variant (for the terminal). */
export function collectedText(c: CollectedSweep): string {
  const counts = c.statuses.reduce<Record<string, number>>((a, s) => ((a[s.state] = (a[s.state] ?? 0) + 1), a), {});
  const lines = [`${c.rows.length} runs (${Object.entries(counts).map(([k, v]) => `${v} ${k}`).join(", ")})`];
  for (const axis of c.plan.axes.filter((a) => a !== "seed" && a !== "finalBN")) {
    lines.push(`final minority F1 by ${axis} (mean over finished runs; without -> with the final BN):`);
    const values = [...new Set(c.rows.map((r) => formatValue(axis, r[axis])))];
    for (const v of values) {
      const mean = (withBN: boolean) => {
        const xs = c.rows.filter((r) => formatValue(axis, r[axis]) === v && r.finalBN === withBN && r.finalF1 !== null).map((r) => r.finalF1!);
        return xs.length ? `${(xs.reduce((a, b) => a + b, 0) / xs.length).toFixed(3)} (${xs.length})` : "-";
      };
      lines.push(`  ${axis} ${v}: ${mean(false)} -> ${mean(true)}`);
    }
  }
  return lines.join("\n");
}
