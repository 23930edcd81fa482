// npm run results: the committed reference results (results/, made by the project's own
// commands; see results/README.md) as the README's markdown table; a test checks the README still
// shows exactly this.
import { parseFlags, runCli, UsageError } from "./args.ts";
import { readResults, resultsTable } from "../train/results.ts";

const spec = {
  dir: { type: "string", help: "folder searched for experiments (their summary.json)", default: "results/classroom" },
} as const;

runCli(async () => {
  const f = parseFlags("results", "The reference results as a markdown table (the README's).", spec);
  const results = await readResults(f.dir!).catch((e: Error) => {
    throw new UsageError(`cannot read ${f.dir}: ${e.message}`);
  });
  if (!results.length) throw new UsageError(`no summary.json under ${f.dir}`);
  console.log(resultsTable(results));
});
