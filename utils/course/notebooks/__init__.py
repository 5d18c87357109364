"""Notebook tooling: release (exercise stubs), execution, grading."""
