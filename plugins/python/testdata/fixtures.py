#!/usr/bin/python3
"""Test fixture: stage kinds that make an array, fail, print and hang, for
the SDK's tests (cmd/voxflow/python_plugin_e2e_test.go)."""
import os, sys, time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import numpy as np  # noqa: E402
from voxflow_plugin import Param, Port, Stage, serve  # noqa: E402


class Responses(Stage):
    kind = "responses"
    outputs = [Port("responses")]

    def run(self, req):
        with open(os.path.join(req.out_dir, "responses"), "wb") as f:
            np.save(f, np.arange(60, dtype=np.float32).reshape(12, 5) ** 1.5)


def parse_threshold(v):
    raise ValueError("bad threshold {}: expected a number in [0, 1]".format(v))


class Raise(Stage):
    kind = "raise"
    params = [Param("threshold", "int", default=42)]

    def run(self, req):
        req.log.write("about to parse\n")
        parse_threshold(req.params["threshold"])


class Printer(Stage):
    kind = "printer"
    params = [Param("n", "int", default=3), Param("scale", "float", default=1.5)]

    def run(self, req):
        print("stdout of the plugin reaches the host")
        sys.stdout.flush()
        with open(os.path.join(req.out_dir, "params.txt"), "w") as f:
            # Types survive the wire: an int stays int, a float float.
            f.write("{} {} {} {}\n".format(type(req.params["n"]).__name__, req.params["n"],
                                           type(req.params["scale"]).__name__, req.params["scale"]))
        for i in range(req.params["n"]):
            req.progress("step", i + 1, req.params["n"], "it")


class Hang(Stage):
    kind = "hang"

    def run(self, req):
        with open(os.path.join(os.environ["HANG_PID_DIR"], "pid"), "w") as f:
            f.write(str(os.getpid()))
        while True:
            req.check_cancelled()
            time.sleep(0.05)


if __name__ == "__main__":
    serve(Responses(), Raise(), Printer(), Hang())
