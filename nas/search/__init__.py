"""The search: a problem and its context, one trial's objective, the Optuna study."""
