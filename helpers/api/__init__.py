"""Lab 05's extract source: a real HTTP API serving the generated e-commerce events.

- :mod:`helpers.api.app`: the FastAPI app (time-range queries, cursor pages, bearer token, rate
  limits, injectable faults, health).
- :mod:`helpers.api.server`: start, stop and control the embedded service (like the Kafka broker).
- :mod:`helpers.api.extract`: the extract client (bounded retries) and the immutable daily snapshot.
"""
