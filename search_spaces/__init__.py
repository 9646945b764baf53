"""WHAT may vary: model families as data, per-layer knobs and rules, and what the runtime can run.

This package imports nothing else of the project (``search_spaces <- latency_models <- nas``).
"""
