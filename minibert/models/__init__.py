"""Models: each family composes `minibert.nn` pieces; `registry` maps config names to classes."""
