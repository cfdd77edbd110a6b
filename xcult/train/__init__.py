"""Training orchestration: presets, the torchrun launcher, export to Hugging Face."""
