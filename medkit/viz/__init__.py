"""Figures. Every function returns a matplotlib Figure and runs headless."""
