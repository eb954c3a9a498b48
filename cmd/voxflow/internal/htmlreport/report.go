// Package htmlreport renders one run as a self-contained HTML file: the
// spec, what ran (the plan as executed), metrics tables and every figure
// the run's stages produced, inlined as data URIs so the file needs no
// network and no other files.
package htmlreport

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"html/template"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/voxflow/voxflow/cache"
)

// maxFigureBytes bounds one inlined figure, so that a stray huge image
// cannot make the report unopenable.
const maxFigureBytes = 8 << 20

// Figure is one image produced by a stage.
type Figure struct {
	Instance string
	Name     string
	DataURI  template.URL
	// Caption is the "caption" of a sibling <name>.json (the report stage
	// writes one per figure); empty when there is none.
	Caption string
	// order is the sibling JSON's "order" (the report stage's own figure
	// order), else the walk's.
	order  int
	report bool // produced by a report-kind instance: shown first
}

// Row is one executed or reused instance.
type Row struct {
	Instance, Kind, Status, Key string
	Cached                      bool
	Duration                    string
	Metrics                     []Metric
}

// Metric is one named value.
type Metric struct {
	Name  string
	Value string
}

// Report is everything the template shows.
type Report struct {
	Run       cache.Run
	SpecText  string
	Generated string
	Rows      []Row
	Figures   []Figure
	Executed  int
	Cached    int
}

// Build gathers a run's report from the store.
func Build(ctx context.Context, store *cache.Store, runID int64) (*Report, error) {
	run, err := store.Run(ctx, runID)
	if err != nil {
		return nil, fmt.Errorf("run %d: %w", runID, err)
	}
	rep := &Report{Run: *run, Generated: time.Now().Format(time.RFC3339)}
	if b, err := os.ReadFile(run.SpecPath); err == nil {
		rep.SpecText = string(b)
	} else {
		rep.SpecText = fmt.Sprintf("(spec %s is no longer readable: %v)", run.SpecPath, err)
	}
	exs, err := store.RunExecutions(ctx, runID)
	if err != nil {
		return nil, err
	}
	sort.Slice(exs, func(i, j int) bool { return exs[i].Instance < exs[j].Instance })
	for _, e := range exs {
		row := Row{Instance: e.Instance, Kind: e.Kind, Status: e.Status, Key: e.Key.Short(), Cached: e.Cached,
			Duration: e.End.Sub(e.Start).Round(time.Millisecond).String()}
		if e.Cached {
			rep.Cached++
		} else {
			rep.Executed++
		}
		m, err := store.Metrics(ctx, e.ID)
		if err != nil {
			return nil, err
		}
		names := make([]string, 0, len(m))
		for k := range m {
			names = append(names, k)
		}
		sort.Strings(names)
		for _, k := range names {
			row.Metrics = append(row.Metrics, Metric{k, fmt.Sprintf("%.4g", m[k])})
		}
		rep.Rows = append(rep.Rows, row)
		if e.Output == "" {
			continue
		}
		figs, err := figures(ctx, store, e.Instance, e.Output)
		if err != nil {
			return nil, err
		}
		for i := range figs {
			figs[i].report = e.Kind == "report"
		}
		rep.Figures = append(rep.Figures, figs...)
	}
	// The study's figures (report stages) come before each stage's own
	// (per-instance training curves), in the order the report drew them.
	sort.SliceStable(rep.Figures, func(i, j int) bool {
		a, b := rep.Figures[i], rep.Figures[j]
		if a.report != b.report {
			return a.report
		}
		if a.Instance != b.Instance {
			return a.Instance < b.Instance
		}
		return a.order < b.order
	})
	return rep, nil
}

// figures collects the SVG and PNG files in an output tree.
func figures(ctx context.Context, store *cache.Store, instance string, out cache.Digest) ([]Figure, error) {
	root, err := store.Path(ctx, out)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", instance, err)
	}
	var figs []Figure
	err = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		mime := map[string]string{".svg": "image/svg+xml", ".png": "image/png"}[strings.ToLower(filepath.Ext(p))]
		if mime == "" {
			return nil
		}
		info, err := d.Info()
		if err != nil || info.Size() > maxFigureBytes {
			return err
		}
		if mime == "image/png" {
			// The same figure as SVG is sharper and smaller: show that one.
			if _, err := os.Stat(strings.TrimSuffix(p, filepath.Ext(p)) + ".svg"); err == nil {
				return nil
			}
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		cap, order := caption(p)
		if order < 0 {
			order = len(figs) + 1000
		}
		figs = append(figs, Figure{Instance: instance, Name: rel, Caption: cap, order: order,
			DataURI: template.URL("data:" + mime + ";base64," + base64.StdEncoding.EncodeToString(b))})
		return nil
	})
	return figs, err
}

