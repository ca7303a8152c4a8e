"""Spark: the laptop-tuned session with the Kafka connector, plans, timing and small data helpers."""
