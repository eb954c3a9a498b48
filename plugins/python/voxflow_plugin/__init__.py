"""voxflow_plugin: write voxflow stage kinds in Python.

A plugin is an executable script that defines one class per stage kind and
calls serve(), as a Go plugin's main calls plugins.Serve:

    #!/usr/bin/python3
    from voxflow_plugin import Stage, Param, Port, serve

    class Scale(Stage):
        kind = "scale"
        version = "1"
        doc = "multiply an .npy array by a factor"
        params = [Param("factor", "float", default=2.0)]
        inputs = [Port("array")]
        outputs = [Port("scaled")]

        def run(self, req):
            ...  # read req.input("array"), write under req.out_dir

    if __name__ == "__main__":
        serve(Scale())

voxflow starts the script, checks go-plugin's handshake, asks it to describe
its kinds and hands it stage instances. Artifacts cross as paths, so the
plugin and voxflow share a filesystem. Dependencies: grpcio and protobuf
(Debian's python3-grpcio and python3-protobuf) and nothing else.
"""

from .stage import Artifact, Param, Port, Request, Resources, Stage, StageCancelled
from .server import serve

__all__ = ["Artifact", "Param", "Port", "Request", "Resources", "Stage", "StageCancelled", "serve"]
