// A procedural stand-in for PlantVillage: one leaf per image on a plain greyish background.
// Diseased leaves carry 1-5 small lesions (a dark brown core with a yellow halo), the scarce
// and local cue of early disease. Healthy and diseased leaves are drawn from the same
// distributions of shape, colour, lighting, veins, specks and yellowed edges, so the mean
// colour of an image says almost nothing about its class: a model has to find the lesions.
//
// Everything is a pure function of a seed (makeRng, never Math.random). A scene is sampled in
// image-relative units (0..1), so the same seed gives the same leaf at 32 px and at 64 px.
import { mkdir, readdir, rename, rm } from "node:fs/promises";
import path from "node:path";
import sharp from "sharp";
import { makeRng, subSeed } from "./rng.ts";
import { processAlive } from "./files.ts";

/** Class folder names in the PlantVillage layout (`Crop___Condition`). */
export const SYNTH_CLASSES = {
  healthy: "Synthetic_leaf___healthy",
  diseased: "Synthetic_leaf___Lesion_spot",
} as const;

export type RGB = [number, number, number];

export interface LeafOptions {
  seed: number;
  /** Width and height in pixels. */
  size: number;
  diseased: boolean;
  /**
   * Lesion size relative to the default (radius 2-3% of the image). Small images need larger
   * lesions for a small network trained from scratch to see them: at 32 px a default core is one pixel.
   */
  lesionScale?: number;
}

/** The leaf's outline and placement. Lengths are fractions of the image size. */
export interface LeafShape {
  /** Centre of the leaf (its mid-length point), 0..1 across and down the image. */
  cx: number;
  cy: number;
  /** Direction from base to tip, radians. */
  angle: number;
  /** Base-to-tip length. */
  length: number;
  /** Largest half-width as a fraction of the length. */
  width: number;
  /** Outline exponents: width ~ u^baseExp * (1-u)^tipExp along the axis u in 0..1. */
  baseExp: number;
  tipExp: number;
  /** One side is a little wider than the other. */
  asym: number;
  waveAmp: number;
  waveFreq: number;
  wavePhase: number;
  /** Petiole length along the axis (0: none). */
  stem: number;
  /** How brown the petiole is, 0..1. */
  stemBrown: number;
}

/** A round mark on the leaf; x, y, radius and halo are fractions of the image size. */
export interface Spot {
  /** lesion: the disease cue; pale, dark: specks on any leaf; dirt: a crumb on the background. */
  kind: "lesion" | "pale" | "dark" | "dirt";
  x: number;
  y: number;
  radius: number;
  /** Outer radius of the yellow halo (lesions only; 0 otherwise). */
  halo: number;
  colour: RGB;
  haloColour: RGB;
  haloStrength: number;
  /** Wobble of the outline, so lesions are not perfect discs. */
  wobble: number;
  wobblePhase: number;
}

/** Everything needed to draw one image. */
export interface LeafScene {
  diseased: boolean;
  shape: LeafShape;
  leafColour: RGB;
  /** Leaf area as a fraction of the image (inside the outline, ignoring the image border). */
  leafArea: number;
  /** Lighting: a linear gradient over the leaf, and one half of the leaf folded into shade. */
  shadeDir: number;
  shadeAmount: number;
  fold: number;
  /** Low-frequency blotches in brightness and yellowness, on a grid of MOTTLE x MOTTLE values. */
  mottle: number[];
  mottleAmount: number;
  mottleYellow: number;
  grain: number;
  veins: { light: boolean; midrib: number; midribWidth: number; side: number; sideWidth: number; slope: number; bend: number; starts: number[] };
  /** A yellowed stretch of the margin (a distractor that healthy leaves have too), or null. */
  edge: { u: number; halfLength: number; side: 1 | -1; depth: number; strength: number; colour: RGB } | null;
  spots: Spot[];
  background: { colour: RGB; gradDir: number; gradAmount: number; vignette: number; grain: number };
  shadow: { dx: number; dy: number; darkness: number; blur: number };
}

const MOTTLE = 6;

// ---- small helpers ------------------------------------------------------------------------

