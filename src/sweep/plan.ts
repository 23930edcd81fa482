// From a spec to the list of runs: every combination of the axes, each with all its settings and
// a folder named after those settings alone (a hash of all of them, and the ones a reader looks
// for first), so planning twice gives the same folders and a finished run is found, not retrained.
import { createHash } from "node:crypto";
import path from "node:path";
import { resolveTrainConfig } from "../train/config.ts";
import { SETTING_DEFAULTS, SETTING_KEYS, SPLIT_KEYS, SpecError, validateSpec, type RunSettings, type SettingKey, type SlurmSettings, type SweepSpec } from "./spec.ts";

export interface PlannedRun {
  /** Position in the plan (0-based). */
  index: number;
  /** The run's folder name. */
  id: string;
  /** Absolute path of its folder. */
  dir: string;
  settings: RunSettings;
  /** The swept settings' values: what tells this run apart from the others. */
  point: Partial<RunSettings>;
  /** Key of the split it trains on (<out>/splits/<key>.json); null when a manifest is given. */
  split: string | null;
}

/** The settings an imbalanced split is made from (size only for the synthetic leaves, drawn at that size). */
export type SplitSettings = Pick<RunSettings, "data" | (typeof SPLIT_KEYS)[number]> & { size: number | null };

export interface PlannedSplit {
  key: string;
  settings: SplitSettings;
}

export interface SweepPlan {
  name: string;
  /** Absolute sweep folder: runs/, splits/, slurm/ and the collected results. */
  out: string;
  /** Relative paths in the spec (data, manifest, pretrained, caches) are relative to this folder. */
  baseDir: string;
  backend: "auto" | "cuda" | "webgpu" | "cpu";
  pixelCache: string;
  leafCache: string;
  /** The swept settings, in the order the runs vary (the last fastest). */
  axes: SettingKey[];
  runs: PlannedRun[];
  splits: PlannedSplit[];
  slurm: SlurmSettings;
}

export interface PlanOptions {
  /** Where relative paths in the spec are resolved; default the current folder, as for every command's paths. */
  baseDir?: string;
}

/** Seed and final BN vary fastest: the two variants of a seed sit side by side (and train side by side on two jobs). */
const LAST = ["seed", "finalBN"] as const;

/** The runs of a spec (a parsed spec file, or the same as an object in a notebook; checked here). */
export function planSweep(input: SweepSpec | Record<string, unknown>, opts: PlanOptions = {}): SweepPlan {
  const spec = validateSpec(input);
  const baseDir = path.resolve(opts.baseDir ?? ".");
  const at = (p: string) => path.resolve(baseDir, p);
  const axes = [...(Object.keys(spec.axes) as SettingKey[]).filter((k) => !(LAST as readonly string[]).includes(k)), ...LAST.filter((k) => k in spec.axes)];
  const out = at(spec.out ?? path.join("runs", "sweeps", spec.name));
  const manifestMode = "manifest" in spec.fixed || "manifest" in spec.axes;
  const base = { ...SETTING_DEFAULTS, manifest: null, ...(manifestMode ? Object.fromEntries(SPLIT_KEYS.map((k) => [k, null])) : {}), ...spec.fixed } as RunSettings;

  let points: Partial<RunSettings>[] = [{}];
  for (const axis of axes) points = points.flatMap((p) => spec.axes[axis]!.map((v) => ({ ...p, [axis]: v })));

  const splits = new Map<string, PlannedSplit>();
  const runs = points.map((point, index): PlannedRun => {
    const settings = { ...base, ...point } as RunSettings;
    checkTrainable(settings, point);
    let split: string | null = null;
    if (settings.manifest === null) {
      const s = splitSettings(settings);
      split = splitKey(s);
      splits.set(split, { key: split, settings: s });
    }
    const id = runId(settings);
    return { index, id, dir: path.join(out, "runs", id), settings, point, split };
  });
  const seen = new Map<string, number>();
  for (const r of runs) {
    if (seen.has(r.id)) throw new SpecError(`runs ${seen.get(r.id)} and ${r.index} have the same settings (${r.id})`);
    seen.set(r.id, r.index);
  }
  return {
    name: spec.name,
    out,
    baseDir,
    backend: spec.backend ?? "auto",
    pixelCache: spec.pixelCache ? at(spec.pixelCache) : path.resolve(process.env.FINALBN_CACHE || path.join(baseDir, ".cache", "pixels")),
    leafCache: at(spec.leafCache ?? path.join(".cache", "demo")),
    axes,
    runs,
    splits: [...splits.values()],
    slurm: spec.slurm ?? {},
  };
}

