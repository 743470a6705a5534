// Smoothing of a curve's y values (x in the same order), as in the common trackers.

export const SMOOTHERS = {
  none: null,
  ema: "EMA",
  twema: "time-weighted EMA",
  average: "running average",
};

export function smooth(kind, weight, xs, ys) {
  if (kind === "ema") return ema(ys, weight);
  if (kind === "twema") return timeWeightedEma(xs, ys, weight);
  if (kind === "average") return runningAverage(ys, Math.max(1, Math.round(weight * 100)));
  return ys;
}

// Debiased exponential moving average (TensorBoard's).
function ema(ys, weight) {
  const out = new Array(ys.length);
  let last = 0;
  let debias = 0;
  for (let i = 0; i < ys.length; i++) {
    const y = ys[i];
    if (y == null || !Number.isFinite(y)) {
      out[i] = y;
      continue;
    }
    last = last * weight + (1 - weight) * y;
    debias = debias * weight + (1 - weight);
    out[i] = last / debias;
  }
  return out;
}

// An EMA whose decay follows the x distance between points, so that sparse and dense
// stretches of a curve smooth alike: the weight applies per 1/1000 of the x range.
function timeWeightedEma(xs, ys, weight) {
  const out = new Array(ys.length);
  const span = xs.length > 1 ? xs[xs.length - 1] - xs[0] : 1;
  const unit = span > 0 ? span / 1000 : 1;
  let last = 0;
  let debias = 0;
  let prevX = null;
  for (let i = 0; i < ys.length; i++) {
    const y = ys[i];
    if (y == null || !Number.isFinite(y)) {
      out[i] = y;
      continue;
    }
    const w = prevX == null ? 0 : Math.pow(weight, (xs[i] - prevX) / unit);
    prevX = xs[i];
    last = last * w + (1 - w) * y;
    debias = debias * w + (1 - w);
    out[i] = last / debias;
  }
  return out;
}

// The mean of the last `size` finite values.
function runningAverage(ys, size) {
  const out = new Array(ys.length);
  const window = [];
  let sum = 0;
  for (let i = 0; i < ys.length; i++) {
    const y = ys[i];
    if (y == null || !Number.isFinite(y)) {
      out[i] = y;
      continue;
    }
    window.push(y);
    sum += y;
    if (window.length > size) sum -= window.shift();
    out[i] = sum / window.length;
  }
  return out;
}
