// Chart data: one bucketed-curves request for all runs of a chart, turned into curves
// {x, y, lo, hi}: a run's bucket gives its last point and its y range; a group's curve is
// the mean of its runs per bucket, with the runs' min and max as its band (and their
// standard deviation, sd, for the other band).
import { api } from "./api.js";

export async function fetchCurves({ curves, metric, stream, xAxis, buckets, range }, signal) {
  const paths = curves.flatMap((curve) => curve.paths);
  const answer = await api.buckets(
    { paths, stream, key: metric, x_axis: xAxis, buckets, x_min: range ? range[0] : null, x_max: range ? range[1] : null },
    signal,
  );
  let at = 0;
  const perCurve = curves.map((curve) => {
    const runs = answer.buckets.slice(at, at + curve.paths.length);
    at += curve.paths.length;
    return runs;
  });
  const grid = gridOf(answer.buckets, buckets, range);
  return curves.map((curve, i) =>
    curve.paths.length === 1 && !curve.group ? runCurve(perCurve[i][0]) : groupCurve(perCurve[i], grid),
  );
}

function runCurve(points) {
  return {
    x: points.map((b) => b.x),
    y: points.map((b) => b.y),
    lo: points.map((b) => b.y_min),
    hi: points.map((b) => b.y_max),
  };
}

function gridOf(runs, size, range) {
  let lo = range ? range[0] : Infinity;
  let hi = range ? range[1] : -Infinity;
  if (!range) {
    for (const points of runs) {
      if (points.length === 0) continue;
      lo = Math.min(lo, points[0].x);
      hi = Math.max(hi, points[points.length - 1].x);
    }
  }
  return { lo, hi, size };
}

// Each run's last point in each bucket of the grid; then per bucket the mean over the runs
// that have one, their least and greatest value, and their (population) standard deviation.
function groupCurve(runs, { lo, hi, size }) {
  const width = hi > lo ? (hi - lo) / size : 1;
  const cells = new Map();
  for (const points of runs) {
    const last = new Map();
    for (const b of points) {
      const cell = Math.min(size - 1, Math.max(0, Math.floor((b.x - lo) / width)));
      last.set(cell, b);
    }
    for (const [cell, b] of last) {
      if (!cells.has(cell)) cells.set(cell, []);
      cells.get(cell).push(b);
    }
  }
  const order = [...cells.keys()].sort((a, b) => a - b);
  const curve = { x: [], y: [], lo: [], hi: [], sd: [] };
  for (const cell of order) {
    const points = cells.get(cell);
    const ys = points.map((b) => b.y);
    curve.x.push(Math.max(...points.map((b) => b.x)));
    const mean = ys.reduce((s, y) => s + y, 0) / ys.length;
    curve.y.push(mean);
    curve.sd.push(Math.sqrt(ys.reduce((s, y) => s + (y - mean) ** 2, 0) / ys.length));
    curve.lo.push(Math.min(...ys));
    curve.hi.push(Math.max(...ys));
  }
  return curve;
}

// The index of the point of xs nearest to x (xs sorted), or -1 when empty.
export function nearest(xs, x) {
  if (xs.length === 0) return -1;
  let lo = 0;
  let hi = xs.length - 1;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (xs[mid] < x) lo = mid + 1;
    else hi = mid;
  }
  if (lo > 0 && Math.abs(xs[lo - 1] - x) <= Math.abs(xs[lo] - x)) return lo - 1;
  return lo;
}
