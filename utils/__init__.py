"""What both exercises share: the course's one-hot helpers, checkpoints, devices, torchrun, errors, paths."""
