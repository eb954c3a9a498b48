package cache

import (
	"context"
	"errors"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func openTestStore(t *testing.T) *Store {
	t.Helper()
	s, err := Open(context.Background(), storeDir(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// putTestTree stores a small directory holding files and returns its digest.
func putTestTree(t *testing.T, s *Store, files map[string]string) Digest {
	t.Helper()
	src := t.TempDir()
	writeFiles(t, src, files)
	d, err := s.PutTree(context.Background(), src, true)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func record(t *testing.T, s *Store, e Execution) *Execution {
	t.Helper()
	if e.Status == "" {
		e.Status = StatusSucceeded
	}
	if e.Spec == "" {
		e.Spec = "nsd-cl"
	}
	if _, err := s.RecordExecution(context.Background(), &e); err != nil {
		t.Fatal(err)
	}
	return &e
}

func TestExecutionsRoundTripAndLookup(t *testing.T) {
	ctx := context.Background()
	s := openTestStore(t)
	out := putTestTree(t, s, map[string]string{"weights.safetensors": "w", "config.json": `{"arch":"alexnet-mini"}`})
	key := HashBytes([]byte("tune-cl key"))
	start := time.Date(2026, 11, 25, 10, 0, 0, 123456789, time.UTC)
	want := Execution{Key: key, Spec: "nsd-cl", Instance: "tune_cl[subj01,FFA-1]", Stage: "tune_cl", Kind: "tune-cl",
		Impl: string(HashBytes([]byte("impl"))), Params: `{"temperature":0.1}`, Inputs: `{"data":"abc"}`, Output: out,
		Status: StatusSucceeded, Start: start, End: start.Add(time.Minute), Host: "node7", Log: HashBytes(nil)}
	if _, err := s.PutBytes(ctx, nil); err != nil {
		t.Fatal(err)
	}
	e := record(t, s, want)
	got, err := s.Execution(ctx, e.ID)
	if err != nil {
		t.Fatal(err)
	}
	want.ID = e.ID
	if !got.Start.Equal(want.Start) || !got.End.Equal(want.End) {
		t.Errorf("times %v %v, want %v %v", got.Start, got.End, want.Start, want.End)
	}
	got.Start, got.End, want.Start, want.End = time.Time{}, time.Time{}, time.Time{}, time.Time{}
	if *got != want {
		t.Errorf("Execution = %+v\nwant %+v", *got, want)
	}
	if _, err := s.Execution(ctx, 9999); !errors.Is(err, ErrNotFound) {
		t.Errorf("Execution(9999): %v", err)
	}

	// A newer failed attempt under the same key does not shadow the success.
	record(t, s, Execution{Key: key, Instance: "tune_cl[subj01,FFA-1]", Status: StatusFailed, Error: "boom"})
	hit, ok, err := s.Lookup(ctx, key)
	if err != nil || !ok || hit.ID != e.ID {
		t.Fatalf("Lookup = %+v, %v, %v", hit, ok, err)
	}
	if _, ok, _ := s.Lookup(ctx, HashBytes([]byte("other"))); ok {
		t.Error("Lookup of an unknown key hit")
	}
	last, ok, err := s.LastForInstance(ctx, "nsd-cl", "tune_cl[subj01,FFA-1]")
	if err != nil || !ok || last.ID != e.ID {
		t.Errorf("LastForInstance = %+v, %v, %v", last, ok, err)
	}
	if _, ok, _ := s.LastForInstance(ctx, "other-spec", "tune_cl[subj01,FFA-1]"); ok {
		t.Error("LastForInstance matched another spec")
	}

	// Output gone (a file inside the tree): no hit.
	cfg, err := s.Sub(ctx, out, "config.json")
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Objects.Remove(cfg); err != nil {
		t.Fatal(err)
	}
	if _, ok, err := s.Lookup(ctx, key); ok || err != nil {
		t.Errorf("Lookup with a missing output file = %v, %v", ok, err)
	}
	putTestTree(t, s, map[string]string{"weights.safetensors": "w", "config.json": `{"arch":"alexnet-mini"}`})
	if _, ok, _ := s.Lookup(ctx, key); !ok {
		t.Error("Lookup after the output was put again missed")
	}
	if err := s.Invalidate(ctx, key); err != nil {
		t.Fatal(err)
	}
	if _, ok, _ := s.Lookup(ctx, key); ok {
		t.Error("Lookup hit an invalidated execution")
	}
	if x, _ := s.Execution(ctx, e.ID); !x.Invalid {
		t.Error("Invalid not set")
	}

	for _, bad := range []Execution{
		{Key: key, Instance: "x", Status: "running"},
		{Key: "nope", Instance: "x", Status: StatusSucceeded},
		{Key: key, Instance: "x", Status: StatusSucceeded, Output: "zz"},
	} {
		if _, err := s.RecordExecution(ctx, &bad); err == nil {
			t.Errorf("RecordExecution(%+v) accepted", bad)
		}
	}
}

func TestFindExecutions(t *testing.T) {
	ctx := context.Background()
	s := openTestStore(t)
	key := HashBytes([]byte("k"))
	for _, in := range []struct{ spec, inst string }{
		{"s", "tune_cl[subj01,FFA-1]"},
		{"s", "tune_cl[subj01,PPA]"},
		{"s", "tune_mse[subj01,PPA]"},
		{"s", "ridge"},
		{"t", "tune_cl[subj02,V1v]"},
	} {
		record(t, s, Execution{Key: key, Spec: in.spec, Instance: in.inst})
	}
	names := func(es []Execution) string {
		var n []string
		for _, e := range es {
			n = append(n, e.Instance)
		}
		return strings.Join(n, " ")
	}
	for _, c := range []struct {
		spec, pat string
		limit     int
		want      string
	}{
		{"s", "tune_cl", 0, "tune_cl[subj01,PPA] tune_cl[subj01,FFA-1]"},
		{"", "tune_cl", 0, "tune_cl[subj02,V1v] tune_cl[subj01,PPA] tune_cl[subj01,FFA-1]"},
		{"s", "tune_cl[subj01,FFA-1]", 0, "tune_cl[subj01,FFA-1]"},
		{"s", "*[subj01,PPA]", 0, "tune_mse[subj01,PPA] tune_cl[subj01,PPA]"},
		{"s", "tune_?l*", 0, "tune_cl[subj01,PPA] tune_cl[subj01,FFA-1]"},
		{"s", "", 2, "ridge tune_mse[subj01,PPA]"},
		{"s", "probe", 0, ""},
	} {
		got, err := s.FindExecutions(ctx, c.spec, c.pat, c.limit)
		if err != nil {
			t.Fatal(err)
		}
		if names(got) != c.want {
			t.Errorf("FindExecutions(%q, %q, %d) = %q, want %q", c.spec, c.pat, c.limit, names(got), c.want)
		}
	}
}

func TestRunsLinksAndMetrics(t *testing.T) {
	ctx := context.Background()
	s := openTestStore(t)
	r1 := &Run{Spec: "nsd-cl", SpecPath: "specs/nsd-cl.yaml", SpecDigest: "abc", Overrides: []string{"tune_cl.with.temperature=0.2", "seed=3"}}
	if _, err := s.BeginRun(ctx, r1); err != nil {
		t.Fatal(err)
	}
	r2 := &Run{Spec: "nsd-cl", Variant: "tau-0.05"}
	s.BeginRun(ctx, r2)
	r3 := &Run{Spec: "nsd-cl"}
	s.BeginRun(ctx, r3)

	got, err := s.Run(ctx, r1.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.Status != StatusRunning || got.PID != os.Getpid() || got.Host == "" || got.SpecPath != "specs/nsd-cl.yaml" ||
		strings.Join(got.Overrides, ";") != "tune_cl.with.temperature=0.2;seed=3" || !got.End.IsZero() || got.Start.IsZero() {
		t.Errorf("Run = %+v", got)
	}
	if err := s.EndRun(ctx, r1.ID, StatusFailed); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.Run(ctx, r1.ID); got.Status != StatusFailed || got.End.Before(got.Start) {
		t.Errorf("after EndRun: %+v", got)
	}
	if err := s.EndRun(ctx, 999, StatusFailed); !errors.Is(err, ErrNotFound) {
		t.Errorf("EndRun(999): %v", err)
	}
	if err := s.EndRun(ctx, r2.ID, "done"); err == nil {
		t.Error("EndRun accepted status done")
	}
	if _, err := s.Run(ctx, 999); !errors.Is(err, ErrNotFound) {
		t.Errorf("Run(999): %v", err)
	}
	runs, err := s.Runs(ctx, 2)
	if err != nil || len(runs) != 2 || runs[0].ID != r3.ID || runs[1].ID != r2.ID {
		t.Errorf("Runs(2) = %+v, %v", runs, err)
	}
	if l, ok, err := s.LatestRun(ctx, "nsd-cl", ""); err != nil || !ok || l.ID != r3.ID {
		t.Errorf("LatestRun base = %+v %v %v", l, ok, err)
	}
	if l, ok, _ := s.LatestRun(ctx, "nsd-cl", "tau-0.05"); !ok || l.ID != r2.ID {
		t.Errorf("LatestRun variant = %+v", l)
	}
	if _, ok, _ := s.LatestRun(ctx, "nsd-cl", "nope"); ok {
		t.Error("LatestRun of an unknown variant found one")
	}

	key := HashBytes([]byte("ridge"))
	a := record(t, s, Execution{Key: key, Instance: "ridge", RunID: r1.ID})
	b := record(t, s, Execution{Key: HashBytes([]byte("data")), Instance: "data", RunID: r1.ID})
	for _, l := range []struct {
		run, exec int64
		cached    bool
	}{{r1.ID, a.ID, false}, {r1.ID, b.ID, false}, {r3.ID, a.ID, true}, {r3.ID, b.ID, false}, {r3.ID, b.ID, true}} {
		if err := s.LinkRun(ctx, l.run, l.exec, l.cached); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.LinkRun(ctx, 999, a.ID, true); err == nil {
		t.Error("LinkRun to a missing run accepted (foreign keys off?)")
	}
	res, err := s.RunExecutions(ctx, r3.ID)
	if err != nil || len(res) != 2 || res[0].ID != a.ID || !res[0].Cached || !res[1].Cached || res[1].Instance != "data" || res[0].RunID != r1.ID {
		t.Errorf("RunExecutions = %+v, %v", res, err)
	}

	m := map[string]float64{"r.mean": 0.31, "r.early": -0.5, "improved_pct": 62.5, "r.const_voxel": math.NaN(), "big": math.Inf(1)}
	if err := s.RecordMetrics(ctx, a.ID, m); err != nil {
		t.Fatal(err)
	}
	if err := s.RecordMetrics(ctx, a.ID, map[string]float64{"r.mean": 0.32}); err != nil {
		t.Fatal(err)
	}
	back, err := s.Metrics(ctx, a.ID)
	if err != nil || len(back) != 5 || back["r.mean"] != 0.32 || back["r.early"] != -0.5 || !math.IsNaN(back["r.const_voxel"]) || !math.IsInf(back["big"], 1) {
		t.Errorf("Metrics = %v, %v", back, err)
	}
	if none, err := s.Metrics(ctx, b.ID); err != nil || len(none) != 0 {
		t.Errorf("Metrics of execution without any = %v, %v", none, err)
	}
}

func TestMigrateFromV1(t *testing.T) {
	ctx := context.Background()
	dir := storeDir(t)
	o, err := OpenObjects(dir)
	if err != nil {
		t.Fatal(err)
	}
	out, err := o.PutBytes(ctx, []byte("old output"))
	if err != nil {
		t.Fatal(err)
	}
	db, err := openDB(ctx, filepath.Join(dir, "index.db"))
	if err != nil {
		t.Fatal(err)
	}
	if err := migrate(ctx, db, 1); err != nil {
		t.Fatal(err)
	}
	// Rows as a v1 voxflow wrote them: no log or invalid columns yet.
	for _, q := range []string{
		`INSERT INTO runs (id, spec, status, start) VALUES (1, 'nsd-cl', 'succeeded', 1)`,
		`INSERT INTO executions (id, key, run_id, spec, instance, output, status, start, "end")
		 VALUES (7, '` + string(HashBytes([]byte("k"))) + `', 1, 'nsd-cl', 'ridge', '` + string(out) + `', 'succeeded', 5, 6)`,
		`INSERT INTO run_executions (run_id, exec_id, cached) VALUES (1, 7, 0)`,
		`INSERT INTO metrics (exec_id, name, value) VALUES (7, 'r.mean', 0.25)`,
	} {
		if _, err := db.ExecContext(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	if _, err := db.ExecContext(ctx, `SELECT invalid FROM executions`); err == nil {
		t.Fatal("v1 schema already has executions.invalid")
	}
	db.Close()

	s, err := Open(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	if v, err := s.Version(ctx); err != nil || v != SchemaVersion {
		t.Fatalf("version after Open = %d, %v", v, err)
	}
	e, ok, err := s.Lookup(ctx, HashBytes([]byte("k")))
	if err != nil || !ok || e.ID != 7 || e.Log != "" || e.Invalid || e.Output != out {
		t.Fatalf("Lookup of migrated execution = %+v, %v, %v", e, ok, err)
	}
	if m, _ := s.Metrics(ctx, 7); m["r.mean"] != 0.25 {
		t.Errorf("migrated metrics %v", m)
	}
	if res, _ := s.RunExecutions(ctx, 1); len(res) != 1 {
		t.Errorf("migrated links %v", res)
	}
	if err := s.Invalidate(ctx, e.Key); err != nil {
		t.Fatal(err)
	}
	s.Close()

	// Reopening is a no-op; a database from a newer voxflow is refused.
	s, err = Open(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.db.ExecContext(ctx, `UPDATE schema_version SET version = ?`, SchemaVersion+1); err != nil {
		t.Fatal(err)
	}
	s.Close()
	if _, err := Open(ctx, dir); err == nil || !strings.Contains(err.Error(), "newer") {
		t.Fatalf("Open of a newer schema: %v", err)
	}
}
