package cache

import (
	"encoding/hex"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/zeebo/blake3"
)

func TestHashFileMatchesBlake3(t *testing.T) {
	dir := t.TempDir()
	rng := rand.New(rand.NewPCG(1, 2))
	// Sizes straddle BLAKE3's 1 KiB chunk and the 1 MiB read buffer.
	for _, n := range []int{0, 1, 1023, 1024, 1025, 64 << 10, hashBufSize - 1, hashBufSize, 3*hashBufSize + 17} {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(rng.UintN(256))
		}
		p := filepath.Join(dir, strconv.Itoa(n))
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		sum := blake3.Sum256(b)
		want := Digest(hex.EncodeToString(sum[:]))
		got, size, err := HashFile(p)
		if err != nil {
			t.Fatal(err)
		}
		if got != want || size != int64(n) {
			t.Errorf("HashFile(%d bytes) = %s, %d; want %s, %d", n, got, size, want, n)
		}
		if hb := HashBytes(b); hb != want {
			t.Errorf("HashBytes(%d bytes) = %s; want %s", n, hb, want)
		}
	}
	// The BLAKE3 test vector for empty input pins the encoding too.
	if got := HashBytes(nil); got != "af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262" {
		t.Errorf("HashBytes(nil) = %s", got)
	}
	if _, _, err := HashFile(filepath.Join(dir, "absent")); err == nil {
		t.Error("HashFile of a missing file succeeded")
	}
}

func TestDigestHelpers(t *testing.T) {
	d := HashBytes([]byte("voxflow"))
	if !d.Valid() || len(d.Short()) != 12 || string(d)[:12] != d.Short() {
		t.Fatalf("digest %q: Valid %v Short %q", d, d.Valid(), d.Short())
	}
	if _, err := ParseDigest(string(d)); err != nil {
		t.Error(err)
	}
	for _, bad := range []string{"", "abc", "../../etc/passwd", string(d[:63]) + "G", string(d) + "0"} {
		if _, err := ParseDigest(bad); err == nil {
			t.Errorf("ParseDigest(%q) accepted", bad)
		}
	}
}

// BenchmarkHashFile hashes a temp file of VOXFLOW_BENCH_HASH_MB MiB (default
// 256) that sits in the page cache, so it measures BLAKE3 plus read(2).
func BenchmarkHashFile(b *testing.B) {
	mb := 256
	if s := os.Getenv("VOXFLOW_BENCH_HASH_MB"); s != "" {
		v, err := strconv.Atoi(s)
		if err != nil || v <= 0 {
			b.Fatalf("VOXFLOW_BENCH_HASH_MB=%q: want a positive integer", s)
		}
		mb = v
	}
	p := filepath.Join(b.TempDir(), "big")
	f, err := os.Create(p)
	if err != nil {
		b.Fatal(err)
	}
	chunk := make([]byte, 1<<20)
	rng := rand.New(rand.NewPCG(3, 4))
	for i := range chunk {
		chunk[i] = byte(rng.UintN(256))
	}
	for range mb {
		if _, err := f.Write(chunk); err != nil {
			b.Fatal(err)
		}
	}
	if err := f.Close(); err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(mb) << 20)
	b.ResetTimer()
	for b.Loop() {
		if _, _, err := HashFile(p); err != nil {
			b.Fatal(err)
		}
	}
}
