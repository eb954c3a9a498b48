"""voxflow-torch: voxflow's training and feature kinds (pretrain, tune-cl,
tune-mse, features) on PyTorch, served as a voxflow plugin, so a spec moves
the heavy stages onto a lab's CUDA GPUs with one line and nothing
downstream changes: the same params, the same artifacts in and out
(safetensors with torchvision's names, the data artifact's .npy files),
the same losses. Run through the executable plugins/python/voxflow-torch."""