const clamp01 = (x: number) => (x < 0 ? 0 : x > 1 ? 1 : x);
const mix = (a: RGB, b: RGB, t: number): RGB => [a[0] + (b[0] - a[0]) * t, a[1] + (b[1] - a[1]) * t, a[2] + (b[2] - a[2]) * t];
const uniform = (rng: () => number, lo: number, hi: number) => lo + (hi - lo) * rng();
const intBetween = (rng: () => number, lo: number, hi: number) => lo + Math.floor(rng() * (hi - lo + 1));
function smoothstep(e0: number, e1: number, x: number): number {
  const t = clamp01((x - e0) / (e1 - e0));
  return t * t * (3 - 2 * t);
}
/** Roughly standard normal noise: the sum of three uniforms (cheaper than Box-Muller, per pixel). */
function gauss(rng: () => number): number {
  return (rng() + rng() + rng() - 1.5) * 2;
}
/** HSV to RGB, hue in degrees, all channels 0..1. */
export function hsv(h: number, s: number, v: number): RGB {
  const f = (n: number) => {
    const k = (n + h / 60) % 6;
    return v - v * s * Math.max(0, Math.min(k, 4 - k, 1));
  };
  return [f(5), f(3), f(1)];
}

// ---- geometry -----------------------------------------------------------------------------

/** Half-width of the leaf at axis position u (0 = base, 1 = tip), in units of its length. */
function halfWidth(s: LeafShape, u: number, side: number): number {
  if (u <= 0 || u >= 1) return 0;
  const peak = s.baseExp / (s.baseExp + s.tipExp);
  const norm = Math.pow(peak, s.baseExp) * Math.pow(1 - peak, s.tipExp);
  const w = (Math.pow(u, s.baseExp) * Math.pow(1 - u, s.tipExp)) / norm;
  const wave = 1 + s.waveAmp * Math.sin(2 * Math.PI * s.waveFreq * u + s.wavePhase + (side > 0 ? 0 : 1.3));
  return s.width * w * wave * (side > 0 ? 1 + s.asym : 1 - s.asym);
}

/** Image point (fractions) to leaf coordinates: u along the axis (0 base, 1 tip), v across (length units). */
function toLeaf(s: LeafShape, x: number, y: number): { u: number; v: number } {
  const dx = x - s.cx;
  const dy = y - s.cy;
  const c = Math.cos(s.angle);
  const n = Math.sin(s.angle);
  return { u: 0.5 + (dx * c + dy * n) / s.length, v: (-dx * n + dy * c) / s.length };
}

function fromLeaf(s: LeafShape, u: number, v: number): { x: number; y: number } {
  const c = Math.cos(s.angle);
  const n = Math.sin(s.angle);
  return { x: s.cx + ((u - 0.5) * c - v * n) * s.length, y: s.cy + ((u - 0.5) * n + v * c) * s.length };
}

/**
 * The outline sampled once per image (Math.pow per pixel is slow): half-widths and slopes on a
 * fine grid along the axis, for each side.
 */
interface Outline {
  width: Float64Array[]; // [side +1, side -1]
  slope: Float64Array[];
}
const OUTLINE_STEPS = 256;

function makeOutline(s: LeafShape): Outline {
  const width = [new Float64Array(OUTLINE_STEPS + 1), new Float64Array(OUTLINE_STEPS + 1)];
  const slope = [new Float64Array(OUTLINE_STEPS + 1), new Float64Array(OUTLINE_STEPS + 1)];
  for (const k of [0, 1]) {
    for (let i = 0; i <= OUTLINE_STEPS; i++) width[k][i] = halfWidth(s, i / OUTLINE_STEPS, k === 0 ? 1 : -1);
    for (let i = 0; i <= OUTLINE_STEPS; i++) {
      const a = width[k][Math.max(i - 1, 0)];
      const b = width[k][Math.min(i + 1, OUTLINE_STEPS)];
      slope[k][i] = ((b - a) * OUTLINE_STEPS) / 2;
    }
  }
  return { width, slope };
}

/** Linear interpolation in one of the outline's tables. */
function lookup(table: Float64Array, u: number): number {
  const t = u * OUTLINE_STEPS;
  const i = Math.min(Math.floor(t), OUTLINE_STEPS - 1);
  return table[i] + (table[i + 1] - table[i]) * (t - i);
}

