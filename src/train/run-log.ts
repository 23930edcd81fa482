// What a run leaves behind in runs/<id>/: the full config with the backend, device and package
// versions; metrics per epoch as JSON lines and CSV; and, at the end, the test-set predictions
// (for calibration plots) and a summary. Every file is rewritten whole and atomically, so a run
// killed at any moment leaves readable files that agree with its last checkpoint.
import { readFile } from "node:fs/promises";
import path from "node:path";
import { writeFileAtomic } from "../data/files.ts";
import type { TrainConfig } from "./config.ts";
import type { EpochRecord, Evaluation } from "./learner.ts";

export interface RunInfo {
  backend: string;
  device: string;
  versions: Record<string, string>;
}

const CSV_COLUMNS = ["epoch", "trainLoss", "testLoss", "accuracy", "precision", "recall", "f1", "tn", "fp", "fn", "tp", "lr", "seconds", "imagesPerSec"] as const;

export function metricsCsv(history: readonly EpochRecord[]): string {
  const rows = history.map((r) => {
    const [[tn, fp], [fn, tp]] = r.confusion;
    const cells: Record<(typeof CSV_COLUMNS)[number], number> = { ...r, tn, fp, fn, tp };
    return CSV_COLUMNS.map((c) => String(cells[c])).join(",");
  });
  return [CSV_COLUMNS.join(","), ...rows].join("\n") + "\n";
}

export class RunLog {
  constructor(readonly dir: string) {}

  async start(config: TrainConfig, info: RunInfo): Promise<void> {
    await writeFileAtomic(path.join(this.dir, "config.json"), JSON.stringify({ config, ...info, startedAt: new Date().toISOString() }, null, 2) + "\n");
  }

  async epoch(history: readonly EpochRecord[]): Promise<void> {
    await writeFileAtomic(path.join(this.dir, "metrics.jsonl"), history.map((r) => JSON.stringify(r)).join("\n") + "\n");
    await writeFileAtomic(path.join(this.dir, "metrics.csv"), metricsCsv(history));
  }

  async finish(history: readonly EpochRecord[], final: Evaluation): Promise<void> {
    const predictions = {
      classes: ["majority", "minority"],
      labels: Array.from(final.labels),
      probs: Array.from(final.probs, (p) => Number(p.toFixed(6))),
      paths: final.paths,
    };
    await writeFileAtomic(path.join(this.dir, "predictions.json"), JSON.stringify(predictions) + "\n");
    const last = history[history.length - 1];
    const best = history.reduce((a, b) => (b.f1 > a.f1 ? b : a), last);
    await writeFileAtomic(
      path.join(this.dir, "summary.json"),
      JSON.stringify({ epochs: history.length, final: last, bestF1: best.f1, bestEpoch: best.epoch }, null, 2) + "\n",
    );
  }
}

/** A finished run's test-set predictions (predictions.json): probs is [n, classes] row-major. */
export interface Predictions {
  classes: string[];
  labels: number[];
  probs: number[];
  paths: string[];
}

export async function readPredictions(runDir: string): Promise<Predictions> {
  const file = path.join(runDir, "predictions.json");
  const text = await readFile(file, "utf8").catch(() => {
    throw new Error(`${file} not found: the run has not finished (train it to the end first)`);
  });
  return JSON.parse(text) as Predictions;
}
