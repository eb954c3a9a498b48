package main

import (
	"context"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// A 1x1 red PNG.
const tinyPNG = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAIAAACQd1PeAAAADElEQVR4nGP4z8AAAAMBAQDJ/pLvAAAAAElFTkSuQmCC"

func TestReportRendersInHeadlessChromium(t *testing.T) {
	chromium, err := exec.LookPath("chromium")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("chromium is not installed; .ci/run installs Debian's chromium")
		}
		t.Skip("chromium not installed (apt-get install chromium); CI runs this test")
	}
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "r.yaml"), `name: r
description: "<script>alert('spec')</script>"
stages:
  plots:
    uses: command
    with:
      cmd: |
        printf '<svg xmlns="http://www.w3.org/2000/svg" width="120" height="80"><rect width="100" height="60" fill="teal"/></svg>' > bars.svg
        echo `+tinyPNG+` | base64 -d > dot.png
        echo '{"caption": "Teal <b>bars</b>, one per group."}' > bars.json
        echo '{"score": 0.5}' > metrics.json
      outs: [bars.svg, dot.png]
`)
	if r := vox(t, dir, "run", "r.yaml"); r.code != 0 {
		t.Fatalf("run:\n%s", r)
	}
	r := vox(t, dir, "report", "1", "-o", "report.html")
	if r.code != 0 || !strings.Contains(r.stdout, "2 figures") {
		t.Fatalf("report:\n%s", r)
	}
	html := readFile(t, filepath.Join(dir, "report.html"))
	if strings.Contains(html, "<script>alert") {
		t.Fatal("user strings must be escaped in the report")
	}
	// The report stage writes <figure>.json with a caption beside each
	// figure; the page shows it, escaped.
	if !strings.Contains(html, "Teal &lt;b&gt;bars&lt;/b&gt;, one per group.") {
		t.Fatal("the caption from bars.json is missing under its figure")
	}
	if regexp.MustCompile(`(src|href)="(https?:)?//`).MatchString(html) {
		t.Fatal("the report must not load anything from the network")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, chromium, "--headless", "--no-sandbox", "--disable-gpu",
		"--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run",
		"--user-data-dir="+filepath.Join(dir, "chrome-profile"), "--virtual-time-budget=5000",
		"--dump-dom", "file://"+filepath.Join(dir, "report.html"))
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("chromium: %v\n%s", err, out)
	}
	dom := string(out)
	m := regexp.MustCompile(`data-rendered-ok="(\d+)"`).FindStringSubmatch(dom)
	if m == nil || m[1] != "2" || strings.Contains(dom, `data-rendered="no"`) {
		t.Fatalf("every figure should render in chromium; rendered=%v\n%.2000s", m, dom)
	}

	// Loaded is not shown: look at the page's pixels. The teal SVG bar
	// and the red PNG dot, each scaled to its figure's width, must cover
	// a good patch of the screenshot.
	shot := filepath.Join(dir, "page.png")
	cmd = exec.CommandContext(ctx, chromium, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
		"--force-device-scale-factor=1", "--disable-background-networking", "--disable-component-update",
		"--disable-sync", "--no-first-run", "--user-data-dir="+filepath.Join(dir, "chrome-profile"),
		"--window-size=1200,1400", "--screenshot="+shot, "file://"+filepath.Join(dir, "report.html"))
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("chromium screenshot: %v\n%s", err, out)
	}
	fh, err := os.Open(shot)
	if err != nil {
		t.Fatal(err)
	}
	img, err := png.Decode(fh)
	fh.Close()
	if err != nil {
		t.Fatal(err)
	}
	teal, red := 0, 0
	b := img.Bounds()
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			r, g, bl, _ := img.At(x, y).RGBA()
			r, g, bl = r>>8, g>>8, bl>>8
			switch {
			case r < 8 && g > 120 && g < 136 && bl > 120 && bl < 136:
				teal++
			case r > 240 && g < 16 && bl < 16:
				red++
			}
		}
	}
	if teal < 5000 || red < 5000 {
		t.Fatalf("the report's figures do not show in the screenshot: %d teal pixels (SVG), %d red (PNG), want >= 5000 each", teal, red)
	}
}