function widthAt(o: Outline, u: number, v: number): number {
  if (u <= 0 || u >= 1) return 0;
  return lookup(o.width[v >= 0 ? 0 : 1], u);
}

/** Signed distance (in leaf-length units, positive outside) from the outline, approximately. */
function outlineDistance(o: Outline, u: number, v: number): number {
  const av = Math.abs(v);
  if (u <= 0) return Math.hypot(av, u);
  if (u >= 1) return Math.hypot(av, u - 1);
  const k = v >= 0 ? 0 : 1;
  // Divide the vertical gap by the outline's slope so that steep parts get a true-width soft
  // edge; capped, because near a rounded base or tip the slope explodes and the estimate with it.
  const slope = Math.min(Math.abs(lookup(o.slope[k], u)), 3);
  return (av - lookup(o.width[k], u)) / Math.sqrt(1 + slope * slope);
}

function leafArea(s: LeafShape, o: Outline): number {
  let sum = 0;
  for (let i = 0; i <= OUTLINE_STEPS; i++) sum += o.width[0][i] + o.width[1][i];
  return (sum / OUTLINE_STEPS) * s.length * s.length;
}

// ---- sampling a scene ---------------------------------------------------------------------

/**
 * Sample the scene for one image. The leaf itself comes from the seed alone, so the diseased
 * version of a seed is the very same leaf plus lesions (handy for showing what the cue is).
 */
