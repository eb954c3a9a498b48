"""Peer timing for BenchmarkFitCV: scikit-learn's RidgeCV with one alpha per
target on the same job sizes. Run with Debian's python:

    /usr/bin/python3 stages/ridge/testdata/bench_sklearn.py [n p v nt]

(default: the issue's full size 9000 1000 20000 1000). scikit-learn only
offers alpha_per_target with its efficient leave-one-out CV (cv=None), not
with K-fold, so this peer does less work per alpha than 5-fold CV would;
it is float64 (sklearn upcasts float32 in RidgeCV's GCV path). Prints wall
time, peak RSS, and a same-run float32 matmul rate for reference.
"""
import resource
import sys
import time

import numpy as np
from sklearn.linear_model import RidgeCV
from sklearn.preprocessing import StandardScaler

n, p, v, nt = (int(a) for a in sys.argv[1:5]) if len(sys.argv) >= 5 else (9000, 1000, 20000, 1000)
rng = np.random.default_rng(1)
x = rng.standard_normal((n + nt, p), dtype=np.float32)
w = rng.standard_normal((p, v), dtype=np.float32) * 0.05
y = x[:n] @ w + rng.standard_normal((n, v), dtype=np.float32)
del w

a = rng.standard_normal((2048, 2048), dtype=np.float32)
a @ a
t0 = time.perf_counter()
for _ in range(5):
    a @ a
gemm = 5 * 2 * 2048**3 / (time.perf_counter() - t0) / 1e9
del a

alphas = np.logspace(-1, 6, 15)
t0 = time.perf_counter()
sc = StandardScaler().fit(x[:n])
m = RidgeCV(alphas=alphas, alpha_per_target=True).fit(sc.transform(x[:n]), y)
pred = m.predict(sc.transform(x[n:]))
wall = time.perf_counter() - t0
rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(f"sklearn RidgeCV(alpha_per_target=True, cv=None) n={n} p={p} v={v} nt={nt} alphas=15: "
      f"{wall:.1f} s, peak RSS {rss:.0f} MB, numpy sgemm {gemm:.0f} GFLOP/s")
