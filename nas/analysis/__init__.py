"""What a study found: the Pareto front, its tables, plots and reports."""
