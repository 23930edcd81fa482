// A sweep spec: the paper's grid as a few lines of JSON. Every setting of a run (which split, which
// network, how it trains, its seed and whether it has the final BN) is either fixed or an axis;
// the runs are every combination of the axes. This module only reads and checks the spec: every
// mistake is one error that names the offending key (axes.batchSize[2], fixed.ratio, slurm.mem).
import { readFile } from "node:fs/promises";

/** A run's settings, every one filled in (null: does not apply, e.g. ratio when a manifest is given). */
export interface RunSettings {
  /** A PlantVillage folder (either layout), or "" for the embedded synthetic leaves. */
  data: string;
  /** A committed split manifest; when set, data/crop/ratio/... come from it. */
  manifest: string | null;
  crop: string | null;
  /** Majority:minority in training, e.g. "99:1". */
  ratio: string | null;
  splitSeed: number | null;
  trainMajority: number | null;
  testPerClass: number | null;
  /** Synthetic leaves only: lesion size and which leaves are drawn. */
  lesionScale: number | null;
  leafSeed: number | null;
  model: "vgg19" | "vgg19_bn" | "resnet34";
  head: "fastai" | "classic";
  size: number;
  width: number;
  epochs: number;
  batchSize: number;
  lr: number;
  weightDecay: number;
  flip: boolean;
  freezeEpochs: number;
  pretrained: string | null;
  seed: number;
  finalBN: boolean;
}

export type SettingKey = keyof RunSettings;

export interface SlurmSettings {
  partition?: string;
  /** Generic resources per task, e.g. "gpu:1". */
  gres?: string;
  cpusPerTask?: number;
  /** Memory per task, e.g. "16G". */
  mem?: string;
  /** Wall-clock limit per task, e.g. "02:00:00". */
  time?: string;
  /** The job array's % limit: at most this many tasks at once. */
  maxParallel?: number;
  /** Let Slurm requeue a task (preemption, node failure); it resumes from its checkpoint. Default true. */
  requeue?: boolean;
  account?: string;
  qos?: string;
  /** The node binary on the compute nodes; default the one that submits. */
  node?: string;
  /** More #SBATCH lines, verbatim (e.g. "--constraint=a100"). */
  extra?: string[];
}

export interface SweepSpec {
  name: string;
  /** The sweep folder (runs, splits, results); default runs/sweeps/<name>. */
  out?: string;
  /** auto | cuda | webgpu | cpu, for every run. */
  backend?: "auto" | "cuda" | "webgpu" | "cpu";
  /** Folder of the resized-pixel cache every run reads (default .cache/pixels or $FINALBN_CACHE). */
  pixelCache?: string;
  /** Folder the synthetic leaves are generated into (default .cache/demo). */
  leafCache?: string;
  fixed: Partial<Record<SettingKey, unknown>>;
  axes: Partial<Record<SettingKey, unknown[]>>;
  slurm?: SlurmSettings;
}

/** A spec mistake, named by its key; the CLI prints it as a usage error. */
export class SpecError extends Error {}

// The defaults are the training config's (src/train/config.ts) and the classroom's split sizes.
export const SETTING_DEFAULTS: Omit<RunSettings, "manifest"> = {
  data: "",
  crop: "",
  ratio: "99:1",
  splitSeed: 1,
  trainMajority: 990,
  testPerClass: 100,
  lesionScale: 4,
  leafSeed: 1,
  model: "vgg19_bn",
  head: "fastai",
  size: 224,
  width: 1,
  epochs: 10,
  batchSize: 32,
  lr: 1e-3,
  weightDecay: 1e-2,
  flip: true,
  freezeEpochs: 0,
  pretrained: null,
  seed: 1,
  finalBN: true,
};

/** Settings that describe the split, which a manifest already fixes. */
export const SPLIT_KEYS = ["crop", "ratio", "splitSeed", "trainMajority", "testPerClass", "lesionScale", "leafSeed"] as const satisfies readonly SettingKey[];

