"""A user's own trained Flax model: traced, discovered as a model graph, and handed to the same pipeline."""