export function sampleLeaf(opts: { seed: number; diseased: boolean; lesionScale?: number }): LeafScene {
  const rng = makeRng(subSeed(opts.seed, "leaf"));

  const shape: LeafShape = {
    cx: 0.5 + uniform(rng, -0.07, 0.07),
    cy: 0.5 + uniform(rng, -0.07, 0.07),
    angle: uniform(rng, 0, 2 * Math.PI),
    length: uniform(rng, 0.7, 0.95),
    width: uniform(rng, 0.22, 0.38),
    baseExp: uniform(rng, 0.4, 0.75), // < 1: a rounded base
    tipExp: uniform(rng, 0.9, 1.6), // >= 1: a pointed tip
    asym: uniform(rng, -0.08, 0.08),
    waveAmp: uniform(rng, 0, 0.035),
    waveFreq: uniform(rng, 2, 5),
    wavePhase: uniform(rng, 0, 2 * Math.PI),
    stem: rng() < 0.7 ? uniform(rng, 0.05, 0.14) : 0,
    stemBrown: uniform(rng, 0, 0.7),
  };

  // Greens from yellowish to bluish, pale to dark: the same range for both classes.
  const leafColour = hsv(uniform(rng, 72, 128), uniform(rng, 0.35, 0.72), uniform(rng, 0.28, 0.56));

  const mottle: number[] = [];
  for (let i = 0; i < MOTTLE * MOTTLE; i++) mottle.push(uniform(rng, -1, 1));

  const lightVeins = rng() < 0.7; // most leaves have pale veins; some have darker ones
  const nVeins = intBetween(rng, 4, 7);
  const starts: number[] = [];
  for (let k = 0; k < nVeins; k++) starts.push(0.06 + (0.72 * (k + uniform(rng, 0.1, 0.9))) / nVeins);

  const sceneEdge =
    rng() < 0.4
      ? {
          u: uniform(rng, 0.2, 0.85),
          halfLength: uniform(rng, 0.08, 0.25),
          side: (rng() < 0.5 ? 1 : -1) as 1 | -1,
          depth: uniform(rng, 0.15, 0.4),
          strength: uniform(rng, 0.45, 0.85),
          colour: hsv(uniform(rng, 25, 66), uniform(rng, 0.55, 0.85), uniform(rng, 0.3, 0.7)),
        }
      : null;

  const outline = makeOutline(shape);
  const grey = uniform(rng, 0.42, 0.78);
  const warm = uniform(rng, -0.025, 0.06);
  const scene: LeafScene = {
    diseased: opts.diseased,
    shape,
    leafColour,
    leafArea: leafArea(shape, outline),
    shadeDir: uniform(rng, 0, 2 * Math.PI),
    shadeAmount: uniform(rng, 0.05, 0.25),
    fold: rng() < 0.6 ? uniform(rng, 0.04, 0.18) : 0,
    mottle,
    mottleAmount: uniform(rng, 0.03, 0.12),
    mottleYellow: uniform(rng, 0, 0.15),
    grain: uniform(rng, 0.01, 0.03),
    veins: {
      light: lightVeins,
      midrib: uniform(rng, 0.25, 0.5),
      midribWidth: uniform(rng, 0.008, 0.016),
      side: uniform(rng, 0.12, 0.3),
      sideWidth: uniform(rng, 0.004, 0.009),
      slope: uniform(rng, 0.5, 1.1),
      bend: uniform(rng, 0, 1.5),
      starts,
    },
    edge: sceneEdge,
    spots: [],
    background: {
      colour: [grey + warm, grey + warm * 0.4, grey - warm],
      gradDir: uniform(rng, 0, 2 * Math.PI),
      gradAmount: uniform(rng, 0.03, 0.18),
      vignette: uniform(rng, 0, 0.15),
      grain: uniform(rng, 0.006, 0.02),
    },
    shadow: {
      dx: uniform(rng, -0.05, 0.05),
      dy: uniform(rng, -0.05, 0.05),
      darkness: rng() < 0.8 ? uniform(rng, 0.1, 0.5) : 0,
      blur: uniform(rng, 0.01, 0.04),
    },
  };

  // Distractors both classes share: pale specks, small dark flecks without a halo, and brown
  // crumbs of soil on the background about the size of a lesion core. Dark or brown pixels
  // alone therefore do not give a leaf away; a dark core inside a yellow halo does.
  const nPale = rng() < 0.7 ? intBetween(rng, 1, 8) : 0;
  for (let i = 0; i < nPale; i++) {
    const r = uniform(rng, 0.008, 0.02);
    const at = placeOnLeaf(rng, scene, r, 0.85);
    if (at) scene.spots.push(spot("pale", at, r, mix(leafColour, [0.85, 0.88, 0.7], uniform(rng, 0.35, 0.75))));
  }
  const nDark = rng() < 0.6 ? intBetween(rng, 1, 4) : 0;
  for (let i = 0; i < nDark; i++) {
    const r = uniform(rng, 0.011, 0.019);
    const at = placeOnLeaf(rng, scene, r, 0.85);
    if (at) scene.spots.push(spot("dark", at, r, hsv(uniform(rng, 25, 95), uniform(rng, 0.35, 0.75), uniform(rng, 0.08, 0.25))));
  }
  const nDirt = rng() < 0.6 ? intBetween(rng, 1, 3) : 0;
  for (let i = 0; i < nDirt; i++) {
    const r = uniform(rng, 0.012, 0.028);
    const x = uniform(rng, r, 1 - r);
    const y = uniform(rng, r, 1 - r);
    const { u, v } = toLeaf(shape, x, y);
    const clear = outlineDistance(outline, u, v) * shape.length > r + 0.02;
    if (clear) scene.spots.push(spot("dirt", { x, y }, r, hsv(uniform(rng, 18, 45), uniform(rng, 0.3, 0.7), uniform(rng, 0.1, 0.3))));
  }

  if (opts.diseased) scene.spots.push(...sampleLesions(opts.seed, scene, opts.lesionScale ?? 1));
  return scene;
}

/**
 * 1-5 lesions from their own random stream (so adding them leaves the leaf unchanged).
 * Each is a round dark brown core (radius 2-3% of the image: about 1 px at 32 px, 1.3-1.9 px
 * at 64 px) inside a yellow halo 1.6-2.1 times as wide. Further lesions are only added while
 * the dark cores cover at most 3% of the leaf and cores with halos at most 10%.
 */
