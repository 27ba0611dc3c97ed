"""Models: each family composes `minibert.nn` pieces; `auto` maps config names to modules and classes."""
