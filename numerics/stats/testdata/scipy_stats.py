"""Reference for stats.go. Usage: scipy_stats.py DIR, reading DIR/d*.npy
(paired differences) and DIR/a.npy, DIR/b.npy (n x v); writes
DIR/wilcoxon.npy ([stat, p] per d file, in name order) and DIR/r.npy."""
import glob
import sys

import numpy as np
from scipy.stats import wilcoxon

d = sys.argv[1]
out = []
for f in sorted(glob.glob(f"{d}/d*.npy")):
    res = wilcoxon(np.load(f), zero_method="wilcox", correction=False, method="approx")
    out.append([res.statistic, res.pvalue])
np.save(f"{d}/wilcoxon.npy", np.array(out, dtype=np.float64))
a, b = np.load(f"{d}/a.npy"), np.load(f"{d}/b.npy")
r = np.array([np.corrcoef(a[:, j], b[:, j])[0, 1] for j in range(a.shape[1])])
np.save(f"{d}/r.npy", r)
