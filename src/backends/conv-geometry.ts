// The sizes and padding of one 2-D convolution, as tfjs computes them, in the plain form our
// kernels (cpu and webgpu) take; and which convolutions they handle at all.
import * as tf from "@tensorflow/tfjs";

type Shape4 = [number, number, number, number];
type ConvPad = "same" | "valid" | number | tf.backend_util.ExplicitPadding;
type RoundingMode = "floor" | "round" | "ceil" | undefined;

/** Everything our loops and shaders need about one 2-D convolution (NHWC input, HWIO filter). */
export interface ConvGeometry {
  batch: number;
  inHeight: number;
  inWidth: number;
  inChannels: number;
  outHeight: number;
  outWidth: number;
  outChannels: number;
  filterHeight: number;
  filterWidth: number;
  strideHeight: number;
  strideWidth: number;
  padTop: number;
  padLeft: number;
}

/** Shapes and padding as tfjs computes them, or undefined for what we leave to the stock kernel. */
export function convInfoIfSupported(
  inShape: Shape4,
  filterShape: Shape4,
  attrs: tf.NamedAttrMap,
): tf.backend_util.Conv2DInfo | undefined {
  const dataFormat = (attrs.dataFormat as string | undefined) ?? "NHWC";
  if (dataFormat !== "NHWC" || inShape?.length !== 4 || filterShape?.length !== 4) return undefined;
  const dilations = (attrs.dilations as number | [number, number] | undefined) ?? 1;
  const info = tf.backend_util.computeConv2DInfo(
    inShape,
    filterShape,
    attrs.strides as number | [number, number],
    dilations,
    attrs.pad as ConvPad,
    attrs.dimRoundingMode as RoundingMode,
    false,
    "channelsLast",
  );
  if (info.dilationHeight !== 1 || info.dilationWidth !== 1) return undefined;
  return info;
}

export function geometryOf(info: tf.backend_util.Conv2DInfo): ConvGeometry {
  return {
    batch: info.batchSize,
    inHeight: info.inHeight,
    inWidth: info.inWidth,
    inChannels: info.inChannels,
    outHeight: info.outHeight,
    outWidth: info.outWidth,
    outChannels: info.outChannels,
    filterHeight: info.filterHeight,
    filterWidth: info.filterWidth,
    strideHeight: info.strideHeight,
    strideWidth: info.strideWidth,
    padTop: info.padInfo.top,
    padLeft: info.padInfo.left,
  };
}
