"""Training callbacks: objects with optional hooks on_train_start(trainer),
on_iteration_end(trainer, iteration, metrics) and on_train_end(trainer)."""
