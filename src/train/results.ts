// Finished experiments read back from disk (their summary.json) and laid out as one markdown
// table: a row per experiment, every seed's final minority F1 for both variants, and the paired
// difference with its 95% t-interval. The README's results table is this, for results/.
import { readdir, readFile } from "node:fs/promises";
import path from "node:path";
import { ciText, type PairedStats } from "./stats.ts";

export interface ExperimentSummary {
  /** The experiment's folder, relative to the searched one. */
  name: string;
  paired: PairedStats;
}

/** Every experiment's summary.json under `dir` (not the per-run ones beside metrics.csv), in path order. */
export async function readResults(dir: string): Promise<ExperimentSummary[]> {
  const entries = await readdir(dir, { recursive: true });
  const files = entries.filter((e) => path.basename(e) === "summary.json").sort();
  const read = await Promise.all(
    files.map(async (f) => ({ name: path.dirname(f), json: JSON.parse(await readFile(path.join(dir, f), "utf8")) as { paired?: PairedStats } })),
  );
  return read.filter((r) => r.json.paired).map((r) => ({ name: r.name, paired: r.json.paired! }));
}

/** The markdown table: per-seed F1 without -> with, the mean difference and interval, the smallest difference. */
export function resultsTable(results: readonly ExperimentSummary[]): string {
  const f2 = (x: number) => x.toFixed(2);
  const rows = results.map(({ name, paired }) => {
    const d = paired.differences.finalF1;
    const loss = paired.differences.finalTrainLoss;
    const perSeed = paired.pairs.map((p) => `${f2(p.without.finalF1)} → ${f2(p.with.finalF1)}`).join(", ");
    const smallest = Math.min(...paired.pairs.map((p) => p.difference.finalF1));
    return [
      name,
      String(d.n),
      perSeed,
      `${d.mean >= 0 ? "+" : ""}${f2(d.mean)} (${ciText(d)})`,
      `${smallest >= 0 ? "+" : ""}${f2(smallest)}`,
      `${f2(loss.meanWithout)} → ${f2(loss.meanWith)}`,
    ];
  });
  const head = ["experiment", "seeds", "final minority F1 per seed, without → with the final BN", "with − without: mean (t-interval)", "smallest", "train loss without → with"];
  return [head, head.map(() => "---"), ...rows].map((r) => `| ${r.join(" | ")} |`).join("\n");
}