function sampleLesions(seed: number, scene: LeafScene, scale: number): Spot[] {
  const rng = makeRng(subSeed(seed, "lesions"));
  const wanted = [1, 1, 2, 2, 3, 3, 4, 5][intBetween(rng, 0, 7)];
  const out: Spot[] = [];
  let coreArea = 0;
  let haloArea = 0;
  for (let i = 0; i < wanted; i++) {
    const r = scale * uniform(rng, 0.02, 0.03);
    const halo = r * uniform(rng, 1.6, 2.1);
    const cap = scale * scale; // the area limits grow with the lesions, so scaling keeps their number
    if (out.length > 0 && (coreArea + Math.PI * r * r > 0.03 * cap * scene.leafArea || haloArea + Math.PI * halo * halo > 0.1 * cap * scene.leafArea)) break;
    const at = placeOnLeaf(rng, scene, halo, 0.75, out) ?? (out.length === 0 ? fromLeaf(scene.shape, 0.5, 0) : null);
    if (!at) continue;
    const s = spot("lesion", at, r, hsv(uniform(rng, 18, 38), uniform(rng, 0.5, 0.8), uniform(rng, 0.12, 0.28)));
    s.halo = halo;
    s.haloColour = hsv(uniform(rng, 48, 62), uniform(rng, 0.6, 0.85), clamp01(Math.max(...scene.leafColour) + uniform(rng, 0.12, 0.28)));
    s.haloStrength = uniform(rng, 0.5, 0.85);
    s.wobble = uniform(rng, 0, 0.2);
    s.wobblePhase = uniform(rng, 0, 2 * Math.PI);
    out.push(s);
    coreArea += Math.PI * r * r;
    haloArea += Math.PI * halo * halo;
  }
  return out;
}

function spot(kind: Spot["kind"], at: { x: number; y: number }, radius: number, colour: RGB): Spot {
  return { kind, x: at.x, y: at.y, radius, halo: 0, colour, haloColour: colour, haloStrength: 0, wobble: 0, wobblePhase: 0 };
}

/** A random point well inside the leaf and the image, away from `avoid`; null after 40 misses. */
function placeOnLeaf(rng: () => number, scene: LeafScene, radius: number, across: number, avoid: Spot[] = []): { x: number; y: number } | null {
  const s = scene.shape;
  for (let tries = 0; tries < 40; tries++) {
    const u = uniform(rng, 0.12, 0.88);
    const side = rng() < 0.5 ? 1 : -1;
    const w = halfWidth(s, u, side);
    const v = side * w * uniform(rng, 0, across);
    if ((w - Math.abs(v)) * s.length < radius * 1.2) continue;
    const p = fromLeaf(s, u, v);
    if (p.x < radius || p.y < radius || p.x > 1 - radius || p.y > 1 - radius) continue;
    if (avoid.some((o) => Math.hypot(o.x - p.x, o.y - p.y) < (o.halo || o.radius) + radius + 0.01)) continue;
    return p;
  }
  return null;
}

// ---- rendering ----------------------------------------------------------------------------

/** Bilinear lookup in the MOTTLE x MOTTLE grid, x and y in 0..1. */
function mottleAt(grid: number[], x: number, y: number): number {
  const gx = clamp01(x) * (MOTTLE - 1);
  const gy = clamp01(y) * (MOTTLE - 1);
  const x0 = Math.min(Math.floor(gx), MOTTLE - 2);
  const y0 = Math.min(Math.floor(gy), MOTTLE - 2);
  const fx = gx - x0;
  const fy = gy - y0;
  const at = (i: number, j: number) => grid[j * MOTTLE + i];
  return (at(x0, y0) * (1 - fx) + at(x0 + 1, y0) * fx) * (1 - fy) + (at(x0, y0 + 1) * (1 - fx) + at(x0 + 1, y0 + 1) * fx) * fy;
}

/** How strongly (0..1) a vein passes through leaf point (u, v), given pixels per leaf length. */
function veinStrength(scene: LeafScene, o: Outline, u: number, v: number, px: number): number {
  const vn = scene.veins;
  const av = Math.abs(v);
  const w = widthAt(o, u, v);
  if (w <= 0) return 0;
  // Midrib: tapers toward the tip; never thinner than about half a pixel so it survives at 32 px.
  const midW = Math.max(0.6, vn.midribWidth * px * (1 - 0.7 * u));
  let best = vn.midrib * clamp01(1 - (av * px) / midW) * (u < 0.97 ? 1 : 0);
  const sideW = Math.max(0.5, vn.sideWidth * px);
  for (let k = 0; k < vn.starts.length; k++) {
    // Side vein k leaves the midrib at u = start (offset a little on one side) and runs toward
    // the tip, bending forward: u = start + slope*|v| + bend*|v|^2.
    const start = vn.starts[k] + (v < 0 ? 0.02 : 0);
    const along = u - start - vn.slope * av - vn.bend * av * av;
    const grad = vn.slope + 2 * vn.bend * av;
    const dist = (Math.abs(along) / Math.sqrt(1 + grad * grad)) * px;
    const fade = 1 - av / w;
    if (fade > 0.08) best = Math.max(best, vn.side * clamp01(1 - dist / sideW) * fade);
  }
  return best;
}

