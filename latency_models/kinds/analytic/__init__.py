"""The analytic kind: a device costed from its datasheet (``spec``: the profile section; ``model``: the roofline
cost model; ``kind``: its registration)."""
