// npm run data:verify -- --manifest FILE --data DIR [--decode]
// Check that a data folder holds every image of a manifest with exactly the recorded bytes (and,
// with --decode, that each decodes as training will decode it).
// Exit 0 when clean, 1 when anything is missing, different or broken, 2 for a wrong flag (an
// unreadable manifest included).
import { existingPath, parseFlags, runCli, UsageError } from "./args.ts";
import { readManifest } from "../data/manifest.ts";
import { verifyManifest } from "../data/verify.ts";

const SPEC = {
  manifest: { type: "string", help: "manifest JSON, e.g. data-manifests/pepper-bell-99to1-seed1.json", required: true },
  data: { type: "string", help: "PlantVillage folder (either layout, directly or under raw/color)", required: true },
  decode: { type: "boolean", help: "also decode every image (finds truncated or corrupt files and decompression bombs)" },
} as const;

runCli(async () => {
  const flags = parseFlags("data:verify", "Check every file of a manifest against a data folder (SHA-256).", SPEC);
  existingPath("manifest", flags.manifest, "file");
  existingPath("data", flags.data, "folder");
  // A manifest that cannot be read is a wrong flag value (exit 2), not a data mismatch (exit 1).
  const manifest = await readManifest(flags.manifest).catch((err: Error) => {
    throw new UsageError(err.message);
  });

  // A progress line only for a person watching; logs and pipes get the report alone.
  const tty = process.stderr.isTTY;
  let last = 0;
  const result = await verifyManifest(manifest, flags.data, {
    decode: flags.decode,
    onProgress: tty
      ? (done, total) => {
          const now = Date.now();
          if (done === total || now - last > 100) {
            last = now;
            process.stderr.write(`\rverifying ${done}/${total}`);
          }
        }
      : undefined,
  });
  if (tty) process.stderr.write("\r\x1b[K");

  for (const p of result.missing) console.log(`missing     ${p}`);
  for (const m of result.mismatched) console.log(`mismatch    ${m.path} (expected ${m.expected.slice(0, 12)}…, got ${m.actual.slice(0, 12)}…)`);
  for (const u of result.unreadable) console.log(`unreadable  ${u.path} (${u.reason})`);
  for (const u of result.undecodable) console.log(`undecodable ${u.path} (${u.reason})`);
  const bad = result.missing.length + result.mismatched.length + result.unreadable.length + result.undecodable.length;
  const decoded = flags.decode ? `, ${result.undecodable.length} undecodable` : "";
  console.log(
    `checked ${result.checked} images: ${result.missing.length} missing, ${result.mismatched.length} mismatched, ` +
      `${result.unreadable.length} unreadable${decoded}${bad ? "" : " - all match"}`,
  );
  return bad ? 1 : 0;
});
