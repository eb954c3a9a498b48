//go:build !linux

package cache

import (
	"io/fs"
	"os"
	"syscall"
)

// fingerprintOf is the stat fingerprint of a file. Off Linux the ctime is
// not read (its field name differs per system); size, mtime and inode still
// catch ordinary writes and replacements.
func fingerprintOf(fi fs.FileInfo) fingerprint {
	fp := fingerprint{Size: fi.Size(), MtimeNs: fi.ModTime().UnixNano()}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		fp.Inode = uint64(st.Ino)
	}
	return fp
}

// openElsewhere reports whether another process may hold f open. Off Linux
// there is no cheap way to tell, so the answer is conservatively yes.
func openElsewhere(f *os.File) bool { return true }
