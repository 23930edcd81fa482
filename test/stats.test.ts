// The with/without comparison paired by seed: t quantiles, intervals and the verdict, checked
// against numbers worked out by hand, and the per-seed chart and report section built from them.
import { test } from "node:test";
import assert from "node:assert/strict";
import { describeDifference, meanInterval95, pairBySeed, pairedCsv, pairedStats, pairedTable, tQuantile975, verdict } from "../src/train/stats.ts";
import { pairedSeedFigure } from "../src/viz/charts.ts";
import { reportHtml } from "../src/viz/report.ts";
import { summarize, type VariantRun } from "../src/train/experiment.ts";
import { resolveTrainConfig } from "../src/train/config.ts";
import type { EpochRecord } from "../src/train/learner.ts";

const close = (a: number | null, b: number, eps = 1e-4) => assert.ok(a !== null && Math.abs(a - b) < eps, `${a} is not ${b}`);

const rec = (epoch: number, f1: number, trainLoss: number): EpochRecord => ({
  epoch, f1, trainLoss, testLoss: 2 * trainLoss, accuracy: 0.5, precision: 0, recall: 0,
  confusion: [[0, 0], [0, 0]], lr: 0, seconds: 1, imagesPerSec: 1,
});
/** A run of two epochs whose last epoch has this F1 and train loss (the first: F1 0.05, loss 1). */
const run = (finalBN: boolean, seed: number, f1: number, trainLoss = 0.5): VariantRun => ({
  label: `vgg19_bn-fastai-${finalBN ? "" : "no"}finalbn-seed${seed}`, finalBN, seed, runDir: "",
  history: [rec(1, 0.05, 1), rec(2, f1, trainLoss)],
});
/** Runs of both variants for the given seeds, final F1 without and with. */
const both = (without: number[], withBN: number[], loss: [number, number] = [0.2, 0.5]) =>
  without.flatMap((f1, i) => [run(false, i + 1, f1, loss[0]), run(true, i + 1, withBN[i], loss[1])]);

test("t quantiles: the table at small df and the expansion beyond 30", () => {
  close(tQuantile975(1), 12.706, 1e-3);
  close(tQuantile975(4), 2.776, 1e-3);
  close(tQuantile975(9), 2.262, 1e-3);
  close(tQuantile975(30), 2.042, 1e-3);
  // scipy.stats.t.ppf(0.975, df): 2.0395 at 31, 2.0211 at 40, 1.9799 at 120, towards 1.96.
  close(tQuantile975(31), 2.0395);
  close(tQuantile975(40), 2.0211);
  close(tQuantile975(120), 1.9799);
  close(tQuantile975(1e6), 1.96, 1e-3);
  assert.throws(() => tQuantile975(0), /positive integer/);
  assert.throws(() => tQuantile975(2.5), /positive integer/);
});

test("a 95% t-interval by hand: mean ± t · sd / √n", () => {
  // 0.4 four times and 0.5: mean 0.42, sd √0.002, sd/√5 = 0.02 exactly, t(4) = 2.7764.
  const i = meanInterval95([0.4, 0.4, 0.4, 0.4, 0.5]);
  assert.equal(i.n, 5);
  assert.equal(i.df, 4);
  close(i.mean, 0.42, 1e-12);
  close(i.sd, Math.sqrt(0.002), 1e-12);
  close(i.low, 0.42 - 2.7764 * 0.02, 1e-9);
  close(i.high, 0.42 + 2.7764 * 0.02, 1e-9);
  // One value: a mean but no spread, so no interval.
  assert.deepEqual(meanInterval95([0.3]), { n: 1, mean: 0.3, sd: null, df: null, t: null, low: null, high: null });
});

test("runs pair by seed; a seed with one variant (or no finished epoch) is left out and named", () => {
  const runs = [
    run(true, 3, 0.9), run(false, 1, 0.1), run(true, 1, 0.6), run(false, 2, 0.2),
    { ...run(true, 2, 0.5), history: [] }, // started but no epoch finished
  ];
  const { pairs, unpaired } = pairBySeed(runs);
  assert.deepEqual(pairs.map((p) => p.seed), [1]);
  close(pairs[0].difference.finalF1, 0.5, 1e-12);
  close(pairs[0].with.bestF1, 0.6, 1e-12);
  assert.deepEqual(unpaired.map((u) => [u.seed, u.finalBN]), [[2, false], [3, true]]);
  assert.equal(pairedCsv(pairedStats(runs)).split("\n")[0].split(",").length, 1 + 4 * 3);
  assert.match(pairedCsv(pairedStats(runs)).split("\n")[1], /^1,0\.1,0\.6,0\.5,/);
});

