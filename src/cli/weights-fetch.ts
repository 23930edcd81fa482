// npm run weights:fetch -- --model vgg19|vgg19_bn|resnet34 --out DIR [--url URL | --from FILE] [--sha256 HEX] [--force]
// Without network (a firewalled classroom), download the file elsewhere and pass it with --from.
import { downloadWeights, WEIGHT_SOURCES } from "../models/download.ts";
import { existingPath, parseFlags, runCli, UsageError } from "./args.ts";

runCli(async () => {
  const flags = parseFlags(
    "weights:fetch",
    "Download torchvision's ImageNet weights as <out>/<model>.safetensors (default source: timm's copies on Hugging Face).",
    {
      model: { type: "string", required: true, help: Object.keys(WEIGHT_SOURCES).join(" | ") },
      out: { type: "string", required: true, help: "folder to write <model>.safetensors into" },
      url: { type: "string", help: "download from this URL instead" },
      from: { type: "string", help: "take this file (downloaded elsewhere) instead of downloading; checked the same way" },
      sha256: { type: "string", help: "expected SHA-256 (hex); the file is kept only if it matches" },
      force: { type: "boolean", help: "download again even if the file is already there" },
    },
  );
  if (!(flags.model in WEIGHT_SOURCES)) throw new UsageError(`--model must be one of ${Object.keys(WEIGHT_SOURCES).join(", ")}, got "${flags.model}"`);
  if (flags.sha256 !== undefined && !/^[0-9a-fA-F]{64}$/.test(flags.sha256)) throw new UsageError("--sha256 must be 64 hexadecimal digits");
  if (flags.url !== undefined && !/^https?:\/\//.test(flags.url)) throw new UsageError(`--url must start with http:// or https://, got "${flags.url}"`);
  if (flags.from !== undefined && flags.url !== undefined) throw new UsageError("give --url or --from, not both");
  if (flags.from !== undefined) existingPath("from", flags.from, "file");

  const result = await downloadWeights({ ...flags, log: (line) => console.log(line) });
  if (!result.downloaded) console.log(`${result.file} is already there (--force downloads it again)`);
  console.log(`sha256 ${result.sha256} ${result.verified ? "(matches the expected hash)" : "(not checked: no expected hash; pass it as --sha256 next time)"}`);
});
