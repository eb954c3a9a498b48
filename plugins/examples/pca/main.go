// Command voxflow-pca is an example third-party voxflow plugin, of the kind
// a lab writes: kind "pca" reduces features artifacts to their top principal
// components before the encoding models are fit.
//
// Build it with `make plugins` (bin/voxflow-pca) and use it from a spec:
//
//	stages:
//	  pca:
//	    uses: plugin:./bin/voxflow-pca
//	    inputs: {features: features}
//	    with: {components: 64}
//
// Output port `features`. With one input it is a features artifact itself,
// in the input's layout (features.json at its root, "dim" set to the number
// of components, a "pca" entry added). With several inputs it holds one such
// artifact per input in a sub-directory named after the input's stage (plus
// its labels, e.g. features_cl,roi=FFA-1) and an index.json listing them.
// Every directory holding a train.npy is one fit: the components are fit on
// train.npy (per subject for NSD features) and applied to every split there;
// labels and classes files are copied unchanged.
package main

import "github.com/voxflow/voxflow/plugins"

func main() { plugins.Serve(Stage{}) }