test("verdict: a direction only when the 95% interval lies on one side of 0", () => {
  // Five seeds, every one higher with the final BN: differences 0.4, 0.4, 0.4, 0.4, 0.5.
  const up = pairedStats(both([0.1, 0.2, 0, 0.3, 0.1], [0.5, 0.6, 0.4, 0.7, 0.6]));
  assert.equal(up.differences.finalF1.higherWith, 5);
  assert.equal(
    verdict(up),
    "Final minority F1 0.56 with the final BN, 0.14 without (means over 5 seeds): the final BN raises minority F1 by 0.42 " +
      "(95% CI 0.36–0.48, t-interval, 5 seeds; higher on 5 of 5 seeds). Train loss 0.500 with, 0.200 without: " +
      "the final BN raises the train loss by 0.300 (95% CI 0.300–0.300, t-interval, 5 seeds; higher on 5 of 5 seeds), " +
      "as in the paper, where the loss stays higher with the final BN.",
  );
  assert.equal(
    pairedTable(up).split("\n").at(-1),
    "mean difference +0.420 (95% CI 0.364–0.476, t-interval, 5 seeds, sd 0.045); higher with the final BN on 5 of 5",
  );
  // Two seeds, one up and one down by 0.1: mean 0, interval ±12.7062 · 0.1.
  const unsure = pairedStats(both([0.2, 0.4], [0.3, 0.3], [0.5, 0.5]));
  close(unsure.differences.finalF1.high, 1.27062, 1e-6);
  const text = verdict(unsure);
  assert.match(text, /the 2 seeds cannot tell whether the final BN raises or lowers minority F1: mean difference 0\.00 \(95% CI -1\.27 to 1\.27, t-interval, 2 seeds; higher on 1 of 2 seeds\)/);
  assert.match(text, /the final BN leaves the train loss unchanged on all 2 seeds \(the paper: the loss stays higher with the final BN\)\./);
  // Ten seeds, lower by 0.2 and 0.4 in turn: mean -0.3, sd/√10 = 1/30, t(9) = 2.2622.
  const down = pairedStats(both(Array(10).fill(0.5), Array.from({ length: 10 }, (_, i) => (i % 2 ? 0.1 : 0.3)), [0.5, 0.4]));
  close(down.differences.finalF1.low, -0.3 - 2.2622 / 30, 1e-6);
  assert.match(verdict(down), /the final BN lowers minority F1 by 0\.30 \(95% CI -0\.38 to -0\.22, t-interval, 10 seeds; higher on 0 of 10 seeds\)/);
  assert.match(verdict(down), /lowers the train loss by 0\.100 .*unlike the paper/);
});

test("verdict with one seed, or none, says what it cannot tell", () => {
  const one = verdict(pairedStats([...both([0.0], [0.1]), run(false, 7, 0.3)]));
  assert.match(one, /^Final minority F1 0\.10 with the final BN, 0\.00 without \(on seed 1\): one seed cannot tell what the final BN does to minority F1: the single difference \(with minus without\) is \+0\.10\./);
  assert.match(one, /Left out: seed 7 \(only without the final BN\)\.$/);
  assert.match(verdict(pairedStats([run(true, 1, 0.5)])), /^No seed was trained both with and without the final BN/);
  assert.match(describeDifference(pairedStats([]).differences.bestF1, "best F1"), /nothing can be said about best F1/);
});

test("the per-seed chart: a dot per run, a thin line per seed, the mean difference with its interval", () => {
  const p = pairedStats(both([0.1, 0.2, 0, 0.3, 0.1], [0.5, 0.6, 0.4, 0.7, 0.6]));
  const fig = pairedSeedFigure(p);
  const lines = fig.data.filter((d) => d.mode === "lines");
  assert.equal(lines.length, 5, "one join per seed");
  assert.deepEqual(lines[0].y, [0.1, 0.5]);
  const mean = fig.data.find((d) => String(d.name).startsWith("mean difference"))!;
  const err = mean.error_y as { array: number[]; arrayminus: number[] };
  close(err.array[0], 2.7764 * 0.02, 1e-9);
  close(err.arrayminus[0], 2.7764 * 0.02, 1e-9);
  // One seed: the dots and the difference, no error bar.
  const single = pairedSeedFigure(pairedStats(both([0], [0.2])));
  assert.equal((single.data.find((d) => String(d.name).startsWith("mean difference"))!.error_y as { visible: boolean }).visible, false);
});

test("the report shows the verdict, the per-seed table and chart", () => {
  const runs = both([0.1, 0.2, 0, 0.3, 0.1], [0.5, 0.6, 0.4, 0.7, 0.6]);
  const paired = pairedStats(runs);
  const html = reportHtml({
    title: "t", runs, summary: summarize(runs), paired, info: { backend: "cpu", device: "test", versions: {} },
    config: resolveTrainConfig({ manifest: "m.json", data: "d" }),
  });
  assert.ok(html.includes(`<p class="verdict">${verdict(paired)}</p>`));
  assert.match(html, /<tr><td>5<\/td><td>0\.100<\/td><td>0\.600<\/td><td>\+0\.500<\/td><\/tr>/);
  assert.match(html, /<div id="paired-seeds"/);
});
