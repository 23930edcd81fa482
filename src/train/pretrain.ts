// A body trained first on other images, then handed to both variants as their starting point:
// the classroom's stand-in for the paper's ImageNet weights. The paper fine-tunes pretrained
// networks, and at classroom scale that matters: trained from scratch on 10 diseased leaves, a
// small VGG19 mostly memorises them, with or without the final BN, and the comparison is noise;
// starting from a body that already responds to lesions, the final BN's effect shows on every seed.
import { access } from "node:fs/promises";
import path from "node:path";
import { writeFileAtomic } from "../data/files.ts";
import { prepareSplit } from "../data/prepare.ts";
import { torchvisionBodyTensors } from "../models/index.ts";
import { writeSafetensors } from "../models/safetensors.ts";
import { resolveTrainConfig, type TrainConfig } from "./config.ts";
import { train, type EpochRecord, type TrainCallbacks } from "./learner.ts";
import { trainingStop } from "./interrupt.ts";
import type { Preset } from "./presets.ts";
import type { RunInfo } from "./run-log.ts";

export const BODY_FILE = "body.safetensors";

export interface PretrainOptions extends Partial<Omit<TrainConfig, "finalBN" | "pretrained" | "freezeEpochs">> {
  /** The pretraining set: other images than the experiment's (e.g. balanced leaves of another seed). */
  manifest: string;
  data: string;
  /** Folder of the pretraining run; the body is written there as body.safetensors. */
  runDir: string;
}

export interface PretrainedBody {
  /** torchvision-layout safetensors of the body, for TrainConfig.pretrained. */
  file: string;
  /** The pretraining run's epochs (balanced test set: its F1 says whether the body learned the cue). */
  history: EpochRecord[];
}

/**
 * Train the network (without the final BN) on the pretraining set and save its body. A finished
 * body is reused; an interrupted pretraining resumes from its checkpoint like any run.
 */
export async function pretrainBody(
  o: PretrainOptions,
  io: { info: RunInfo; callbacks?: TrainCallbacks; signal?: AbortSignal },
): Promise<PretrainedBody> {
  const { runDir, ...rest } = o;
  const config = resolveTrainConfig({ ...rest, finalBN: false });
  const file = path.join(runDir, BODY_FILE);
  const stop = trainingStop(io.signal);
  const result = await train(config, { runDir, info: io.info, callbacks: io.callbacks, signal: stop.signal }).finally(stop.release);
  try {
    if (!(await access(file).then(() => true, () => false))) {
      const metadata = { format: "pt", source: "finalbn pretrainBody", config: JSON.stringify(config) };
      await writeFileAtomic(file, writeSafetensors(torchvisionBodyTensors(result.model), metadata));
    }
  } finally {
    result.model.dispose();
  }
  return { file: path.resolve(file), history: result.history };
}

export interface OtherLeavesOptions {
  /** How many leaves, which leaf seed, how long and how fast (a Preset's pretrain). */
  pretrain: NonNullable<Preset["pretrain"]>;
  size: number;
  width: number;
  lesionScale: number;
  /** Folder for the pretraining manifest and run (body.safetensors lands in runDir/pretrain). */
  runDir: string;
  /** Where the generated leaves are cached (prepareSplit's cacheDir) and the pixel cache. */
  leavesCacheDir?: string;
  pixelCacheDir?: string;
}

/**
 * The classroom's pretrained body, as the demo and the notebooks make it: balanced healthy and
 * diseased synthetic leaves drawn from another leaf seed (so none of them is in the experiment),
 * the network trained on them, its body saved. Run again, it reuses what is there.
 */
export async function pretrainOnOtherLeaves(
  o: OtherLeavesOptions,
  io: { info: RunInfo; callbacks?: TrainCallbacks; log?: (line: string) => void; signal?: AbortSignal },
): Promise<PretrainedBody> {
  const p = o.pretrain;
  const other = await prepareSplit({
    data: "",
    ratio: [1, 1],
    trainMajority: p.trainPerClass,
    testPerClass: p.testPerClass,
    size: o.size,
    lesionScale: o.lesionScale,
    leafSeed: p.leafSeed,
    manifestDir: o.runDir,
    manifestName: "pretrain-manifest.json",
    cacheDir: o.leavesCacheDir,
    log: io.log,
  });
  io.log?.(`pretraining the body on ${2 * p.trainPerClass} other leaves (balanced, leaf seed ${p.leafSeed}, ${p.epochs} epochs)`);
  return pretrainBody(
    {
      manifest: other.manifestFile,
      data: other.data,
      arch: "vgg19_bn",
      head: "fastai",
      width: o.width,
      size: o.size,
      epochs: p.epochs,
      batchSize: p.batchSize,
      lr: p.lr,
      seed: 0,
      cacheDir: o.pixelCacheDir,
      runDir: path.join(o.runDir, "pretrain"),
    },
    io,
  );
}
