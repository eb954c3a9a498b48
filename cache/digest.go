package cache

import (
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/zeebo/blake3"
)

// Digest is the lowercase hex BLAKE3-256 of an object's bytes.
type Digest string

// ErrNotFound is returned (wrapped) when an object, execution or run does not
// exist.
var ErrNotFound = errors.New("not found")

// hashBufSize is the read size for hashing and copying. BLAKE3 hashes
// independent 1 KiB chunks with SIMD, so large reads let the AVX2/AVX-512 code
// work on full batches and amortise the read syscalls.
const hashBufSize = 1 << 20

// Short returns the first 12 hex digits, enough to name an object to a human.
func (d Digest) Short() string {
	if len(d) <= 12 {
		return string(d)
	}
	return string(d[:12])
}

// String returns the full hex digest.
func (d Digest) String() string { return string(d) }

// Valid reports whether d is 64 lowercase hex digits.
func (d Digest) Valid() bool {
	if len(d) != 64 {
		return false
	}
	for i := 0; i < len(d); i++ {
		c := d[i]
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// ParseDigest checks that s is a well-formed digest. Digests become file names,
// so everything that reaches the filesystem goes through this check.
func ParseDigest(s string) (Digest, error) {
	d := Digest(s)
	if !d.Valid() {
		return "", fmt.Errorf("parse digest %q: want 64 lowercase hex digits", s)
	}
	return d, nil
}

// HashBytes returns the digest of b.
func HashBytes(b []byte) Digest {
	sum := blake3.Sum256(b)
	return Digest(hex.EncodeToString(sum[:]))
}

// HashFile streams the file at path through BLAKE3 and returns its digest and
// size.
func HashFile(path string) (Digest, int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", 0, fmt.Errorf("hash %s: %w", path, err)
	}
	defer f.Close()
	d, n, err := hashReader(f, make([]byte, hashBufSize))
	if err != nil {
		return "", 0, fmt.Errorf("hash %s: %w", path, err)
	}
	return d, n, nil
}

// hashReader hashes r to EOF using buf for reads.
func hashReader(r io.Reader, buf []byte) (Digest, int64, error) {
	h := blake3.New()
	var n int64
	for {
		k, err := io.ReadFull(r, buf)
		if k > 0 {
			h.Write(buf[:k])
			n += int64(k)
		}
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			break
		}
		if err != nil {
			return "", n, err
		}
	}
	return digestOf(h), n, nil
}

func digestOf(h *blake3.Hasher) Digest {
	return Digest(hex.EncodeToString(h.Sum(nil)))
}
