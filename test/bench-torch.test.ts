// --with-torch: bench/torch_step.py runs the same VGG19 training steps in PyTorch. Runs where a
// python with torch exists (CI installs Debian's python3-torch); elsewhere it is skipped with the reason.
import { test } from "node:test";
import assert from "node:assert/strict";
import { findTorchPython, runTorchSteps } from "../bench/torch.ts";

let python: string | undefined;
let noTorch: string | undefined;
try {
  python = await findTorchPython(["python3", "/usr/bin/python3"]);
} catch (error) {
  noTorch = (error as Error).message;
  console.log(`skipping the PyTorch bench test: ${noTorch}`);
}

test("without a python that has torch, --with-torch says how to get one", async () => {
  await assert.rejects(findTorchPython(["/nonexistent/python3"]), /needs a python with PyTorch \(pip install torch, or apt-get install python3-torch\); tried \/nonexistent\/python3: not found/);
});

test("PyTorch times both VGG19 variants on each thread count asked for, and reports its version and device", { skip: noTorch }, async () => {
  const result = await runTorchSteps({ python: python!, arch: "vgg19_bn", size: 32, batch: 4, width: 1 / 16, rounds: 1, minMs: 10, threads: [1, 2] });
  assert.equal(result.python, python);
  assert.match(result.torch, /^\d+\.\d+/);
  assert.match(result.device, /cpu|cuda|NVIDIA|GPU/i);
  const cpu = /^cpu/.test(result.device);
  const expected = cpu
    ? [[1, false, "wall"], [1, true, "wall"], [2, false, "wall"], [2, true, "wall"]]
    : [[null, false, "wall"], [null, true, "wall"]];
  // With a row on 2 threads every row is timed by the wall clock (CPU time would sum over threads).
  assert.deepEqual(result.rows.map((r) => [r.threads, r.finalBN, r.clock]), expected);
  assert.equal(result.clock, result.rows[0]!.clock);
  if (cpu) {
    const one = await runTorchSteps({ python: python!, arch: "vgg19_bn", size: 32, batch: 4, width: 1 / 16, rounds: 1, minMs: 10, threads: [1] });
    assert.deepEqual(one.rows.map((r) => r.clock), ["cpu", "cpu"], "on one thread only: the process's CPU time");
  }
  for (const r of result.rows) {
    assert.equal(r.arch, "vgg19_bn");
    assert.ok(r.msPerStep > 0 && Number.isFinite(r.msPerStep));
    assert.ok(Math.abs(r.imagesPerSec - (4 / r.msPerStep) * 1000) < 1e-6 * r.imagesPerSec, "images/s is the batch over the step time");
  }
});
