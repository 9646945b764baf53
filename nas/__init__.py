"""THE PIPELINE: data, models, pruning, quantization, fine-tuning, the Optuna study, the Pareto front and plots."""
