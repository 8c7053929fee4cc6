"""Overlay layer: HyParView membership and Plumtree broadcast."""
