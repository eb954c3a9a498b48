package data

import (
	"bufio"
	"context"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
)

// benchImages is the number of 425x425 PNGs BenchmarkAlgonautsImages
// decodes: 2,000 by default, VOXFLOW_BENCH_IMAGES to change it.
func benchImages(b *testing.B) int {
	if s := os.Getenv("VOXFLOW_BENCH_IMAGES"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 3 {
			b.Fatalf("VOXFLOW_BENCH_IMAGES=%q: expected an integer >= 3", s)
		}
		return n
	}
	return 2000
}

var (
	benchOnce sync.Once
	benchRoot string
	benchErr  error
)

// resetPeakRSS makes the kernel restart the VmHWM high-water mark, so the
// peak measured covers only the timed work (Linux >= 4.0).
func resetPeakRSS() { _ = os.WriteFile("/proc/self/clear_refs", []byte("5"), 0) }

// peakRSSMB reads VmHWM from /proc/self/status.
func peakRSSMB() float64 {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "VmHWM:"); ok {
			kb, _ := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 64)
			return kb / 1024
		}
	}
	return 0
}

// cpuSeconds is the process's user + system CPU time.
func cpuSeconds() float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return float64(ru.Utime.Nano()+ru.Stime.Nano()) / 1e9
}

// BenchmarkAlgonautsImages converts one subject of n 425x425 PNGs (the
// release's size) to 224x224 with the Algonauts reader: decode, area
// resize, stream into images.npy. It reports images/s and peak RSS in MB
// next to the size of the images written.
func BenchmarkAlgonautsImages(b *testing.B) {
	n := benchImages(b)
	benchOnce.Do(func() {
		benchRoot, benchErr = os.MkdirTemp("", "voxflow-bench-algo")
		if benchErr == nil {
			benchErr = WriteSynthAlgonauts(context.Background(), benchRoot, SynthAlgonautsOptions{
				Config: SynthConfig{Seed: 1, NImages: n, VoxelsPerROI: 4, Reps: 2}, Subjects: []string{"subj01"}, Size: 425})
		}
	})
	if benchErr != nil {
		b.Fatal(benchErr)
	}
	const size = 224
	opt := Options{ImageSize: size, ValFraction: 0.1, TestFraction: 0.1}
	runtime.GC()
	resetPeakRSS()
	cpu0 := cpuSeconds()
	b.ResetTimer()
	for range b.N {
		out := b.TempDir()
		if _, err := BuildAlgonauts(context.Background(), benchRoot, nil, opt, filepath.Join(out, "dataset")); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(n*b.N)/b.Elapsed().Seconds(), "img/s")
	// CPU time per image is steadier than img/s on a shared machine.
	b.ReportMetric(1000*(cpuSeconds()-cpu0)/float64(n*b.N), "cpu_ms/img")
	b.ReportMetric(peakRSSMB(), "peakRSS_MB")
	b.ReportMetric(float64(n*3*size*size)/(1<<20), "output_MB")
}

// BenchmarkSynthetic generates the default synthetic NSD-like artifact:
// 2,000 images at 64x64, one subject, every ROI.
func BenchmarkSynthetic(b *testing.B) {
	cfg := SynthConfig{Seed: 1, NImages: 2000, VoxelsPerROI: 40, Reps: 3}
	opt := Options{ImageSize: 64, ValFraction: 0.1, TestFraction: 0.1}
	for range b.N {
		if _, err := BuildSynthetic(context.Background(), cfg, []string{"subj01"}, opt, b.TempDir()); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(2000*b.N)/b.Elapsed().Seconds(), "img/s")
}
