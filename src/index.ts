// finalbn's public API: what the notebooks use, and all they use. In a notebook cell:
//
//   import { prepareSplit, runExperiment, showTable } from "finalbn";
//
// "finalbn" is this checkout (package.json links it into node_modules), and `npm install` writes
// its type declarations to dist/types, so completion, signatures and type errors work in Jupyter
// and VS Code. Grouped as a notebook goes: start, data, models, training, results, pictures.

// ---- start: the backend (GPU when there is one) and what a run records about it
export { startRun } from "./cli/start-run.ts";
export { describeBackend, startBackend, type BackendChoice, type BackendName, type StartedBackend } from "./backends/index.ts";
export type { RunInfo } from "./train/run-log.ts";

// ---- data: PlantVillage or the embedded synthetic leaves, indexed and split 99:1
export { indexDataset, type DatasetIndex } from "./data/index.ts";
export { matchCrop } from "./data/classes.ts";
export { prepareSplit, syntheticLeaves, type PrepareSplitOptions, type PreparedSplit, type SyntheticLeavesOptions } from "./data/prepare.ts";
export { verifyManifest, type VerifyResult } from "./data/verify.ts";

// ---- models: VGG19 / ResNet34 with the fastai or classic head, with or without the final BN
export {
  buildArchitecture,
  buildModel,
  countTrainableParams,
  FINAL_BN_LAYER,
  removeFinalBN,
  summarize,
  type Arch,
  type Head,
  type ModelConfig,
} from "./models/index.ts";

// ---- training: the classroom preset, a pretrained body, both variants over seeds
export { CLASSROOM, PAPER, type Preset } from "./train/presets.ts";
export { resolveTrainConfig, type TrainConfig } from "./train/config.ts";
export { pretrainOnOtherLeaves, type PretrainedBody } from "./train/pretrain.ts";
export { runExperiment, type ExperimentOptions, type ExperimentResult, type SummaryRow, type VariantRun } from "./train/experiment.ts";
export { defaultWorkers } from "./train/pool.ts";
export { evaluate, train, type EpochRecord, type TrainCallbacks } from "./train/learner.ts";
export { loadRunData } from "./train/data.ts";
export { Interrupted } from "./train/interrupt.ts";

// ---- results: per-seed statistics, predictions, calibration
export { ciText, describeDifference, pairedStats, verdict, type PairedStats } from "./train/stats.ts";
export { readPredictions, type Predictions } from "./train/run-log.ts";
export { expectedCalibrationError, reliabilityBins, topProbabilities } from "./train/metrics.ts";

// ---- pictures: plotly charts, tables, images and live training in the notebook; the HTML report
export {
  confidenceHistogramFigure,
  curveFigure,
  f1VersusLossFigure,
  pairedSeedFigure,
  reliabilityFigure,
  sweepFigure,
  type Figure,
} from "./viz/charts.ts";
export {
  finalEpochRows,
  liveTraining,
  showFigure,
  showImages,
  showProgress,
  showTable,
  trainLive,
  type ImageRow,
  type TableInput,
} from "./viz/notebook.ts";
export { writeExperimentReport } from "./viz/report.ts";

// ---- sweeps: a grid of runs (ratios, batch sizes, models, seeds, with/without the final BN) planned,
// trained by a local pool or a Slurm job array, followed and collected into one table
export { readSpec, validateSpec, SpecError, type RunSettings, type SlurmSettings, type SweepSpec } from "./sweep/spec.ts";
export { planSweep, planTable, type PlannedRun, type SweepPlan } from "./sweep/plan.ts";
export { prepareSweep } from "./sweep/prepare.ts";
export { runSweep, sweepStatus, type RunSweepOptions, type RunSweepResult } from "./sweep/run.ts";
export { statusCounts, statusText, type RunState, type RunStatus } from "./sweep/status.ts";
export { collectSweep, writeSweepResults, type CollectedSweep, type SweepRow } from "./sweep/collect.ts";
export { sweepAxisFigure, type AxisFigureOptions } from "./viz/sweep-charts.ts";
// a mean with its 95% t-interval, for a sweep's grid points
export { meanInterval95, type MeanInterval } from "./train/stats.ts";
