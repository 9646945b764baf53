"""HOW MUCH a candidate costs: model size now; device latency and energy tables arrive with later issues.

Imports ``search_spaces`` only (``search_spaces <- latency_models <- nas``).
"""
