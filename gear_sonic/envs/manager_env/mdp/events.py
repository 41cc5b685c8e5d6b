"""Event terms. The tracking task uses mjlab's domain randomisation (`dr.*`) and push events,
and resets through the motion command; task-specific events go here."""
