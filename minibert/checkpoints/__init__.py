"""Checkpoints: Hugging Face models (`hf`: load and save; `files`: the files and their readers; `hub`: Hub names
through huggingface_hub's cache) and, for training, orbax train state."""
