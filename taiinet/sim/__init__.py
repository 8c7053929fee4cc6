"""Discrete-event simulator: drives the same protocol cores as the trio runtime."""
