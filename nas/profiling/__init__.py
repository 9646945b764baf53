"""Profiling a device: micro-models exported through the project's own exporter, timed in the runtime, turned
into the device's latency table (``latency_models`` reads it; this stage writes it, because it needs the
exporter, which lives in the pipeline)."""
