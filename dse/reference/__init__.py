"""Slow, plain-Python simulators that check the vectorized models (tests and validation only;
never on the hot path). Each takes one design point's parameters as plain numbers."""
