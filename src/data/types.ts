// Shapes shared across the data layer. A manifest is the contract between a split, the
// files on disk, the fetcher and the training code.

/** Which side of the imbalance a class is on in a split. */
export type Side = "majority" | "minority";
export type SplitName = "train" | "val" | "test";

/** One PlantVillage class folder, understood. */
export interface ClassInfo {
  /** Folder name in the original PlantVillage layout, e.g. "Pepper,_bell___healthy". */
  name: string;
  /** Crop as a person reads it, e.g. "Pepper, bell". */
  crop: string;
  /** Condition as a person reads it, e.g. "healthy", "Bacterial spot". */
  condition: string;
  healthy: boolean;
}

export interface ManifestImage {
  /** Path in the original PlantVillage layout: "raw/color/<class>/<file>" (forward slashes). */
  path: string;
  /** Original-layout class folder name. */
  class: string;
  side: Side;
  split: SplitName;
  /** Lower-case hex SHA-256 of the file's bytes. */
  sha256: string;
}

export interface SplitSettings {
  crop: string;
  /** Majority:minority in the training (and validation) set, e.g. [99, 1]. */
  ratio: [number, number];
  /** Which side is scarce: "diseased" (the paper's default) or "healthy". */
  minority: "diseased" | "healthy";
  /** Diseased classes used (original names); all of the crop's when pooled. */
  diseases: string[];
  seed: number;
  testPerClass: number;
  valPerClass: number;
  /** Majority images in the training set. */
  trainMajority: number;
  trainMinority: number;
}

export interface Manifest {
  format: "finalbn-manifest/1";
  settings: SplitSettings;
  images: ManifestImage[];
}
