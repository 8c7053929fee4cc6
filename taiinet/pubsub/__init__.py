"""Pubsub layer: the query language, the subscription index and content-based routing."""
