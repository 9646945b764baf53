"""The measured kind: latency tables timed on the device (``model``: the cost model; ``kind``: its registration)."""