// caption reads the caption and order of the figure at path from a sibling
// JSON file of the same base name, e.g. groups.json beside groups.svg. Any
// other JSON (a training curve's curve.json beside curve.png) has no
// "caption" string and yields "" and order -1.
func caption(path string) (string, int) {
	b, err := os.ReadFile(strings.TrimSuffix(path, filepath.Ext(path)) + ".json")
	if err != nil || len(b) > 1<<20 {
		return "", -1
	}
	var m struct {
		Caption *string `json:"caption"`
		Order   int     `json:"order"`
	}
	if json.Unmarshal(b, &m) != nil || m.Caption == nil {
		return "", -1
	}
	return *m.Caption, m.Order
}

// Write renders the report as HTML.
func (r *Report) Write(w io.Writer) error {
	return page.Execute(w, r)
}

var page = template.Must(template.New("report").Parse(`<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<title>voxflow report: {{.Run.Spec}} run {{.Run.ID}}</title>
<style>
body{font-family:system-ui,sans-serif;margin:2em auto;max-width:1100px;color:#222}
h1{font-size:1.5em} h2{border-bottom:1px solid #ccc;padding-bottom:.2em;margin-top:2em}
table{border-collapse:collapse;font-size:.9em} td,th{border:1px solid #ddd;padding:.25em .6em;text-align:left}
th{background:#f4f4f4} td.num{text-align:right;font-variant-numeric:tabular-nums}
pre{background:#f7f7f7;padding:1em;overflow:auto;font-size:.85em}
.figs{display:flex;flex-wrap:wrap;gap:1.5em} figure{margin:0;flex:1 1 480px;max-width:100%}
figure img{width:100%;height:auto;border:1px solid #eee} figcaption{font-size:.8em;color:#555}
figcaption b{color:#222;font-weight:600}
.cached{color:#777} .failed,.interrupted{color:#b00}
</style></head>
<body data-figures="{{len .Figures}}">
<h1>{{.Run.Spec}} — run {{.Run.ID}}{{if .Run.Variant}} (variant {{.Run.Variant}}){{end}}</h1>
<p>Status <b class="{{.Run.Status}}">{{.Run.Status}}</b>; started {{.Run.Start.Format "2006-01-02 15:04:05"}} on {{.Run.Host}};
{{.Executed}} executed, {{.Cached}} reused from the cache.
{{if .Run.Overrides}}Overrides: {{range .Run.Overrides}}<code>--set {{.}}</code> {{end}}{{end}}
Generated {{.Generated}}.</p>
<h2>Figures</h2>
<div class="figs">
{{range .Figures}}<figure data-figure><img alt="{{.Instance}} {{.Name}}" src="{{.DataURI}}"><figcaption><b>{{.Instance}} — {{.Name}}</b>{{if .Caption}}<br>{{.Caption}}{{end}}</figcaption></figure>
{{else}}<p>No figures in this run.</p>{{end}}
</div>
<h2>Stage instances</h2>
<table><tr><th>instance</th><th>kind</th><th>status</th><th>how</th><th>duration</th><th>key</th></tr>
{{range .Rows}}<tr><td>{{.Instance}}</td><td>{{.Kind}}</td><td class="{{.Status}}">{{.Status}}</td><td{{if .Cached}} class="cached"{{end}}>{{if .Cached}}cached{{else}}executed{{end}}</td><td class="num">{{.Duration}}</td><td><code>{{.Key}}</code></td></tr>
{{end}}</table>
<h2>Metrics</h2>
{{range .Rows}}{{if .Metrics}}<h3>{{.Instance}}</h3>
<table><tr><th>metric</th><th>value</th></tr>
{{range .Metrics}}<tr><td>{{.Name}}</td><td class="num">{{.Value}}</td></tr>
{{end}}</table>{{end}}{{end}}
<h2>Spec</h2>
<p><code>{{.Run.SpecPath}}</code></p>
<pre>{{.SpecText}}</pre>
<script>
// Marks each figure as rendered or not, so a headless browser can check.
window.addEventListener('load', function () {
  var ok = 0;
  document.querySelectorAll('figure[data-figure] img').forEach(function (img) {
    var good = img.complete && img.naturalWidth > 0;
    img.parentElement.setAttribute('data-rendered', good ? 'yes' : 'no');
    if (good) ok++;
  });
  document.body.setAttribute('data-rendered-ok', String(ok));
});
</script>
</body></html>
`))