/** Settings as a string that does not depend on the order keys were written in. */
function canonical(o: object): string {
  return JSON.stringify(o, Object.keys(o).sort());
}
const hash8 = (o: object) => createHash("sha256").update(canonical(o)).digest("hex").slice(0, 8);
const slug = (s: string) => s.toLowerCase().replace(/[^a-z0-9]+/g, "-").replace(/^-|-$/g, "");

/**
 * The run's folder name: what a reader looks for first, then a hash of every setting, e.g.
 * synthetic-99to1-vgg19_bn-fastai-b16-finalbn-seed1-3fa2c1d0.
 */
export function runId(s: RunSettings): string {
  const all = Object.fromEntries(SETTING_KEYS.map((k) => [k, s[k]]));
  const split = s.manifest !== null ? slug(path.basename(s.manifest, ".json")) : `${slug(s.crop || (s.data ? "pepper" : "synthetic"))}-${s.ratio!.replace(":", "to")}`;
  return `${split}-${s.model}-${s.head}-b${s.batchSize}-${s.finalBN ? "finalbn" : "nofinalbn"}-seed${s.seed}-${hash8(all)}`;
}

function splitSettings(s: RunSettings): SplitSettings {
  const picked = Object.fromEntries(["data", ...SPLIT_KEYS].map((k) => [k, s[k as SettingKey]])) as SplitSettings;
  return { ...picked, size: s.data === "" ? s.size : null };
}

function splitKey(s: SplitSettings): string {
  return `${slug(s.crop || (s.data ? "pepper" : "synthetic"))}-${s.ratio!.replace(":", "to")}-seed${s.splitSeed}-${hash8(s)}`;
}

/** Combinations the training config refuses (freezeEpochs without pretrained weights, ...), named by the run's point. */
function checkTrainable(s: RunSettings, point: Partial<RunSettings>): void {
  try {
    resolveTrainConfig(trainSettings(s, { manifest: "m.json", data: "d" }));
  } catch (e) {
    const where = Object.keys(point).length ? ` at ${Object.entries(point).map(([k, v]) => `${k}=${v}`).join(", ")}` : "";
    throw new SpecError(`${(e as Error).message}${where}`);
  }
}

/** The training config's fields of a run's settings (paths filled in by the caller). */
export function trainSettings(s: RunSettings, paths: { manifest: string; data: string; pretrained?: string; cacheDir?: string }) {
  return {
    manifest: paths.manifest,
    data: paths.data,
    arch: s.model,
    head: s.head,
    finalBN: s.finalBN,
    width: s.width,
    size: s.size,
    epochs: s.epochs,
    batchSize: s.batchSize,
    lr: s.lr,
    weightDecay: s.weightDecay,
    flip: s.flip,
    seed: s.seed,
    pretrained: paths.pretrained,
    freezeEpochs: s.freezeEpochs,
    cacheDir: paths.cacheDir,
  };
}

/** One line per run: index, folder and the swept values (npm run sweep -- plan). */
export function planTable(plan: SweepPlan): string {
  const head = ["#", ...plan.axes, "folder"];
  const body = plan.runs.map((r) => [String(r.index), ...plan.axes.map((a) => formatValue(a, r.settings[a])), r.id]);
  const widths = head.map((h, i) => Math.max(h.length, ...body.map((row) => row[i].length)));
  const line = (cells: string[]) => cells.map((c, i) => c.padEnd(widths[i])).join("  ").trimEnd();
  return [line(head), widths.map((w) => "-".repeat(w)).join("  "), ...body.map(line)].join("\n");
}

export function formatValue(key: SettingKey, v: unknown): string {
  if (key === "finalBN") return v ? "with" : "without";
  if (key === "data" && v === "") return "(synthetic leaves)";
  if (key === "crop" && v === "") return "(default)";
  return v === null ? "-" : String(v);
}
