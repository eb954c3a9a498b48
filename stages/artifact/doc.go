// Package artifact defines the artifacts that stage kinds exchange, so that
// no kind has to import another to read its output:
//
//   - dataset (dataset.go): the data kind's output, an NSD-like layout of
//     images and per-ROI responses per subject and split, or a
//     classification set; manifests, paths and loaders.
//   - network (network.go): a network directory, config.json plus
//     weights.safetensors, as pretrain, tune-cl and tune-mse write it, and
//     the training curve (curve.json) they write beside it, which report
//     reads.
//   - features (features.go): one layer's outputs on every split of a
//     dataset, as the features kind writes it and ridge and probe read it.
//   - scores (scores.go): ridge's metrics.json and per-voxel r files, and
//     probe's metrics.json, which report and compare read.
//
// The formats are on disk and stable: a plugin in another language writes
// the same files (plugins/python/voxflow_torch does).
package artifact
