"""serve(): the plugin side of voxflow's go-plugin protocol.

go-plugin's host starts the plugin with a magic cookie in its environment,
reads one handshake line from its stdout
(CORE|APP-PROTOCOL|tcp|ADDRESS|grpc), checks the gRPC health service, and
then calls voxflow's Stages service. It also streams the plugin's stdout
through go-plugin's GRPCStdio service (stdout itself is discarded after the
handshake line) and asks for a shutdown through GRPCController. stderr goes
to the host directly.
"""

import json
import os
import queue
import signal
import sys
import threading
import traceback
from concurrent import futures

import grpc

from ._proto import goplugin_pb2, health_pb2, stage_pb2
from .stage import Artifact, Request, Resources, StageCancelled

# These must equal plugins.HandshakeConfig() and plugins.ProtocolVersion in
# Go; a host refuses a plugin of another protocol version.
CORE_PROTOCOL_VERSION = 1
PROTOCOL_VERSION = 1
MAGIC_COOKIE_KEY = "VOXFLOW_PLUGIN_MAGIC_COOKIE"
MAGIC_COOKIE_VALUE = "8c1f6e2a-voxflow-stage-plugin"

# go-plugin's host checks the health of this service name.
HEALTH_SERVICE = "plugin"

# How much of a failing stage's exception reaches the user's one line; the
# traceback goes to the stage's log.
MAX_ERROR = 400


def _encode_default(v):
    # Floats keep a '.' or exponent in JSON, so the host reads 2.0 as a
    # float and 2 as an int, as Go's typed-number codec does.
    return "" if v is None else json.dumps(v, allow_nan=False)


def _describe_pb(stage):
    d = stage.describe()
    out = stage_pb2.Description(kind=d.kind, version=str(d.version), doc=d.doc, isolate=d.isolate)
    for p in d.params:
        ps = stage_pb2.ParamSpec(name=p.name, type=p.type, default_json=_encode_default(p.default),
                                 required=p.required, doc=p.doc, enum=p.enum, not_paths=p.not_paths)
        if p.min is not None:
            ps.min = float(p.min)
        if p.max is not None:
            ps.max = float(p.max)
        out.params.append(ps)
    for src, dst in ((d.inputs, out.inputs), (d.outputs, out.outputs)):
        for port in src:
            dst.append(stage_pb2.PortSpec(name=port.name, doc=port.doc, many=port.many, optional=port.optional))
    return out


def one_line(exc):
    """The user's one line for a failed stage: the exception's type and the
    first line of its message, bounded."""
    msg = str(exc).strip().splitlines()
    line = "{}: {}".format(type(exc).__name__, msg[0]) if msg else type(exc).__name__
    if len(line) > MAX_ERROR:
        line = line[:MAX_ERROR] + "..."
    return line + " (traceback in the stage's log)"


class _LogStream:
    """The text stream a stage writes its log to: each write becomes a log
    event on the run's stream."""

    def __init__(self, events):
        self._events = events

    def write(self, s):
        if isinstance(s, str):
            s = s.encode("utf-8", "replace")
        if s:
            self._events.put(stage_pb2.RunEvent(log=bytes(s)))
        return len(s)

    def flush(self):
        pass

    def writable(self):
        return True


_DONE = object()


class _Stages:
    """voxflow.plugins.v1.Stages."""

    def __init__(self, kinds):
        self.kinds = kinds

    def Describe(self, request, context):
        return stage_pb2.DescribeResponse(stages=[_describe_pb(s) for s in self.kinds.values()])

    def Run(self, request, context):
        stage = self.kinds.get(request.kind)
        if stage is None:
            yield stage_pb2.RunEvent(result=stage_pb2.Result(
                error="plugin serves no kind {!r} (it serves {})".format(request.kind, ", ".join(sorted(self.kinds)))))
            return
        events = queue.Queue()
        cancelled = threading.Event()
        # Called when the call ends for any reason, the host's cancellation
        # (Ctrl-C, timeout) included.
        context.add_callback(cancelled.set)
        log = _LogStream(events)

        def progress(phase, done, total, unit, rate, message):
            events.put(stage_pb2.RunEvent(progress=stage_pb2.Progress(
                phase=phase, done=done, total=total, unit=unit, rate=rate, message=message)))

        try:
            params = json.loads(request.params_json or "{}")
        except ValueError as e:
            yield stage_pb2.RunEvent(result=stage_pb2.Result(error="params_json: {}".format(e)))
            return
        inputs = {port: [Artifact(a.path, a.stage, a.output, dict(a.labels), a.digest) for a in arts.items]
                  for port, arts in request.inputs.items()}
        res = request.resources
        req = Request(request.instance, inputs, params, dict(request.labels), request.out_dir,
                      Resources(res.cpus, res.memory_mb, res.gpus), log, progress, cancelled)
        outcome = {}

        def work():
            try:
                stage.run(req)
            except StageCancelled as e:
                outcome["error"] = "cancelled: {}".format(e)
            except BaseException as e:  # noqa: B036 - a stage's failure of any kind is reported, never fatal
                log.write(traceback.format_exc())
                outcome["error"] = one_line(e)
            events.put(_DONE)

        threading.Thread(target=work, name="stage " + request.instance, daemon=True).start()
        while True:
            ev = events.get()
            if ev is _DONE:
                break
            yield ev
        yield stage_pb2.RunEvent(result=stage_pb2.Result(error=outcome.get("error", "")))


