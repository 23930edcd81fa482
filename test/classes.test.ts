import { test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, readdirSync } from "node:fs";
import path from "node:path";
import { classInfo, matchCrop, normalKey, ORIGINAL_CLASSES } from "../src/data/classes.ts";

const SHARED = path.resolve(import.meta.dirname, "../../shared/data/plantvillage");

test("the 38 original folders map to themselves, with distinct keys", () => {
  assert.equal(ORIGINAL_CLASSES.length, 38);
  assert.equal(new Set(ORIGINAL_CLASSES.map(normalKey)).size, 38);
  for (const name of ORIGINAL_CLASSES) assert.equal(classInfo(name)?.name, name);
  assert.deepEqual(classInfo("Pepper,_bell___healthy"), { name: "Pepper,_bell___healthy", crop: "Pepper, bell", condition: "healthy", healthy: true });
  assert.deepEqual(classInfo("Corn_(maize)___Common_rust_"), { name: "Corn_(maize)___Common_rust_", crop: "Corn (maize)", condition: "Common rust", healthy: false });
  assert.equal(ORIGINAL_CLASSES.filter((n) => classInfo(n)!.healthy).length, 12);
});

test("the common mirror's folder names map to the original names", () => {
  const mirror: Record<string, string> = {
    Pepper__bell___Bacterial_spot: "Pepper,_bell___Bacterial_spot",
    Pepper__bell___healthy: "Pepper,_bell___healthy",
    Potato___Early_blight: "Potato___Early_blight",
    Potato___Late_blight: "Potato___Late_blight",
    Potato___healthy: "Potato___healthy",
    Tomato_Bacterial_spot: "Tomato___Bacterial_spot",
    Tomato_Early_blight: "Tomato___Early_blight",
    Tomato_Late_blight: "Tomato___Late_blight",
    Tomato_Leaf_Mold: "Tomato___Leaf_Mold",
    Tomato_Septoria_leaf_spot: "Tomato___Septoria_leaf_spot",
    Tomato_Spider_mites_Two_spotted_spider_mite: "Tomato___Spider_mites Two-spotted_spider_mite",
    Tomato__Target_Spot: "Tomato___Target_Spot",
    Tomato__Tomato_YellowLeaf__Curl_Virus: "Tomato___Tomato_Yellow_Leaf_Curl_Virus",
    Tomato__Tomato_mosaic_virus: "Tomato___Tomato_mosaic_virus",
    Tomato_healthy: "Tomato___healthy",
  };
  for (const [folder, original] of Object.entries(mirror)) assert.equal(classInfo(folder)?.name, original, folder);
  assert.equal(classInfo("Tomato__Target_Spot")?.condition, "Target Spot");
});

test("generic Crop___Condition folders are understood; anything else is not a class", () => {
  assert.deepEqual(classInfo("Synthetic_leaf___healthy"), { name: "Synthetic_leaf___healthy", crop: "Synthetic leaf", condition: "healthy", healthy: true });
  assert.deepEqual(classInfo("Synthetic_leaf___Lesion_spot"), { name: "Synthetic_leaf___Lesion_spot", crop: "Synthetic leaf", condition: "Lesion spot", healthy: false });
  // A new condition of a known crop keeps that crop's original spelling.
  assert.equal(classInfo("Pepper__bell___Mystery_rot")?.name, "Pepper,_bell___Mystery_rot");
  for (const name of ["raw", "color", ".DS_Store", "node_modules", "Tomato", "", "___healthy", "Leaf___", ".hidden___healthy"])
    assert.equal(classInfo(name), undefined, JSON.stringify(name));
});

test("matchCrop finds one crop from a loose query, or says which crops exist", () => {
  const all = [...ORIGINAL_CLASSES.map((n) => classInfo(n)!), classInfo("Synthetic_leaf___healthy")!];
  assert.equal(matchCrop(all, "Pepper"), "Pepper, bell");
  assert.equal(matchCrop(all, "potato"), "Potato");
  assert.equal(matchCrop(all, "Synthetic"), "Synthetic leaf");
  assert.equal(matchCrop(all, "corn"), "Corn (maize)");
  assert.equal(matchCrop(all, "Pepper, bell"), "Pepper, bell");
  assert.throws(() => matchCrop(all, "P"), /matches several crops \("Peach", "Pepper, bell", "Potato"\)/);
  assert.throws(() => matchCrop(all, "banana"), /no crop matches "banana"; crops present: "Apple", .*"Tomato"/);
  assert.throws(() => matchCrop([], "Pepper"), /crops present: none/);
});

test("every folder of the shared data is a known class", (t) => {
  if (!existsSync(SHARED)) return t.skip(`shared data not found at ${SHARED}`);
  const names = readdirSync(SHARED).sort();
  assert.deepEqual(
    names.map((n) => classInfo(n)?.name),
    ["Pepper,_bell___Bacterial_spot", "Pepper,_bell___healthy", "Potato___Early_blight", "Potato___Late_blight", "Potato___healthy"],
  );
});
