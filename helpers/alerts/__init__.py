"""The course's alert sink (one SQLite table, optional webhook) and a local webhook receiver."""
