"""The offload kind: an accelerator beside a host device (``spec``: the profile section; ``model``: the split
cost model; ``kind``: its registration)."""
