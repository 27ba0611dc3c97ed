"""Downstream use of a trained model: pipelines mirroring Hugging Face's."""
