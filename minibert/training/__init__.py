"""Pretraining: corpus → token ids → masked batches → a jit-compiled, data-parallel train step → checkpoints."""