type Check = (v: unknown) => { value: unknown } | { error: string };
const ok = (value: unknown) => ({ value });
const fail = (error: string) => ({ error });
const got = (v: unknown) => JSON.stringify(v);
const int = (min: number): Check => (v) => (Number.isInteger(v) && (v as number) >= min ? ok(v) : fail(`must be an integer of at least ${min}, got ${got(v)}`));
const positive: Check = (v) => (typeof v === "number" && v > 0 && Number.isFinite(v) ? ok(v) : fail(`must be a positive number, got ${got(v)}`));
const str: Check = (v) => (typeof v === "string" ? ok(v) : fail(`must be a string, got ${got(v)}`));
const oneOf = (...allowed: string[]): Check => (v) => (allowed.includes(v as string) ? ok(v) : fail(`must be one of ${allowed.join(", ")}, got ${got(v)}`));

const CHECKS: Record<SettingKey, Check> = {
  data: str,
  manifest: str,
  crop: str,
  ratio: (v) => {
    const pair = typeof v === "string" ? v.split(":").map(Number) : Array.isArray(v) ? v : [];
    return pair.length === 2 && pair.every((x) => Number.isInteger(x) && x > 0) ? ok(`${pair[0]}:${pair[1]}`) : fail(`must be "majority:minority" like "99:1", got ${got(v)}`);
  },
  splitSeed: int(0),
  trainMajority: int(1),
  testPerClass: int(1),
  lesionScale: positive,
  leafSeed: int(0),
  model: oneOf("vgg19", "vgg19_bn", "resnet34"),
  head: oneOf("fastai", "classic"),
  size: int(32),
  width: (v) => (typeof v === "number" && v > 0 && v <= 1 ? ok(v) : fail(`must be in (0, 1], got ${got(v)}`)),
  epochs: int(1),
  batchSize: int(2),
  lr: positive,
  weightDecay: (v) => (typeof v === "number" && v >= 0 ? ok(v) : fail(`must be zero or positive, got ${got(v)}`)),
  flip: (v) => (typeof v === "boolean" ? ok(v) : fail(`must be true or false, got ${got(v)}`)),
  freezeEpochs: int(0),
  pretrained: str,
  seed: int(0),
  finalBN: (v) => (v === "with" || v === true ? ok(true) : v === "without" || v === false ? ok(false) : fail(`must be "with" or "without", got ${got(v)}`)),
};

export const SETTING_KEYS = Object.keys(CHECKS) as SettingKey[];

const TOP_KEYS = ["name", "out", "backend", "pixelCache", "leafCache", "fixed", "axes", "slurm", "$comment"];
const SLURM_CHECKS: Record<keyof SlurmSettings, Check> = {
  partition: str,
  gres: str,
  cpusPerTask: int(1),
  mem: str,
  time: str,
  maxParallel: int(1),
  requeue: (v) => (typeof v === "boolean" ? ok(v) : fail(`must be true or false, got ${got(v)}`)),
  account: str,
  qos: str,
  node: str,
  extra: (v) => (Array.isArray(v) && v.every((x) => typeof x === "string") ? ok(v) : fail(`must be a list of strings, got ${got(v)}`)),
};

const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v);

function unknownKey(where: string, key: string, known: readonly string[]): never {
  throw new SpecError(`${where}${key}: unknown key (known: ${known.join(", ")})`);
}

