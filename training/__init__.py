"""Megatron-Core training, launched by torchrun (`python -m training.train --job JOB`)."""
