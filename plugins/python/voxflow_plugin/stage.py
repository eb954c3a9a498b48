"""The stage contract, as in Go's package stages: what a kind declares
(Stage, Param, Port) and what one instance gets (Request)."""

import threading

# Param types, as stages.Type* in Go.
TYPES = ("string", "int", "float", "bool", "[]string", "[]float", "[]int", "map", "any", "path", "[]path")


class Param:
    """One declared parameter of a stage kind (Go: stages.ParamSpec).

    type is one of TYPES. default is a plain value (str, bool, int, float,
    list, dict) used when a spec leaves the param out; a param without a
    default must be required. min/max bound numbers, enum lists the allowed
    strings. A "path" param names a file or directory outside the cache
    whose content voxflow puts in the key; not_paths lists words it may
    hold instead (pretrain's init "random").
    """

    def __init__(self, name, type, default=None, required=False, doc="", min=None, max=None, enum=None, not_paths=None):
        if type not in TYPES:
            raise ValueError("param {}: type {!r}, expected one of {}".format(name, type, ", ".join(TYPES)))
        self.name, self.type, self.default, self.required = name, type, default, required
        self.doc, self.min, self.max, self.enum = doc, min, max, list(enum or [])
        # For a path param: values that are words, not files ("random").
        self.not_paths = list(not_paths or [])


class Port:
    """One named input or output (Go: stages.PortSpec). many: an input
    that takes several artifacts; optional: may be left out of a spec."""

    def __init__(self, name, doc="", many=False, optional=False):
        self.name, self.doc, self.many, self.optional = name, doc, many, optional


class Artifact:
    """An input artifact: a read-only file or directory and where it came
    from (the producing stage, its output port and foreach labels)."""

    def __init__(self, path, stage="", output="", labels=None, digest=""):
        self.path, self.stage, self.output = path, stage, output
        self.labels, self.digest = dict(labels or {}), digest

    def __repr__(self):
        return "Artifact({!r}, stage={!r})".format(self.path, self.stage)


class Resources:
    """What the instance was granted."""

    def __init__(self, cpus=0, memory_mb=0, gpus=0):
        self.cpus, self.memory_mb, self.gpus = cpus, memory_mb, gpus


class StageCancelled(Exception):
    """Raised by Request.check_cancelled when voxflow cancelled the run."""


class Request:
    """Everything one stage instance gets (Go: stages.Request).

    inputs maps port -> list of Artifact; params holds every declared param
    with defaults applied (ints as int, floats as float); out_dir is an
    empty directory owned by the instance: write output port X at
    out_dir/X, and optionally out_dir/metrics.json (numeric leaves become
    metrics). log is a text stream stored with the execution; progress()
    reports progress; cancelled is set when voxflow cancels the run (Ctrl-C,
    timeout): long loops should call check_cancelled().
    """

    def __init__(self, instance, inputs, params, labels, out_dir, resources, log, progress, cancelled=None):
        self.instance, self.inputs, self.params, self.labels = instance, inputs, params, labels
        self.out_dir, self.resources, self.log = out_dir, resources, log
        self._progress = progress
        self.cancelled = cancelled or threading.Event()

    def input(self, port):
        """The single artifact path of an input port."""
        arts = self.inputs.get(port, [])
        if len(arts) != 1:
            raise ValueError("input {}: {} artifacts, expected exactly one".format(port, len(arts)))
        return arts[0].path

    def progress(self, phase, done=0.0, total=0.0, unit="", rate=0.0, message=""):
        """Reports progress: phase (e.g. "epoch 3/20"), done of total in
        unit (e.g. "img"), rate in unit/s, and a short message."""
        self._progress(phase, float(done), float(total), unit, float(rate), message)

    def check_cancelled(self):
        """Raises StageCancelled when voxflow has cancelled the run."""
        if self.cancelled.is_set():
            raise StageCancelled("cancelled by voxflow")


class Stage:
    """A stage kind. Subclasses set kind, version, doc, params, inputs,
    outputs (class attributes, or override describe()) and implement
    run(req). run must be safe to call from several threads at once: voxflow
    may run several instances of a kind in one plugin process."""

    kind = ""
    version = "1"
    doc = ""
    params = []
    inputs = []
    outputs = []
    # Plugins always run in a process of their own; declared for `voxflow
    # stages`.
    isolate = "process"

    def describe(self):
        """Returns the kind's declaration; by default the class attributes."""
        return self

    def run(self, req):
        raise NotImplementedError("stage {} does not implement run".format(self.kind))
