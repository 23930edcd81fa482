// An experiment: the same network trained with and without the final BN, for several seeds, on
// one manifest; then a summary per variant (mean and standard deviation over seeds) and the
// comparison paired by seed (stats.ts). In the output folder: summary.json (both, and every run's
// history), summary.csv (a row per variant) and summary-paired.csv (a row per seed trained both
// ways). The HTML report is the caller's (viz/report.ts writeExperimentReport): training does not
// depend on the charts. The output folder is named after the settings, so running the same command
// again resumes the unfinished runs and reuses the finished ones.
import { createHash } from "node:crypto";
import path from "node:path";
import { resolveTrainConfig, variantName, type TrainConfig } from "./config.ts";
import { train, type EpochRecord, type TrainCallbacks } from "./learner.ts";
import { trainInWorkers, type JobResult } from "./pool.ts";
import { Interrupted, trainingStop } from "./interrupt.ts";
import { meanStd } from "./metrics.ts";
import { writeFileAtomic } from "../data/files.ts";
import type { RunInfo } from "./run-log.ts";
import { pairedCsv, pairedStats, pairedTable, type PairedStats } from "./stats.ts";

export type FinalBNChoice = "with" | "without" | "both";

export interface ExperimentOptions extends Partial<Omit<TrainConfig, "finalBN" | "seed">> {
  manifest: string;
  data: string;
  finalBN: FinalBNChoice;
  seeds: number[];
  /** Output folder; default runs/<manifest>-<arch>-<head>-<hash of the settings>. */
  outDir?: string;
  /** Title for the report. */
  title?: string;
}

export interface VariantRun {
  label: string;
  finalBN: boolean;
  seed: number;
  runDir: string;
  history: EpochRecord[];
}

export interface SummaryRow {
  variant: string;
  finalBN: boolean;
  seeds: number;
  finalF1: number;
  finalF1Std: number;
  bestF1: number;
  bestF1Std: number;
  finalTestLoss: number;
  finalTrainLoss: number;
  finalAccuracy: number;
}

export interface ExperimentResult {
  outDir: string;
  runs: VariantRun[];
  summary: SummaryRow[];
  /** With minus without, seed by seed, with 95% t-intervals. */
  paired: PairedStats;
  /** The settings shared by all runs (seed and finalBN those of the first run). */
  config: TrainConfig;
  info: RunInfo;
  /** For the report: the option's title, or "finalbn: <output folder name>". */
  title: string;
}

export function finalBNVariants(choice: FinalBNChoice): boolean[] {
  return choice === "both" ? [false, true] : [choice === "with"];
}

export function defaultOutDir(config: TrainConfig, runsDir = "runs"): string {
  const { seed: _s, finalBN: _f, runsDir: _r, ...settings } = config;
  const hash = createHash("sha256").update(JSON.stringify(settings)).digest("hex").slice(0, 8);
  return path.join(runsDir, `${path.basename(config.manifest, ".json")}-${config.arch}-${config.head}-${hash}`);
}

export interface PlannedRun {
  config: TrainConfig;
  label: string;
  runDir: string;
}

/** The runs of an experiment, in the order they are trained, and its output folder. */
export function planRuns(opts: ExperimentOptions): { base: TrainConfig; outDir: string; planned: PlannedRun[] } {
  const { seeds, finalBN, outDir: givenOut, title: _t, ...rest } = opts;
  const base = resolveTrainConfig({ ...rest, finalBN: true, seed: seeds[0] });
  const outDir = givenOut ?? defaultOutDir(base, base.runsDir);
  // Seed-major order, so that on two workers both variants of a seed train side by side.
  const planned = seeds.flatMap((seed) =>
    finalBNVariants(finalBN).map((withBN) => {
      const config = resolveTrainConfig({ ...rest, finalBN: withBN, seed });
      const label = variantName(config);
      return { config, label, runDir: path.join(outDir, label) };
    }),
  );
  return { base, outDir, planned };
}

