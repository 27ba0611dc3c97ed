"""Checkpoints: Hugging Face directories (`hf`) and, for training, orbax train state."""
