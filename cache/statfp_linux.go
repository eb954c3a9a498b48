package cache

import (
	"io/fs"
	"os"
	"syscall"
)

// fingerprintOf is the stat fingerprint of a file: size, mtime, ctime and
// inode. Any write changes mtime and ctime; restoring mtime afterwards
// (utimes, even by root) still moves ctime, and replacing the file moves the
// inode, so content can change behind an unchanged fingerprint only through
// the raw device.
func fingerprintOf(fi fs.FileInfo) fingerprint {
	fp := fingerprint{Size: fi.Size(), MtimeNs: fi.ModTime().UnixNano()}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		fp.CtimeNs = st.Ctim.Sec*1e9 + st.Ctim.Nsec
		fp.Inode = st.Ino
	}
	return fp
}

// openElsewhere reports whether a process other than this one may hold the
// file f open (for reading or writing, or mapped). It asks for a write
// lease, which Linux grants only when f is the file's sole open
// description, and gives it back at once. Where leases are unavailable
// (some network and overlay filesystems, a file owned by someone else) the
// answer is conservatively yes, so the caller copies.
func openElsewhere(f *os.File) bool {
	fd := f.Fd()
	if _, _, e := syscall.Syscall(syscall.SYS_FCNTL, fd, syscall.F_SETLEASE, syscall.F_WRLCK); e != 0 {
		return true
	}
	syscall.Syscall(syscall.SYS_FCNTL, fd, syscall.F_SETLEASE, syscall.F_UNLCK)
	return false
}
