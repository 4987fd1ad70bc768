"""Trace writers and runners for external cycle-level simulators (DRAMsim3, NewtonSim)."""
