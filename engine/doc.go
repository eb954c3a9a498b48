// Package engine turns a loaded spec into executions recorded in the cache:
// it keys every stage instance, decides which the cache answers, and runs
// the rest in dependency order within the run's budgets.
//
// # Project
//
// Load reads a spec (engine/spec parses, validates and expands it), resolves
// each stage's `uses:` to a Kind through a Registry (builtin stages by name,
// plugin binaries by path or through the spec's `plugins:` table), and
// returns a Project: the Spec, the expanded Graph of instances in dependency
// order, and the Kind of each stage. Plan and Runner.Run work on a Project
// and never read the YAML again.
//
// # Keys
//
// An instance's Key (keys.go) is the BLAKE3 of its kind, its
// implementation identity (Kind.Impl: a builtin's code digest or a plugin
// binary's digest), its foreach labels, its canonical params and, per input
// port, the content digests and provenance of its input artifacts. Files
// and directories named by path params enter as the fingerprints of their
// content (fingerprint.go), so editing a data file changes the key. Equal
// keys mean equal outputs: a key the cache has a good execution of is
// reused, never rerun.
//
// # Deciding and scheduling
//
// Plan and Run walk instances in dependency order and ask one decider
// (decide.go) the same question of each: does a foreach selection keep it
// (select.go), what is its key, and does the cache hold a good execution
// of that key? Plan additionally explains each instance that would run
// (never run, forced, changed params, inputs, files or implementation);
// Run acts on the answer, and also checks that a hit's objects are intact
// (a damaged output is a miss), which Plan, writing nothing, leaves to
// the index. Because both share the decider, what plan shows is what run
// does.
//
// Run hands the instances to a scheduler (scheduler.go) that owns the
// run's state: each instance's status, the ready queue, the dependents to
// release when one finishes, and the CPU, memory and GPU budget in use
// (stages.Resources). It starts what is ready and fits, answers cache hits
// on the spot, and on a failure skips the failed instance's dependents and,
// without --keep-going, starts nothing new. Each started instance runs in
// an execution of its own: it takes the key's lock (another voxflow on the
// same cache may be computing it), runs up to 1+retries attempts, each in
// a fresh work directory (workdir.go), then stores the outputs.
// Cancelling the context stops running jobs and ends the run as
// interrupted; a failing cache index stops them too, and Run returns its
// error.
//
// # The executor seam
//
// The scheduler never runs a stage itself: it builds a Job (plain values:
// key, params, input artifact paths, resources, timeout, executor options)
// and hands it to an Executor (Runner.Executor; nil means a LocalExecutor
// that runs builtin kinds inline, without plugin processes; the CLI passes
// one with a ProcessExecutor). An executor returns once the job's
// outputs are complete under Job.OutDir, or fails, and honours the
// context and Job.Timeout. A remote executor (Remote() true) is not bound
// by the local budgets; one that detaches returns ErrDetached and the
// instance is recorded as submitted, for a later run to adopt.
//
// Executors are reached through drivers (ExecutorDriver) registered by
// name in an Executors value (executors.go): LocalDriver here, the Slurm
// driver in engine/slurm. Each driver checks its own spec options and owns
// its directory in the cache. The far end of a cluster executor is here
// too: WriteJobFile writes a Job for `voxflow exec-job`, and ExecJobFile
// runs it on the node, writing progress and a JobResult beside the job
// file (execjob.go).
//
// # What is recorded
//
// Through cache.Store, a run records itself (spec, variant, overrides,
// host, pid, status), every execution it made (key, canonical params and
// inputs, implementation, status, error, times, host, the log of the last
// attempt and, on success, the output tree and the metrics of
// metrics.json), and links each execution it made or reused to the run.
// Reused outputs are linked while the gc lock is held shared, so gc never
// removes what a live run relies on.
package engine
