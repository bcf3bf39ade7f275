"""Evaluation: 3D Dice and HD95 per class on whole volumes, at native resolution."""
