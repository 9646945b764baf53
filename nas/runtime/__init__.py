"""Lowering a candidate to the runtime a device uses and running it there: export, verification, parity."""
