"""Streaming on Kafka: the bounded stream loop with its dead-letter queue, metrics, consumer groups."""
