"""Tuning a model on the stream's own history: one Optuna study per job, in its own process."""
