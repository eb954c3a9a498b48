package report

import (
	"bytes"
	"context"
	"encoding/json"
	"encoding/xml"
	"errors"
	"fmt"
	"image"
	"image/png"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// cssNamedColors are the CSS/SVG colour keywords (CSS Color Module 4).
const cssNamedColors = `aliceblue antiquewhite aqua aquamarine azure beige bisque black blanchedalmond blue blueviolet
brown burlywood cadetblue chartreuse chocolate coral cornflowerblue cornsilk crimson cyan darkblue darkcyan
darkgoldenrod darkgray darkgreen darkgrey darkkhaki darkmagenta darkolivegreen darkorange darkorchid darkred
darksalmon darkseagreen darkslateblue darkslategray darkslategrey darkturquoise darkviolet deeppink deepskyblue
dimgray dimgrey dodgerblue firebrick floralwhite forestgreen fuchsia gainsboro ghostwhite gold goldenrod gray
green greenyellow grey honeydew hotpink indianred indigo ivory khaki lavender lavenderblush lawngreen
lemonchiffon lightblue lightcoral lightcyan lightgoldenrodyellow lightgray lightgreen lightgrey lightpink
lightsalmon lightseagreen lightskyblue lightslategray lightslategrey lightsteelblue lightyellow lime limegreen
linen magenta maroon mediumaquamarine mediumblue mediumorchid mediumpurple mediumseagreen mediumslateblue
mediumspringgreen mediumturquoise mediumvioletred midnightblue mintcream mistyrose moccasin navajowhite navy
oldlace olive olivedrab orange orangered orchid palegoldenrod palegreen paleturquoise palevioletred papayawhip
peachpuff peru pink plum powderblue purple rebeccapurple red rosybrown royalblue saddlebrown salmon sandybrown
seagreen seashell sienna silver skyblue slateblue slategray slategrey snow springgreen steelblue tan teal
thistle tomato turquoise violet wheat white whitesmoke yellow yellowgreen transparent currentcolor`

var (
	hexColor = regexp.MustCompile(`^#([0-9a-fA-F]{3}|[0-9a-fA-F]{6})$`)
	rgbColor = regexp.MustCompile(`^rgba?\(\s*\d{1,3}%?\s*,\s*\d{1,3}%?\s*,\s*\d{1,3}%?\s*(,\s*(0|1|0?\.\d+|\d{1,3}%)\s*)?\)$`)
	urlPaint = regexp.MustCompile(`^url\(#[^)]+\)$`)
)

// validColor reports whether v is a paint value every browser accepts.
func validColor(v string) bool {
	v = strings.TrimSpace(v)
	lv := strings.ToLower(v)
	if lv == "none" || hexColor.MatchString(v) || rgbColor.MatchString(lv) || urlPaint.MatchString(v) {
		return true
	}
	for _, n := range strings.Fields(cssNamedColors) {
		if lv == n {
			return true
		}
	}
	return false
}

// colorProps are the SVG attributes and style properties that hold colours.
func isColorProp(name string) bool {
	switch name {
	case "fill", "stroke", "color", "stop-color", "flood-color", "lighting-color":
		return true
	}
	return false
}

// validateSVG checks that b is well-formed XML with an <svg> root and that
// every colour, in an attribute or a style, parses.
func validateSVG(b []byte) error {
	d := xml.NewDecoder(bytes.NewReader(b))
	root := ""
	var bad []string
	for {
		tok, err := d.Token()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return fmt.Errorf("not well-formed XML: %w", err)
		}
		se, ok := tok.(xml.StartElement)
		if !ok {
			continue
		}
		if root == "" {
			root = se.Name.Local
		}
		for _, a := range se.Attr {
			if isColorProp(a.Name.Local) && !validColor(a.Value) {
				bad = append(bad, fmt.Sprintf("<%s %s=%q>", se.Name.Local, a.Name.Local, a.Value))
			}
			if a.Name.Local != "style" {
				continue
			}
			for _, decl := range strings.Split(a.Value, ";") {
				k, v, ok := strings.Cut(decl, ":")
				if ok && isColorProp(strings.TrimSpace(k)) && !validColor(v) {
					bad = append(bad, fmt.Sprintf("<%s style=\"...%s...\">", se.Name.Local, strings.TrimSpace(decl)))
				}
			}
		}
	}
	if root != "svg" {
		return fmt.Errorf("root element %q, want svg", root)
	}
	if len(bad) > 0 {
		return fmt.Errorf("%d colours a browser drops, e.g. %s", len(bad), strings.Join(bad[:min(3, len(bad))], ", "))
	}
	return nil
}

