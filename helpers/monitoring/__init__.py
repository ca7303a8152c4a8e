"""Lab 05 monitoring: metric definitions, batch pushes, alert rules, the dashboard and log shipping."""
