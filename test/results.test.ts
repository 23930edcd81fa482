// The committed reference results (results/classroom, made by its reproduce.sh) and the README's
// table of them: the table is npm run results' output, never typed in, so it cannot drift from
// the runs; and the runs are what the classroom preset claims.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import path from "node:path";
import { readResults, resultsTable } from "../src/train/results.ts";
import { CLASSROOM } from "../src/train/presets.ts";

const REPO = path.resolve(import.meta.dirname, "..");

test("the README shows the committed results exactly as npm run results lays them out", async () => {
  const results = await readResults(path.join(REPO, "results/classroom"));
  assert.ok(results.length >= 4, "synthetic and Pepper, two split seeds each");
  const readme = await readFile(path.join(REPO, "README.md"), "utf8");
  assert.ok(readme.includes(resultsTable(results)), "README.md's results table is stale: paste `npm run results` into it");
});

test("the reference runs used the classroom preset, with at least three paired seeds each", async () => {
  for (const { name, paired } of await readResults(path.join(REPO, "results/classroom"))) {
    assert.ok(paired.pairs.length >= 3, name);
    assert.deepEqual(paired.unpaired, [], name);
    for (const p of paired.pairs) {
      const config = JSON.parse(await readFile(path.join(REPO, "results/classroom", name, `vgg19_bn-fastai-finalbn-seed${p.seed}`, "config.json"), "utf8")).config;
      const { size, width, epochs, batchSize, lr } = config;
      assert.deepEqual({ size, width, epochs, batchSize, lr }, { size: CLASSROOM.size, width: CLASSROOM.width, epochs: CLASSROOM.epochs, batchSize: CLASSROOM.batchSize, lr: CLASSROOM.lr }, name);
      assert.match(config.pretrained, /pretrain\/body\.safetensors$/, `${name}: from the pretrained body`);
    }
  }
});
