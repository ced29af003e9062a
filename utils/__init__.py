"""Code shared by the exercise scripts: one-hot helpers, data, training, generation, checkpoints."""
