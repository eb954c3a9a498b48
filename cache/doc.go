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
//	                      run_executions, metrics, schema_version
//	  objects/ab/cdef...  object bytes, read-only; name = BLAKE3 of bytes
//	  trees/<digest>/     read-only materialised trees (hardlinks to objects)
//	  tmp/                temp files; never visible as objects
//	  locks/<key>         flock(2) files
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
package cache
