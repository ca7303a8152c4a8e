"""Kafka clients (produce, read back, fail fast) and admin queries (topics, offsets, groups, lag)."""
