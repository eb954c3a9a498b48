// Package cache is voxflow's content-addressed store: immutable objects named
// by their BLAKE3-256 digest on the filesystem (Objects), and a SQLite index
// of runs, stage executions and metrics beside them (Store). Only engine
// processes put objects, always through a Store, so every stored object is
// indexed; executors that run stages elsewhere hand their outputs back to
// the engine to store.
//
// # On disk
//
// The cache package owns everything below but work/ and the executors'
// directories, which the engine and its executors keep in the cache
// directory so that they share its filesystem (and, on a cluster, its
// mount) and are found again by a later run.
//
//	.voxflow/
//	  index.db            SQLite (WAL): objects, runs, executions,
//	                      run_executions, metrics, schema_version; stat
//	                      fingerprints of stored objects and materialised
//	                      trees (object_stats, tree_stats), and the stat
//	                      cache of files outside the store, such as data
//	                      roots (stat_cache, see statcache.go)
//	  objects/ab/cdef...  object bytes, read-only; name = BLAKE3 of bytes
//	  trees/<digest>/     read-only materialised trees (hardlinks to objects)
//	  tmp/                temp files and half-built trees; never visible as
//	                      objects
//	  locks/<key>         flock(2): one process computes a key at a time
//	  locks/gc.lock       flock(2): gc exclusive, runs shared (Protect)
//	  quarantine/         corrupt objects moved aside, <digest>.<time>;
//	                      never read by voxflow, kept for a post-mortem
//	  work/<key>/<att>/   the engine's scratch for one attempt at a key:
//	                      out/ (the outputs, stored if the attempt
//	                      succeeds) and log. <att> (hex time-pid-random) is
//	                      fresh for every attempt, retries and reruns alike,
//	                      and never reused. The engine holds a shared flock
//	                      on <att>/ while the attempt runs, a command
//	                      stage's supervisor holds out/ until its last
//	                      process is gone. Leftovers of killed runs are never
//	                      read; the key's next run removes them once neither
//	                      flock is held (procgroup.DirInUse). gc does not
//	                      look in work/.
//	  <executor>/         each executor's own directory, named after it
//	                      (engine.ExecutorDir), in a layout it owns: what it
//	                      must find again across runs, such as a cluster job
//	                      to adopt. Slurm keeps slurm/<key>/ with slurm.json
//	                      (the job last submitted), slurm.lock, and one
//	                      attempt-N/ per Slurm job (job.json, job.sbatch,
//	                      progress.jsonl, result.json, end.json, out/, the
//	                      Slurm log); see engine/slurm's Layout.
//
// A directory is stored as a manifest object: the 16-byte header
// "voxflow-tree v1\x00" followed by compact JSON
// {"entries":[{"name","kind":"file"|"dir","digest","size","exec"?}...]}
// sorted by name; a directory's size is the total of the files below it.
// The header is how Kind tells trees from files (see treeMagic).
//
// # Crash safety
//
// Every object is written to tmp/, fsynced and renamed into place; trees are
// built in tmp/ and renamed whole; the index records an object only after it
// is durable. A SIGKILL at any moment leaves at worst a file in tmp/, which
// GC removes once it is older than Store.Grace.
//
// # Integrity
//
// Objects are checked before they are read: Store.Path (what a stage's
// input paths come from) and Store.Intact (what a run calls before reusing
// a cached output) compare a stat fingerprint (size, mtime, ctime, inode)
// recorded when the object was stored, and rehash on mismatch. Materialised
// trees are checked entry by entry the same way; a swapped, added or
// removed file, or a symlink in place of trees/<digest>, gets the tree
// rebuilt from the objects. A corrupt object is quarantined, and every
// execution that produced it or consumed it (transitively, through the
// inputs executions record) is invalidated and named. Verify does the same
// for the whole store, trees/ included. Stages get inputs read-only (0444
// files, 0555 directories). Outputs may not contain symlinks: PutTree
// refuses them, naming the path, rather than store a target that could lie
// outside the stage's directory. An output file with other hard links, not
// owned by this user, or still open in another process is copied, never
// moved or chmodded, so no file outside the cache shares an inode with an
// object.
//
// # gc and runs
//
// A run takes locks/gc.lock shared (Protect) from the moment it decides to
// reuse an output, or stores a new one, until the execution is linked to
// the run; gc holds it exclusively while it computes what is live and
// deletes. gc keeps what runs still marked running with a live process
// link, so nothing a live run uses is deleted. gc deletes trees before the
// objects they contain, and renames materialised trees out of trees/
// before deleting them, so a gc killed at any point leaves every tree that
// is still present complete.
package cache
