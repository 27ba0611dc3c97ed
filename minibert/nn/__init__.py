"""Building blocks, one idea per module, shared by every family."""
