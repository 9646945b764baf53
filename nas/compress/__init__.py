"""Compression of a network: the Flax model with masks and fake quantization, pruning, quantization, shrinking."""
