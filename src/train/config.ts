// One typed object describes a training run; every field has a default, so a notebook or the
// command line only states what differs from the paper's setting.

export interface TrainConfig {
  /** Manifest with the train/test (and optional val) split. */
  manifest: string;
  /** Folder holding the images (either PlantVillage layout). */
  data: string;
  arch: "vgg19" | "vgg19_bn" | "resnet34";
  head: "fastai" | "classic";
  finalBN: boolean;
  /** Channel width multiplier: 1 is the real network, 1/8 fits a classroom CPU. */
  width: number;
  /** Square image size in pixels. */
  size: number;
  epochs: number;
  batchSize: number;
  /** Peak learning rate of the one-cycle schedule. */
  lr: number;
  /** AdamW's decoupled weight decay. */
  weightDecay: number;
  /** Random horizontal flips of training images. */
  flip: boolean;
  seed: number;
  /** torchvision-layout .safetensors weights for the body, or undefined to train from scratch. */
  pretrained?: string;
  /** Epochs with the body frozen before unfreezing everything (fastai's fine_tune). */
  freezeEpochs: number;
  /** Where runs/<id>/ go. */
  runsDir: string;
  /** Pixel cache folder (see src/data/images.ts). */
  cacheDir?: string;
}

export const defaultTrainConfig: Omit<TrainConfig, "manifest" | "data"> = {
  arch: "vgg19_bn",
  head: "fastai",
  finalBN: true,
  width: 1,
  size: 224,
  epochs: 10,
  batchSize: 32,
  lr: 1e-3,
  weightDecay: 1e-2,
  flip: true,
  seed: 1,
  freezeEpochs: 0,
  runsDir: "runs",
};

/** Fill in defaults and reject settings that cannot work, with a message a student can act on. */
export function resolveTrainConfig(partial: Partial<TrainConfig> & Pick<TrainConfig, "manifest" | "data">): TrainConfig {
  const c = { ...defaultTrainConfig, ...stripUndefined(partial) } as TrainConfig;
  const bad = (msg: string) => {
    throw new Error(`invalid training config: ${msg}`);
  };
  if (!["vgg19", "vgg19_bn", "resnet34"].includes(c.arch)) bad(`arch must be vgg19, vgg19_bn or resnet34, got ${c.arch}`);
  if (!["fastai", "classic"].includes(c.head)) bad(`head must be fastai or classic, got ${c.head}`);
  if (!(c.width > 0 && c.width <= 1)) bad(`width must be in (0, 1], got ${c.width}`);
  if (!Number.isInteger(c.size) || c.size < 32) bad(`size must be an integer of at least 32 (VGG19 halves it five times), got ${c.size}`);
  if (!Number.isInteger(c.epochs) || c.epochs < 1) bad(`epochs must be a positive integer, got ${c.epochs}`);
  if (!Number.isInteger(c.batchSize) || c.batchSize < 2) bad(`batch size must be an integer of at least 2 (batch norm needs a batch), got ${c.batchSize}`);
  if (!(c.lr > 0)) bad(`lr must be positive, got ${c.lr}`);
  if (!(c.weightDecay >= 0)) bad(`weight decay must be zero or positive, got ${c.weightDecay}`);
  if (!Number.isInteger(c.freezeEpochs) || c.freezeEpochs < 0 || c.freezeEpochs > c.epochs)
    bad(`freezeEpochs must be an integer between 0 and epochs, got ${c.freezeEpochs}`);
  if (c.freezeEpochs > 0 && !c.pretrained) bad("freezeEpochs only makes sense with pretrained weights");
  return c;
}

function stripUndefined<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}

/** A short, file-system-safe name for one variant, e.g. "vgg19_bn-fastai-finalbn-seed1". */
export function variantName(c: Pick<TrainConfig, "arch" | "head" | "finalBN" | "seed">): string {
  return `${c.arch}-${c.head}-${c.finalBN ? "finalbn" : "nofinalbn"}-seed${c.seed}`;
}
