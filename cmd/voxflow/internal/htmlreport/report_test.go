package htmlreport

import (
	"os"
	"path/filepath"
	"testing"
)

// TestCaptionReadsOnlyFigureMetadata: the report stage's groups.json gives
// groups.svg its caption and place; a training stage's curve.json (no
// "caption") beside curve.png gives none.
func TestCaptionReadsOnlyFigureMetadata(t *testing.T) {
	dir := t.TempDir()
	for name, body := range map[string]string{
		"groups.json": `{"caption": "Mean test r per ROI group.", "order": 0, "panels": []}`,
		"curve.json":  `{"epochs": [{"epoch": 1, "val_loss": 2}]}`,
		"broken.json": `{"caption": `,
	} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		fig     string
		caption string
		order   int
	}{
		{"groups.svg", "Mean test r per ROI group.", 0},
		{"curve.png", "", -1},
		{"broken.svg", "", -1},
		{"none.svg", "", -1},
	} {
		c, o := caption(filepath.Join(dir, tc.fig))
		if c != tc.caption || o != tc.order {
			t.Errorf("%s: caption %q order %d, want %q %d", tc.fig, c, o, tc.caption, tc.order)
		}
	}
}
