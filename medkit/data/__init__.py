"""Data: volumes on disk or the built-in phantom -> in-memory 2D slices -> splits -> augmented batches."""