export async function runExperiment(
  opts: ExperimentOptions,
  io: {
    info: RunInfo;
    callbacksFor?: (label: string) => TrainCallbacks;
    log?: (line: string) => void;
    /** Train this many runs at once in child processes (pool.ts); default 1, in this process. */
    workers?: number;
    /** Stops training after the current batch (default: Ctrl-C / Kernel → Interrupt, see interrupt.ts). */
    signal?: AbortSignal;
  },
): Promise<ExperimentResult> {
  const log = io.log ?? console.log;
  if (!opts.seeds.length) throw new Error("at least one seed is needed");
  const { title } = opts;
  const { base, outDir, planned } = planRuns(opts);
  const results: JobResult[] = [];
  const stop = trainingStop(io.signal);
  const signal = stop.signal;
  try {
    if ((io.workers ?? 1) > 1 && planned.length > 1) {
      log(`training ${planned.length} runs on ${Math.min(io.workers!, planned.length)} worker processes -> ${outDir}`);
      results.push(
        ...(await trainInWorkers(
          planned.map((p) => ({ config: p.config, runDir: p.runDir, info: io.info })),
          { workers: io.workers!, callbacksFor: (i) => io.callbacksFor?.(planned[i].label) ?? {}, signal },
        )),
      );
    } else {
      for (const p of planned) {
        if (signal.aborted) throw new Interrupted();
        log(`${p.label} -> ${p.runDir}`);
        const result = await train(p.config, { runDir: p.runDir, info: io.info, callbacks: io.callbacksFor?.(p.label), signal });
        result.model.dispose();
        results.push(result);
      }
    }
  } finally {
    stop.release();
  }
  const runs: VariantRun[] = planned.map((p, i) => {
    if (results[i].resumedAfter) log(`  ${p.label} resumed after epoch ${results[i].resumedAfter}`);
    return { label: p.label, finalBN: p.config.finalBN, seed: p.config.seed, runDir: p.runDir, history: results[i].history };
  });
  const summary = summarize(runs);
  const paired = pairedStats(runs);
  // JSON writes an interval that one seed cannot give as null.
  await writeFileAtomic(path.join(outDir, "summary.json"), JSON.stringify({ summary, paired, runs }, null, 2) + "\n");
  await writeFileAtomic(path.join(outDir, "summary.csv"), summaryCsv(summary));
  await writeFileAtomic(path.join(outDir, "summary-paired.csv"), pairedCsv(paired));
  return { outDir, runs, summary, paired, config: base, info: io.info, title: title ?? `finalbn: ${path.basename(outDir)}` };
}

/** One row per variant (with / without the final BN): mean and standard deviation over seeds. */
export function summarize(runs: readonly VariantRun[]): SummaryRow[] {
  const rows: SummaryRow[] = [];
  for (const withBN of [false, true]) {
    const group = runs.filter((r) => r.finalBN === withBN && r.history.length);
    if (!group.length) continue;
    const last = group.map((r) => r.history[r.history.length - 1]);
    const finalF1 = meanStd(last.map((h) => h.f1));
    const bestF1 = meanStd(group.map((r) => Math.max(...r.history.map((h) => h.f1))));
    rows.push({
      variant: group[0].label.replace(/-seed\d+$/, ""),
      finalBN: withBN,
      seeds: group.length,
      finalF1: finalF1.mean,
      finalF1Std: finalF1.std,
      bestF1: bestF1.mean,
      bestF1Std: bestF1.std,
      finalTestLoss: meanStd(last.map((h) => h.testLoss)).mean,
      finalTrainLoss: meanStd(last.map((h) => h.trainLoss)).mean,
      finalAccuracy: meanStd(last.map((h) => h.accuracy)).mean,
    });
  }
  return rows;
}

const SUMMARY_COLUMNS = ["variant", "seeds", "finalF1", "finalF1Std", "bestF1", "bestF1Std", "finalTestLoss", "finalTrainLoss", "finalAccuracy"] as const;

export function summaryCsv(rows: readonly SummaryRow[]): string {
  return [SUMMARY_COLUMNS.join(","), ...rows.map((r) => SUMMARY_COLUMNS.map((c) => String(r[c])).join(","))].join("\n") + "\n";
}

/**
 * The summary as an aligned plain-text table for a terminal; given the paired stats, followed by
 * the final F1 per seed of both variants, their difference and its mean with the 95% interval.
 */
export function summaryTable(rows: readonly SummaryRow[], paired?: PairedStats): string {
  const head = ["variant", "seeds", "final F1", "best F1", "test loss", "train loss", "accuracy"];
  const pm = (m: number, s: number, n: number) => (n > 1 ? `${m.toFixed(3)} ± ${s.toFixed(3)}` : m.toFixed(3));
  const body = rows.map((r) => [
    r.variant,
    String(r.seeds),
    pm(r.finalF1, r.finalF1Std, r.seeds),
    pm(r.bestF1, r.bestF1Std, r.seeds),
    r.finalTestLoss.toFixed(4),
    r.finalTrainLoss.toFixed(4),
    r.finalAccuracy.toFixed(3),
  ]);
  const widths = head.map((h, i) => Math.max(h.length, ...body.map((row) => row[i].length)));
  const line = (cells: string[]) => cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join("  ");
  const table = [line(head), widths.map((w) => "-".repeat(w)).join("  "), ...body.map(line)].join("\n");
  return paired ? `${table}\n\n${pairedTable(paired)}` : table;
}
