"""Data, baseline training, compiled fine-tuning and accuracy evaluation."""