class _Health:
    """grpc.health.v1.Health, always serving."""

    def Check(self, request, context):
        return health_pb2.HealthCheckResponse(status=health_pb2.HealthCheckResponse.SERVING)

    def Watch(self, request, context):
        yield health_pb2.HealthCheckResponse(status=health_pb2.HealthCheckResponse.SERVING)
        # The status never changes; hold the stream open until the caller
        # ends it, without holding a worker thread after that.
        ended = threading.Event()
        context.add_callback(ended.set)
        ended.wait()


class _Stdio:
    """plugin.GRPCStdio: the plugin's stdout, chunk by chunk."""

    def __init__(self, chunks, stop):
        self.chunks, self.stop = chunks, stop

    def StreamStdio(self, request, context):
        while not self.stop.is_set():
            try:
                data = self.chunks.get(timeout=0.5)
            except queue.Empty:
                continue
            yield goplugin_pb2.StdioData(channel=goplugin_pb2.StdioData.STDOUT, data=data)


class _Controller:
    """plugin.GRPCController: the host asks the plugin to exit."""

    def __init__(self, stop):
        self.stop = stop

    def Shutdown(self, request, context):
        self.stop.set()
        return goplugin_pb2.Empty()


def _handlers(service, impl, methods):
    """A generic handler for service with methods {name: (kind, request
    type, response type)}, kind "unary" or "stream" (server streaming)."""
    table = {}
    for name, (kind, req_t, resp_t) in methods.items():
        make = grpc.unary_unary_rpc_method_handler if kind == "unary" else grpc.unary_stream_rpc_method_handler
        table[name] = make(getattr(impl, name), request_deserializer=req_t.FromString,
                           response_serializer=resp_t.SerializeToString)
    return grpc.method_handlers_generic_handler(service, table)


def _refuse(msg):
    sys.stderr.write(msg + "\n")
    sys.stderr.flush()
    sys.exit(1)


def _listen(server):
    lo, hi = os.environ.get("PLUGIN_MIN_PORT"), os.environ.get("PLUGIN_MAX_PORT")
    if lo and hi:
        for port in range(int(lo), int(hi) + 1):
            try:
                if server.add_insecure_port("127.0.0.1:{}".format(port)):
                    return port
            except RuntimeError:
                continue
        _refuse("voxflow plugin: no free port in PLUGIN_MIN_PORT..PLUGIN_MAX_PORT ({}..{})".format(lo, hi))
    return server.add_insecure_port("127.0.0.1:0")


def _capture_stdout(chunks):
    """Points fd 1 at a pipe whose reader queues chunks for GRPCStdio, so
    print() and C libraries' output reach the host."""
    sys.stdout.flush()
    r, w = os.pipe()
    os.dup2(w, 1)
    os.close(w)

    def pump():
        while True:
            b = os.read(r, 65536)
            if not b:
                return
            chunks.put(b)

    threading.Thread(target=pump, name="stdout", daemon=True).start()


def serve(*stages, max_workers=16):
    """Serves the given stage kinds to a voxflow host until it asks the
    plugin to stop or goes away. Run from the plugin's main; never
    returns."""
    if os.environ.get(MAGIC_COOKIE_KEY) != MAGIC_COOKIE_VALUE:
        _refuse("This is a voxflow plugin: voxflow starts it (uses: plugin:{} in a spec, or `voxflow plugins`); "
                "it is not run by hand.".format(sys.argv[0]))
    versions = [v for v in os.environ.get("PLUGIN_PROTOCOL_VERSIONS", str(PROTOCOL_VERSION)).split(",") if v]
    if str(PROTOCOL_VERSION) not in versions:
        _refuse("voxflow plugin: speaks protocol version {}, the host wants {}".format(PROTOCOL_VERSION, ", ".join(versions)))
    kinds = {}
    for s in stages:
        k = s.describe().kind
        if not k or k in kinds:
            _refuse("voxflow plugin: stage kind {!r} is empty or served twice".format(k))
        kinds[k] = s

    stop = threading.Event()
    chunks = queue.Queue()
    # gRPC sets SO_REUSEPORT by default, with which two plugins asking for
    # port 0 can be handed the same port and have their connections
    # balanced between them: one instance's calls would reach another's
    # process, and closing one plugin would break the other's runs.
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=max_workers), options=[("grpc.so_reuseport", 0)])
    server.add_generic_rpc_handlers((
        _handlers("voxflow.plugins.v1.Stages", _Stages(kinds), {
            "Describe": ("unary", stage_pb2.DescribeRequest, stage_pb2.DescribeResponse),
            "Run": ("stream", stage_pb2.RunRequest, stage_pb2.RunEvent),
        }),
        _handlers("grpc.health.v1.Health", _Health(), {
            "Check": ("unary", health_pb2.HealthCheckRequest, health_pb2.HealthCheckResponse),
            "Watch": ("stream", health_pb2.HealthCheckRequest, health_pb2.HealthCheckResponse),
        }),
        _handlers("plugin.GRPCStdio", _Stdio(chunks, stop), {
            "StreamStdio": ("stream", goplugin_pb2.Empty, goplugin_pb2.StdioData),
        }),
        _handlers("plugin.GRPCController", _Controller(stop), {
            "Shutdown": ("unary", goplugin_pb2.Empty, goplugin_pb2.Empty),
        }),
    ))
    port = _listen(server)
    server.start()
    sys.stdout.write("{}|{}|tcp|127.0.0.1:{}|grpc\n".format(CORE_PROTOCOL_VERSION, PROTOCOL_VERSION, port))
    sys.stdout.flush()
    _capture_stdout(chunks)

    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    parent = os.getppid()
    # The host kills its plugins when it exits (a parent-death signal);
    # watching the parent as well covers a host that could not set one.
    while not stop.wait(0.5):
        if os.getppid() != parent:
            break
    server.stop(grace=1)
    os._exit(0)
