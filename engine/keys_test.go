package engine

import (
	"math"
	"strings"
	"testing"

	"github.com/voxflow/voxflow/internal/valuetest"
	"github.com/voxflow/voxflow/stages"
)

// Keys hash params in the plain-value codec's form: Key.Params holds the
// codec's bytes and reads back as the same values, and values that encode
// differently (1 and 1.0, -0 and 0) get different keys.
func TestKeysUseTheCodec(t *testing.T) {
	kind := &Kind{Desc: stages.Description{Kind: "k"}, Impl: "builtin:k:1"}
	inputs := map[string][]stages.Artifact{"data": {{Stage: "gen", Digest: "ab", Labels: map[string]string{"roi": "<V1>"}}}}
	labels := map[string]string{"roi": "<V1>"}
	seen := map[string]string{}
	for _, c := range valuetest.Cases() {
		key, err := ComputeKey(kind, stages.Params{"v": c.Value}, labels, inputs, nil)
		if err != nil {
			t.Errorf("%s: %v", c.Name, err)
			continue
		}
		if want := `{"v":` + c.JSON + `}`; key.Params != want {
			t.Errorf("%s: key params %s, want %s", c.Name, key.Params, want)
		}
		back, err := stages.DecodeValue([]byte(key.Params))
		if err != nil || !valuetest.Same(back, map[string]any{"v": c.Value}) {
			t.Errorf("%s: key params read back as %#v, %v", c.Name, back, err)
		}
		if other, dup := seen[string(key.Digest)]; dup {
			t.Errorf("%s and %s share a key", c.Name, other)
		}
		seen[string(key.Digest)] = c.Name
	}
	if key, err := ComputeKey(kind, stages.Params{}, labels, inputs, nil); err != nil || key.Inputs != `{"data":[{"digest":"ab","labels":{"roi":"<V1>"},"stage":"gen"}]}` {
		t.Errorf("inputs encode as %s, %v", key.Inputs, err)
	}
	for _, c := range valuetest.Bads() {
		_, err := ComputeKey(kind, c.Value.(map[string]any), nil, nil, nil)
		if err == nil || !strings.Contains(err.Error(), c.Path+":") {
			t.Errorf("%s: want an error naming %s, got %v", c.Name, c.Path, err)
		}
	}
}

// TestKeyDerivationPinned pins one key: if it fails, the derivation or the
// codec changed, and every cache would silently miss (or worse, hit). Bump
// keyDomain, note it in the README's cache section, and update want.
func TestKeyDerivationPinned(t *testing.T) {
	kind := &Kind{Desc: stages.Description{Kind: "ridge"}, Impl: "builtin:ridge:3:abc"}
	params := stages.Params{"alphas": []any{0.1, 1.0, int64(10)}, "zero": math.Copysign(0, -1), "name": "<&>"}
	inputs := map[string][]stages.Artifact{"features": {{Stage: "features", Output: "feat", Digest: "cd", Labels: map[string]string{"layer": "fc6"}}}}
	key, err := ComputeKey(kind, params, map[string]string{"subject": "subj01"}, inputs, nil)
	if err != nil {
		t.Fatal(err)
	}
	const want = "44eaae2d089197e2a9448db1dbda0c0c33f7710d117039c9cf279a0e81fd0b73"
	if string(key.Digest) != want {
		t.Errorf("key %s, want %s (keyDomain %s)", key.Digest, want, keyDomain)
	}
}

// Plan's reasons name what changed the key, including what plain JSON
// hides (an int become a float, 0 become -0) and a difference past the
// 60 characters a reason shows.
func TestDiffsSeeWhatTheKeySees(t *testing.T) {
	old := `{"a":1,"b":0.0,"c":"x","gone":true}`
	cur := `{"a":1.0,"b":-0.0,"c":"x","new":[1]}`
	got := strings.Join(paramDiff(old, cur), "; ")
	want := "param a 1 -> 1.0; param b 0 -> -0; param gone removed (was true); param new added ([1])"
	if got != want {
		t.Errorf("paramDiff = %q, want %q", got, want)
	}
	long := strings.Repeat("x", 80)
	oldIn := `{"data":[{"digest":"` + long + `a"}],"same":[]}`
	newIn := `{"data":[{"digest":"` + long + `b"}],"same":[]}`
	if got := inputDiff(oldIn, newIn); len(got) != 1 || got[0] != "input data changed" {
		t.Errorf("inputDiff = %q, want [input data changed]", got)
	}
	if got := paramDiff("", cur); len(got) != 1 || got[0] != "params changed" {
		t.Errorf("paramDiff of an unreadable record = %q", got)
	}
}
