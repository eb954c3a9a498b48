"""References for reduce.go. Usage:
  reduce_reference.py pool DIR 0   reads every DIR/maps_I_N.npy (n x C x H x W,
                                   float32), writes DIR/pooled_I.npy with torch's
                                   adaptive_avg_pool2d to N x N, flattened C x N x N;
                                   exits 3 without torch
  reduce_reference.py pca DIR K    reads DIR/{x,xtest}.npy, writes DIR/{tr,te}.npy
                                   with sklearn's PCA(K) fitted on x only
"""
import glob
import os
import sys

import numpy as np

mode, d, k = sys.argv[1], sys.argv[2], int(sys.argv[3])
if mode == "pool":
    try:
        import torch
    except ImportError:
        sys.exit(3)
    for f in glob.glob(f"{d}/maps_*_*.npy"):
        _, i, n = os.path.basename(f)[:-4].split("_")
        out = torch.nn.functional.adaptive_avg_pool2d(torch.from_numpy(np.load(f)), (int(n), int(n)))
        np.save(f"{d}/pooled_{i}.npy", out.reshape(out.shape[0], -1).numpy())
else:
    from sklearn.decomposition import PCA

    x, xt = np.load(f"{d}/x.npy"), np.load(f"{d}/xtest.npy")
    pca = PCA(n_components=k, svd_solver="full").fit(x)
    np.save(f"{d}/tr.npy", pca.transform(x))
    np.save(f"{d}/te.npy", pca.transform(xt))