/** Paint one spot over colour `col` at image point (x, y); lesions get their halo first. */
function paintSpot(col: RGB, sp: Spot, x: number, y: number, size: number): RGB {
  const dx = (x - sp.x) * size;
  const dy = (y - sp.y) * size;
  const reach = (sp.halo || sp.radius) * size + 1;
  if (Math.abs(dx) > reach || Math.abs(dy) > reach) return col;
  const d = Math.hypot(dx, dy);
  const r = sp.radius * size * (1 + sp.wobble * Math.sin(3 * Math.atan2(dy, dx) + sp.wobblePhase));
  if (sp.kind === "lesion") {
    const halo = sp.halo * size;
    const haloCover = sp.haloStrength * clamp01(halo + 0.5 - d) * (1 - 0.35 * smoothstep(r, halo, d));
    col = mix(col, sp.haloColour, haloCover);
  }
  return mix(col, sp.colour, clamp01(r + 0.5 - d) * (sp.kind === "pale" ? 0.8 : 1));
}

/** Draw a scene as size x size RGB bytes. `noiseSeed` drives only the per-pixel grain. */
export function renderLeaf(scene: LeafScene, size: number, noiseSeed: number): Uint8Array {
  const out = new Uint8Array(size * size * 3);
  const noise = makeRng(noiseSeed);
  const s = scene.shape;
  const outline = makeOutline(s);
  const px = s.length * size; // pixels per leaf length
  const bg = scene.background;
  const gdx = Math.cos(bg.gradDir);
  const gdy = Math.sin(bg.gradDir);
  const sdx = Math.cos(scene.shadeDir);
  const sdy = Math.sin(scene.shadeDir);
  const veinColour: RGB = scene.veins.light ? mix(scene.leafColour, [0.78, 0.86, 0.6], 0.75) : mix(scene.leafColour, [0.05, 0.1, 0.04], 0.6);
  const stemColour = mix(mix(scene.leafColour, [0.7, 0.75, 0.45], 0.45), [0.5, 0.38, 0.2], s.stemBrown);

  for (let j = 0; j < size; j++) {
    for (let i = 0; i < size; i++) {
      const x = (i + 0.5) / size;
      const y = (j + 0.5) / size;

      // Background: plain grey/beige, a lighting gradient, a vignette, the leaf's soft shadow.
      const light = 1 + bg.gradAmount * 2 * ((x - 0.5) * gdx + (y - 0.5) * gdy) - bg.vignette * ((x - 0.5) ** 2 + (y - 0.5) ** 2) * 2;
      let col: RGB = [bg.colour[0] * light, bg.colour[1] * light, bg.colour[2] * light];
      if (scene.shadow.darkness > 0) {
        const sh = toLeaf(s, x - scene.shadow.dx, y - scene.shadow.dy);
        const d = outlineDistance(outline, sh.u, sh.v) * s.length;
        const cover = clamp01(0.5 - d / scene.shadow.blur);
        col = mix(col, [0, 0, 0], scene.shadow.darkness * cover);
      }
      for (const sp of scene.spots) if (sp.kind === "dirt") col = paintSpot(col, sp, x, y, size);

      const { u, v } = toLeaf(s, x, y);

      // Stem: a short, slightly curved line beyond the base.
      if (s.stem > 0 && u < 0.03 && u > -s.stem) {
        const off = Math.abs(v - 0.3 * u * u) * px;
        const cover = clamp01(Math.max(0.6, 0.012 * px) + 0.5 - off);
        col = mix(col, stemColour, cover);
      }

      const alpha = clamp01(0.5 - outlineDistance(outline, u, v) * px);
      if (alpha > 0) {
        let leaf: RGB = scene.leafColour;
        // Blotchy brightness and a faint yellowing in places (both classes).
        const m = mottleAt(scene.mottle, x, y);
        leaf = mix(leaf, [0.75, 0.72, 0.3], scene.mottleYellow * Math.max(0, m));
        let shade = 1 + scene.mottleAmount * m + scene.shadeAmount * 2 * ((x - s.cx) * sdx + (y - s.cy) * sdy);
        shade *= 1 - scene.fold * smoothstep(0, 0.02, v);
        leaf = [leaf[0] * shade, leaf[1] * shade, leaf[2] * shade];

        const vein = veinStrength(scene, outline, u, v, px);
        if (vein > 0) leaf = mix(leaf, veinColour, vein);

        const e = scene.edge;
        if (e && Math.sign(v) === e.side) {
          const w = widthAt(outline, u, v);
          const inward = w > 0 ? 1 - Math.abs(v) / w : 0; // 0 at the margin, 1 at the midrib
          const amount = e.strength * (1 - smoothstep(0, e.depth, inward)) * (1 - smoothstep(0, e.halfLength, Math.abs(u - e.u)));
          leaf = mix(leaf, e.colour, amount);
        }

        for (const sp of scene.spots) if (sp.kind !== "dirt") leaf = paintSpot(leaf, sp, x, y, size);

        const g = scene.grain * gauss(noise);
        col = mix(col, [leaf[0] + g, leaf[1] + g, leaf[2] + g], alpha);
      }

      const o = (j * size + i) * 3;
      for (let c = 0; c < 3; c++) out[o + c] = Math.round(clamp01(col[c] + bg.grain * gauss(noise)) * 255);
    }
  }
  return out;
}

