"""Feedback for learners: grading of their own tests, DAG practice checks and Spark code checks."""
