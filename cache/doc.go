// Package cache is voxflow's content-addressed store: immutable objects named
// by their BLAKE3-256 digest on the filesystem (Objects), and a SQLite index
// of runs, stage executions and metrics beside them (Store).
//
// Objects needs only a shared filesystem, so Slurm workers on other hosts can
// put outputs without touching the database (the engine then calls
// Store.Index); only engine processes open the Store.
//
// # On disk
//
//	.voxflow/
//	  index.db            SQLite (WAL): objects, runs, executions,
//	                      run_executions, metrics, schema_version, stat
//	                      fingerprints (object_stats, tree_stats)
//	  objects/ab/cdef...  object bytes, read-only; name = BLAKE3 of bytes
//	  trees/<digest>/     read-only materialised trees (hardlinks to objects)
//	  tmp/                temp files; never visible as objects
//	  locks/<key>         flock(2) files
//	  locks/gc.lock       flock(2): gc exclusive, runs shared (Protect)
//	  quarantine/         corrupt objects moved aside, <digest>.<time>;
//	                      never read by voxflow, kept for a post-mortem
//	  work/<key>/<att>/   scratch of one attempt at a key: out/ (the
//	                      outputs, stored if the attempt succeeds) and log.
//	                      <att> (hex time-pid-random) is fresh for every
//	                      attempt, retries and reruns alike, and never
//	                      reused. The engine holds a shared flock on <att>/
//	                      while the attempt runs, a command stage's
//	                      supervisor holds out/ until its last process is
//	                      gone. Leftovers of killed runs are never read; the
//	                      key's next run (or gc) removes them once neither
//	                      flock is held (procgroup.DirInUse).
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
