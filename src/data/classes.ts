// PlantVillage class folders, understood. The dataset circulates in two spellings of the same
// 38 folders: the original (github spMohanty/PlantVillage-Dataset, raw/color), e.g.
// "Pepper,_bell___healthy", and a common mirror, e.g. "Pepper__bell___healthy" or
// "Tomato_healthy". Both reduce to the same key once only letters and digits are kept, so one
// table of original names serves both.
import type { ClassInfo } from "./types.ts";
import { byCodeUnit } from "./rng.ts";

/** The 38 class folders of the original layout, exactly as spelled there. */
export const ORIGINAL_CLASSES: readonly string[] = [
  "Apple___Apple_scab",
  "Apple___Black_rot",
  "Apple___Cedar_apple_rust",
  "Apple___healthy",
  "Blueberry___healthy",
  "Cherry_(including_sour)___Powdery_mildew",
  "Cherry_(including_sour)___healthy",
  "Corn_(maize)___Cercospora_leaf_spot Gray_leaf_spot",
  "Corn_(maize)___Common_rust_",
  "Corn_(maize)___Northern_Leaf_Blight",
  "Corn_(maize)___healthy",
  "Grape___Black_rot",
  "Grape___Esca_(Black_Measles)",
  "Grape___Leaf_blight_(Isariopsis_Leaf_Spot)",
  "Grape___healthy",
  "Orange___Haunglongbing_(Citrus_greening)",
  "Peach___Bacterial_spot",
  "Peach___healthy",
  "Pepper,_bell___Bacterial_spot",
  "Pepper,_bell___healthy",
  "Potato___Early_blight",
  "Potato___Late_blight",
  "Potato___healthy",
  "Raspberry___healthy",
  "Soybean___healthy",
  "Squash___Powdery_mildew",
  "Strawberry___Leaf_scorch",
  "Strawberry___healthy",
  "Tomato___Bacterial_spot",
  "Tomato___Early_blight",
  "Tomato___Late_blight",
  "Tomato___Leaf_Mold",
  "Tomato___Septoria_leaf_spot",
  "Tomato___Spider_mites Two-spotted_spider_mite",
  "Tomato___Target_Spot",
  "Tomato___Tomato_Yellow_Leaf_Curl_Virus",
  "Tomato___Tomato_mosaic_virus",
  "Tomato___healthy",
];

/** Lower case, letters and digits only: "Pepper,_bell___healthy" and "Pepper__bell___healthy" meet. */
export function normalKey(s: string): string {
  return s.toLowerCase().replace(/[^a-z0-9]/g, "");
}

/** "Corn_(maize)" -> "Corn (maize)", "Common_rust_" -> "Common rust". */
function readable(part: string): string {
  return part.replace(/_/g, " ").replace(/\s+/g, " ").trim();
}

/** Split an original-layout name at its "___" into crop and condition. */
function describe(name: string, cropPart: string, conditionPart: string): ClassInfo {
  const condition = readable(conditionPart);
  return { name, crop: readable(cropPart), condition, healthy: condition.toLowerCase() === "healthy" };
}

const KNOWN = new Map<string, ClassInfo>();
/** Crop key -> crop folder part in the original spelling ("pepperbell" -> "Pepper,_bell"). */
const KNOWN_CROPS = new Map<string, string>();
for (const name of ORIGINAL_CLASSES) {
  const [cropPart, conditionPart] = name.split("___");
  KNOWN.set(normalKey(name), describe(name, cropPart, conditionPart));
  KNOWN_CROPS.set(normalKey(cropPart), cropPart);
}

// The generic form "Crop___Condition" (e.g. the synthetic "Synthetic_leaf___Lesion_spot"):
// plain ASCII name characters on both sides of the first "___".
const GENERIC = /^([A-Za-z0-9][\w ,()'.-]*?)___([\w ,()'.-]+)$/;

/**
 * What a class folder holds, from its name in either layout; undefined for anything that is
 * not a class folder. Unknown folders of the form "Crop___Condition" are understood too.
 */
export function classInfo(folderName: string): ClassInfo | undefined {
  const known = KNOWN.get(normalKey(folderName));
  if (known) return known;
  const m = GENERIC.exec(folderName);
  if (!m || !/[A-Za-z0-9]/.test(m[1]) || !/[A-Za-z0-9]/.test(m[2])) return undefined;
  // A new condition of a known crop keeps the crop's original spelling ("Pepper__bell___X" -> "Pepper,_bell___X").
  const cropPart = KNOWN_CROPS.get(normalKey(m[1]));
  if (cropPart) return describe(`${cropPart}___${m[2]}`, cropPart, m[2]);
  return describe(folderName, m[1], m[2]);
}

/**
 * The one crop among `classes` that a person's query names: case and punctuation do not
 * matter, and a prefix of the crop or of one of its words is enough ("Pepper" -> "Pepper, bell",
 * "synthetic" -> "Synthetic leaf"). No match or several -> an Error listing the crops present.
 */
export function matchCrop(classes: readonly Pick<ClassInfo, "crop">[], query: string): string {
  const crops = [...new Set(classes.map((c) => c.crop))].sort(byCodeUnit);
  const present = crops.length ? crops.map((c) => JSON.stringify(c)).join(", ") : "none";
  const q = normalKey(query);
  if (!q) throw new Error(`no crop given; crops present: ${present}`);
  const exact = crops.filter((c) => normalKey(c) === q);
  if (exact.length === 1) return exact[0];
  const hits = crops.filter((c) => normalKey(c).startsWith(q) || c.split(/[\s,()]+/).some((w) => normalKey(w).startsWith(q)));
  if (hits.length === 1) return hits[0];
  if (hits.length === 0) throw new Error(`no crop matches "${query}"; crops present: ${present}`);
  throw new Error(`"${query}" matches several crops (${hits.map((c) => JSON.stringify(c)).join(", ")}); crops present: ${present}`);
}
