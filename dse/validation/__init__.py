"""Validation of the vectorized models against external simulators (DESIGN.md §6, ring 2)."""