/** Check a parsed spec and put its values in canonical form ("with" -> true, [99, 1] -> "99:1"); throws SpecError. */
export function validateSpec(raw: unknown): SweepSpec {
  if (!isRecord(raw)) throw new SpecError("the spec must be a JSON object");
  for (const k of Object.keys(raw)) if (!TOP_KEYS.includes(k)) unknownKey("", k, TOP_KEYS.filter((t) => t !== "$comment"));
  if (typeof raw.name !== "string" || !/^[A-Za-z0-9][\w.-]*$/.test(raw.name))
    throw new SpecError(`name: must be a folder-safe name (letters, digits, - _ .), got ${got(raw.name)}`);
  for (const k of ["out", "pixelCache", "leafCache"] as const) if (raw[k] !== undefined && typeof raw[k] !== "string") throw new SpecError(`${k}: must be a string, got ${got(raw[k])}`);
  if (raw.backend !== undefined && !["auto", "cuda", "webgpu", "cpu"].includes(raw.backend as string))
    throw new SpecError(`backend: must be one of auto, cuda, webgpu, cpu, got ${got(raw.backend)}`);

  const fixedRaw = raw.fixed ?? {};
  const axesRaw = raw.axes ?? {};
  if (!isRecord(fixedRaw)) throw new SpecError("fixed: must be an object of settings");
  if (!isRecord(axesRaw)) throw new SpecError("axes: must be an object of setting -> list of values");
  const checkValue = (where: string, key: string, v: unknown) => {
    const r = CHECKS[key as SettingKey](v);
    if ("error" in r) throw new SpecError(`${where}: ${r.error}`);
    return r.value;
  };
  const fixed: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(fixedRaw)) {
    if (!(k in CHECKS)) unknownKey("fixed.", k, SETTING_KEYS);
    fixed[k] = checkValue(`fixed.${k}`, k, v);
  }
  const axes: Record<string, unknown[]> = {};
  for (const [k, values] of Object.entries(axesRaw)) {
    if (!(k in CHECKS)) unknownKey("axes.", k, SETTING_KEYS);
    if (k in fixed) throw new SpecError(`axes.${k}: also in fixed (a setting is fixed or swept, not both)`);
    if (!Array.isArray(values) || values.length === 0) throw new SpecError(`axes.${k}: must be a non-empty list of values`);
    const canonical = values.map((v, i) => checkValue(`axes.${k}[${i}]`, k, v));
    canonical.forEach((v, i) => {
      if (canonical.findIndex((w) => JSON.stringify(w) === JSON.stringify(v)) !== i) throw new SpecError(`axes.${k}[${i}]: ${got(values[i])} is listed twice`);
    });
    axes[k] = canonical;
  }
  const given = new Set([...Object.keys(fixed), ...Object.keys(axes)]);
  if (given.has("manifest"))
    for (const k of SPLIT_KEYS) if (given.has(k)) throw new SpecError(`${k in axes ? "axes" : "fixed"}.${k}: not with a manifest (the manifest fixes its own split)`);

  let slurm: SlurmSettings | undefined;
  if (raw.slurm !== undefined) {
    if (!isRecord(raw.slurm)) throw new SpecError("slurm: must be an object");
    slurm = {};
    for (const [k, v] of Object.entries(raw.slurm)) {
      if (!(k in SLURM_CHECKS)) unknownKey("slurm.", k, Object.keys(SLURM_CHECKS));
      const r = SLURM_CHECKS[k as keyof SlurmSettings](v);
      if ("error" in r) throw new SpecError(`slurm.${k}: ${r.error}`);
      (slurm as Record<string, unknown>)[k] = r.value;
    }
  }
  return {
    name: raw.name,
    out: raw.out as string | undefined,
    backend: raw.backend as SweepSpec["backend"],
    pixelCache: raw.pixelCache as string | undefined,
    leafCache: raw.leafCache as string | undefined,
    fixed: fixed as SweepSpec["fixed"],
    axes: axes as SweepSpec["axes"],
    slurm,
  };
}

/** Read and check a spec file; a JSON syntax error names the file. */
export async function readSpec(file: string): Promise<SweepSpec> {
  const text = await readFile(file, "utf8").catch((e: NodeJS.ErrnoException) => {
    throw new SpecError(`cannot read the sweep spec ${file}: ${e.code ?? e.message}`);
  });
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (e) {
    throw new SpecError(`${file} is not valid JSON: ${(e as Error).message}`);
  }
  return validateSpec(raw);
}
