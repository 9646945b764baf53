"""HOW MUCH a candidate costs on a device: device profiles (``device``), the cost-model interface and figures
with provenance (``cost``), the cost-model kinds chosen by what a profile provides (``kinds``, used through
``registry.cost_model``) and the runtimes that run an exported file on this machine (``runtimes``).

Imports ``search_spaces`` only (``search_spaces <- latency_models <- nas``).
"""