/** One synthetic leaf photo: size*size*3 RGB bytes, row-major. Same options, same bytes. */
export function generateLeaf(opts: LeafOptions): Uint8Array {
  if (!Number.isInteger(opts.seed)) throw new RangeError(`seed must be an integer, got ${opts.seed}`);
  if (!Number.isInteger(opts.size) || opts.size < 8 || opts.size > 1024) throw new RangeError(`size must be an integer in 8..1024, got ${opts.size}`);
  return renderLeaf(sampleLeaf(opts), opts.size, subSeed(opts.seed, "noise"));
}

// ---- writing a dataset --------------------------------------------------------------------

export interface SynthDatasetOptions {
  outDir: string;
  /** Images per class (default 200). */
  perClass?: number;
  /** Pixels (default 64). */
  size?: number;
  seed?: number;
  format?: "png" | "jpeg";
  /** Lesion size relative to the default; see LeafOptions. */
  lesionScale?: number;
  /** Called after each image is written. */
  onProgress?: (done: number, total: number) => void;
}

export interface SynthDatasetResult {
  outDir: string;
  classes: { name: string; diseased: boolean; dir: string; files: string[] }[];
  written: number;
  /** Stale `leaf_NNNNN.*` files from an earlier, larger or other-format run that were deleted. */
  removed: number;
}

/** The seed of image `index` of a class: asking for more images keeps the first ones identical. */
export function imageSeed(seed: number, className: string, index: number): number {
  return subSeed(seed, `${className}/${index}`);
}

/** Our own file names: other files in a class folder are the user's and are kept. */
const LEAF_FILE = /^leaf_\d{5}\.(png|jpg)$/;

/**
 * Write `<outDir>/<class>/leaf_00000.png ...` for both classes (the PlantVillage folder layout).
 * The images go to a hidden sibling folder first and each class folder is moved into place only
 * when the whole set is written, so an interrupted run never leaves a partial class that a split
 * would take for the dataset. Re-running into the same folder replaces the leaf_ files (the same
 * seed gives the same bytes) and keeps anything else in it.
 */