func TestValidateSVGRejectsWhatBrowsersDrop(t *testing.T) {
	good := `<svg xmlns="http://www.w3.org/2000/svg"><path style="fill:#1f77b4;stroke:rgb(0,0,0)" stroke="red"/><rect fill="none"/></svg>`
	if err := validateSVG([]byte(good)); err != nil {
		t.Fatalf("valid SVG rejected: %v", err)
	}
	for _, bad := range []string{
		// What gonum wrote for color.RGBA{31, 119, 180, 160}: seven digits.
		`<svg xmlns="http://www.w3.org/2000/svg"><path style="fill:none;stroke:#31BD11E"/></svg>`,
		`<svg xmlns="http://www.w3.org/2000/svg"><path fill="#12345"/></svg>`,
		`<svg xmlns="http://www.w3.org/2000/svg"><path fill="blu"/></svg>`,
		`<svg xmlns="http://www.w3.org/2000/svg"><path fill="red"></svg>`,
		`<html><path fill="red"/></html>`,
	} {
		if err := validateSVG([]byte(bad)); err == nil {
			t.Errorf("accepted %s", bad)
		}
	}
}

// TestFiguresShowTheirDataInChromium renders every figure of a 48-curve
// study in headless Chromium and checks, from the screenshot's pixels, that
// each panel's plotted area holds marks in the colour of every series.
func TestFiguresShowTheirDataInChromium(t *testing.T) {
	chromium, err := exec.LookPath("chromium")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("chromium is not installed; .ci/deps.sh installs Debian's chromium")
		}
		t.Skip("chromium not installed (apt-get install chromium); CI runs this test")
	}
	// 8 subjects x 6 ROIs: 48 curves per training stage, 2880 voxels.
	figDir := runStudy(t, studyShape{subjects: subjects(8), rois: []string{"V1v", "V2v", "hV4", "FFA-1", "PPA", "EBA"}, voxels: 60, epochs: 6})
	names := []string{"groups", "scatter", "rdiff", "improved", "probe", "curves-tune_cl", "curves-tune_mse"}

	// Lay every figure out at its own size, one under another, and take one
	// screenshot: one browser start for all figures.
	type placed struct {
		name      string
		meta      figureMeta
		top, w, h int
	}
	var figs []placed
	var page strings.Builder
	page.WriteString(`<!DOCTYPE html><html><head><style>body{margin:0;background:#fff}img{display:block}</style></head><body>`)
	width, height := 0, 0
	for _, n := range names {
		svg, err := os.ReadFile(filepath.Join(figDir, n+".svg"))
		if err != nil {
			t.Fatalf("figure %s: %v", n, err)
		}
		if err := validateSVG(svg); err != nil {
			t.Errorf("%s.svg: %v", n, err)
		}
		var m figureMeta
		b, err := os.ReadFile(filepath.Join(figDir, n+".json"))
		if err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(b, &m); err != nil {
			t.Fatalf("%s.json: %v", n, err)
		}
		if m.Caption == "" || len(m.Panels) == 0 || len(m.Series) == 0 {
			t.Fatalf("%s.json lacks caption, panels or series: %s", n, b)
		}
		// CSS pixels are 3/4 of a point.
		w, h := int(m.WidthPt*4/3+0.5), int(m.HeightPt*4/3+0.5)
		fmt.Fprintf(&page, `<img src="%s.svg" style="width:%dpx;height:%dpx">`, n, w, h)
		figs = append(figs, placed{n, m, height, w, h})
		width, height = max(width, w), height+h
	}
	page.WriteString(`</body></html>`)
	pagePath := filepath.Join(figDir, "all.html")
	if err := os.WriteFile(pagePath, []byte(page.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	shot := filepath.Join(t.TempDir(), "shot.png")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	start := time.Now()
	cmd := exec.CommandContext(ctx, chromium, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
		"--force-device-scale-factor=1", "--disable-background-networking", "--disable-component-update",
		"--disable-sync", "--no-first-run", "--user-data-dir="+filepath.Join(t.TempDir(), "profile"),
		fmt.Sprintf("--window-size=%d,%d", width, height), "--screenshot="+shot, "file://"+pagePath)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("chromium: %v\n%s", err, out)
	}
	t.Logf("chromium screenshot of %d figures (%dx%d px) in %v", len(figs), width, height, time.Since(start).Round(time.Millisecond))
	fh, err := os.Open(shot)
	if err != nil {
		t.Fatal(err)
	}
	img, err := png.Decode(fh)
	fh.Close()
	if err != nil {
		t.Fatal(err)
	}
	if b := img.Bounds(); b.Dx() < width || b.Dy() < height {
		t.Fatalf("screenshot is %v, want at least %dx%d", b, width, height)
	}
	keep := os.Getenv("VOXFLOW_KEEP_SHOTS")
	for _, f := range figs {
		crop := image.Rect(0, f.top, f.w, f.top+f.h)
		if keep != "" {
			savePNG(t, filepath.Join(keep, f.name+".png"), img, crop)
		}
		// Count, inside the panels' data areas, the pixels of each series'
		// exact colour (opaque marks keep it; anti-aliased edges do not).
		for _, s := range f.meta.Series {
			want, err := parseHex(s.Color)
			if err != nil {
				t.Fatalf("%s: series %s: %v", f.name, s.Name, err)
			}
			n := 0
			for _, p := range f.meta.Panels {
				r := image.Rect(int(p.X0*float64(f.w)), f.top+int(p.Y0*float64(f.h)), int(p.X1*float64(f.w))+1, f.top+int(p.Y1*float64(f.h))+1)
				n += countColor(img, r, want)
			}
			// A bar, a line or a marker of radius 2 pt paints at least a
			// few pixels of its exact colour; an invalid colour paints none
			// (the browser drops it) and a legend swatch lies outside the
			// data areas.
			need := 6 * min(s.Marks, 10)
			if n < need {
				t.Errorf("figure %s: series %q (%s, %d marks): %d pixels of its colour in the plotted areas, want >= %d",
					f.name, s.Name, s.Color, s.Marks, n, need)
			}
		}
	}
}

