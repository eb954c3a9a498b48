"""Independent reference for the paired statistics of stats.go.

Usage: paired_stats.py DIR. Reads DIR/counts.npy (B x n resample
multiplicities, as BootstrapCounts draws them), DIR/obs.npy, DIR/pa.npy,
DIR/pb.npy (n x v: test responses and two networks' predictions) and
DIR/x*.npy (per-subject differences). Writes DIR/boot.npy ([ci_lo, ci_hi,
p_boot]: the paired bootstrap of mean-r(a) - mean-r(b) with the resamples
expanded row by row) and DIR/group.npy ([t, p, p_signflip] per x file in
name order: scipy.stats.ttest_1samp and brute-force sign flips)."""
import glob
import itertools
import sys

import numpy as np
from scipy.stats import ttest_1samp

d = sys.argv[1]
counts = np.load(f"{d}/counts.npy")
obs, pa, pb = (np.load(f"{d}/{k}.npy") for k in ("obs", "pa", "pb"))


def mean_r(pred, o):
    return np.mean([np.corrcoef(pred[:, j], o[:, j])[0, 1] for j in range(o.shape[1])])


diffs = []
for w in counts:
    rows = np.repeat(np.arange(len(w)), w.astype(int))  # voxels kept together
    diffs.append(mean_r(pa[rows], obs[rows]) - mean_r(pb[rows], obs[rows]))
diffs = np.array(diffs)
B = len(diffs)
p = min(1.0, 2 * (min(np.sum(diffs <= 0), np.sum(diffs >= 0)) + 1) / (B + 1))
lo, hi = np.percentile(diffs, [2.5, 97.5])
np.save(f"{d}/boot.npy", np.array([lo, hi, p]))

out = []
for f in sorted(glob.glob(f"{d}/x*.npy")):
    x = np.load(f)
    res = ttest_1samp(x, 0.0)
    obs_m = abs(x.mean())
    flips = [abs((np.array(s) * x).mean()) >= obs_m - 1e-12 * (1 + obs_m)
             for s in itertools.product([1, -1], repeat=len(x))]
    out.append([res.statistic, res.pvalue, np.mean(flips)])
np.save(f"{d}/group.npy", np.array(out, dtype=np.float64))
