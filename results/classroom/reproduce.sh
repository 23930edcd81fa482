#!/usr/bin/env bash
# The classroom reference results, exactly as committed: npm run demo's configuration (CLASSROOM
# in src/train/presets.ts) on two 99:1 splits of the synthetic leaves (5 seeds) and of the real
# Pepper photos (3 seeds: the time a session had), from the same body pretrained on other synthetic
# leaves. About an hour on 2 cores. Checkpoints and the body are not committed (see .gitignore).
set -euo pipefail
cd "$(dirname "$0")/../.."
out=results/classroom
data=${PLANTVILLAGE:-../shared/data/plantvillage}
rm -rf "$out/synthetic" "$out/pepper"

# Synthetic leaves: the demo itself, on split seeds 1 and 2 (the body is pretrained once, by the first).
for split in 1 2; do
  npm run demo -- --seeds 1,2,3,4,5 --split-seed "$split" --out "$out/synthetic"
done

# Real Pepper photos (the committed manifests), same network, recipe and pretrained body, at 32 px.
for split in 1 2; do
  npm run experiment -- --manifest "data-manifests/pepper-bell-99to1-seed$split.json" --data "$data" \
    --model vgg19_bn --head fastai --final-bn both --seeds 1,2,3 --size 32 --width 0.125 \
    --batch 16 --epochs 9 --lr 0.001 --pretrained "$out/synthetic/pretrain/body.safetensors" \
    --out "$out/pepper/split$split"
done
npm run results