func parseHex(s string) ([3]uint8, error) {
	if !hexColor.MatchString(s) || len(s) != 7 {
		return [3]uint8{}, fmt.Errorf("colour %q is not #rrggbb", s)
	}
	v, _ := strconv.ParseUint(s[1:], 16, 32)
	return [3]uint8{uint8(v >> 16), uint8(v >> 8), uint8(v)}, nil
}

// countColor counts the pixels of r within a small tolerance of c.
func countColor(img image.Image, r image.Rectangle, c [3]uint8) int {
	r = r.Intersect(img.Bounds())
	n := 0
	for y := r.Min.Y; y < r.Max.Y; y++ {
		for x := r.Min.X; x < r.Max.X; x++ {
			pr, pg, pb, _ := img.At(x, y).RGBA()
			if near(pr>>8, c[0]) && near(pg>>8, c[1]) && near(pb>>8, c[2]) {
				n++
			}
		}
	}
	return n
}

func near(a uint32, b uint8) bool {
	d := int(a) - int(b)
	return d >= -6 && d <= 6
}

func savePNG(t *testing.T, path string, img image.Image, r image.Rectangle) {
	t.Helper()
	sub, ok := img.(interface {
		SubImage(image.Rectangle) image.Image
	})
	if !ok {
		t.Fatalf("screenshot image %T cannot be cropped", img)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	fh, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer fh.Close()
	if err := png.Encode(fh, sub.SubImage(r)); err != nil {
		t.Fatal(err)
	}
}
