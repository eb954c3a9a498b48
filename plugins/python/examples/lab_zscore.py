#!/usr/bin/python3
"""A lab's own function as a voxflow stage kind, in about 30 lines.

The lab already has zscore_responses(); the class declares its params,
input and output, and serve() makes the script a voxflow plugin:

    stages:
      z: {uses: "plugin:plugins/python/examples/lab_zscore.py", inputs: {responses: make.responses}, with: {clip: 3.0}}
"""
import json, os, sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import numpy as np  # noqa: E402
from voxflow_plugin import Param, Port, Stage, serve  # noqa: E402


def zscore_responses(y, clip):  # the lab's own code, unchanged
    z = (y - y.mean(axis=0)) / (y.std(axis=0) + 1e-8)
    return np.clip(z, -clip, clip) if clip > 0 else z


class ZScore(Stage):
    kind = "lab-zscore"
    doc = "z-score each voxel's responses (columns of an images x voxels .npy), clipping at +-clip"
    params = [Param("clip", "float", default=0.0, min=0, doc="clip |z| at this value; 0: no clipping")]
    inputs = [Port("responses", doc="float32 .npy, images x voxels")]
    outputs = [Port("zscored", doc="float32 .npy, same shape")]

    def run(self, req):
        y = np.load(req.input("responses")).astype(np.float64)
        req.progress("z-score", 0, y.shape[1], "voxel")
        z = zscore_responses(y, req.params["clip"])
        with open(os.path.join(req.out_dir, "zscored"), "wb") as f:
            np.save(f, z.astype(np.float32))
        req.log.write("z-scored {} images x {} voxels\n".format(*y.shape))
        with open(os.path.join(req.out_dir, "metrics.json"), "w") as f:
            json.dump({"clipped_fraction": float(np.mean(np.abs(z) >= req.params["clip"])) if req.params["clip"] > 0 else 0.0}, f)
        req.progress("z-score", y.shape[1], y.shape[1], "voxel")


if __name__ == "__main__":
    serve(ZScore())
