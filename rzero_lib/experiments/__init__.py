"""Experiments built on the whole library: each one a folder (the arithmetic sandbox)."""