export async function writeSyntheticDataset(opts: SynthDatasetOptions): Promise<SynthDatasetResult> {
  const { outDir, perClass = 200, size = 64, seed = 1, format = "png", lesionScale = 1, onProgress } = opts;
  if (!(lesionScale > 0 && lesionScale <= 4)) throw new RangeError(`lesionScale must be in (0, 4], got ${lesionScale}`);
  if (!Number.isInteger(perClass) || perClass < 1 || perClass > 99999) throw new RangeError(`perClass must be an integer in 1..99999, got ${perClass}`);
  if (!Number.isInteger(seed)) throw new RangeError(`seed must be an integer, got ${seed}`);
  if (format !== "png" && format !== "jpeg") throw new RangeError(`format must be png or jpeg, got ${String(format)}`);
  const ext = format === "png" ? ".png" : ".jpg";

  const staging = await stagingFolder(outDir);
  try {
    const total = 2 * perClass;
    let done = 0;
    const classes: SynthDatasetResult["classes"] = [];
    for (const diseased of [false, true]) {
      const name = diseased ? SYNTH_CLASSES.diseased : SYNTH_CLASSES.healthy;
      const files = Array.from({ length: perClass }, (_, i) => `leaf_${String(i).padStart(5, "0")}${ext}`);
      await writeClass(path.join(staging, name), files, { seed, size, diseased, lesionScale, format, name }, () => onProgress?.(++done, total));
      classes.push({ name, diseased, dir: path.join(outDir, name), files: files.map((f) => path.join(outDir, name, f)) });
    }
    let removed = 0;
    for (const c of classes) removed += await moveIntoPlace(path.join(staging, c.name), c.dir);
    return { outDir, classes, written: total, removed };
  } finally {
    await rm(staging, { recursive: true, force: true });
  }
}

/** Encode one class's images into `dir`, a few at a time: sharp works off the main thread, so this overlaps. */
async function writeClass(
  dir: string,
  files: string[],
  o: { seed: number; size: number; diseased: boolean; lesionScale: number; format: "png" | "jpeg"; name: string },
  onWritten: () => void,
): Promise<void> {
  await mkdir(dir, { recursive: true });
  const batch = 16;
  for (let start = 0; start < files.length; start += batch) {
    const jobs = [];
    for (let i = start; i < Math.min(start + batch, files.length); i++) {
      const pixels = generateLeaf({ seed: imageSeed(o.seed, o.name, i), size: o.size, diseased: o.diseased, lesionScale: o.lesionScale });
      const img = sharp(pixels, { raw: { width: o.size, height: o.size, channels: 3 } });
      const encoded = o.format === "png" ? img.png({ compressionLevel: 9 }) : img.jpeg({ quality: 92 });
      jobs.push(encoded.toFile(path.join(dir, files[i])).then(onWritten));
    }
    await Promise.all(jobs);
  }
}

/**
 * A fresh hidden folder beside outDir (same file system, so moving out of it is a rename), named
 * after our pid; those of earlier runs that were killed are removed.
 */
async function stagingFolder(outDir: string): Promise<string> {
  const parent = path.dirname(path.resolve(outDir));
  const prefix = `.${path.basename(path.resolve(outDir))}.synth-`;
  await mkdir(parent, { recursive: true });
  for (const entry of await readdir(parent)) {
    const pid = entry.startsWith(prefix) ? Number(entry.slice(prefix.length)) : NaN;
    if (Number.isInteger(pid) && !processAlive(pid)) await rm(path.join(parent, entry), { recursive: true, force: true });
  }
  const staging = path.join(parent, `${prefix}${process.pid}`);
  await rm(staging, { recursive: true, force: true });
  await mkdir(staging);
  return staging;
}

/**
 * Replace the class folder `target` with the finished `fresh` one. Files of the old folder that
 * are not ours move over; our old leaf_ files that the new set lacks are counted as removed. The
 * old folder goes into `fresh`'s parent (the staging folder), which the caller deletes.
 */
async function moveIntoPlace(fresh: string, target: string): Promise<number> {
  const old = await readdir(target).catch(() => undefined);
  if (!old) {
    await mkdir(path.dirname(target), { recursive: true });
    await rename(fresh, target);
    return 0;
  }
  const kept = new Set(await readdir(fresh));
  let removed = 0;
  for (const f of old) {
    if (!LEAF_FILE.test(f)) await rename(path.join(target, f), path.join(fresh, f));
    else if (!kept.has(f)) removed++;
  }
  const aside = `${fresh}.old`;
  await rename(target, aside);
  await rename(fresh, target);
  return removed;
}
