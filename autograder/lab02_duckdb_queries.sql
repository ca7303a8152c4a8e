-- Lab 02 benchmark (make bench): the Spark queries of the lab in DuckDB, on the same Parquet files.
-- Instructor material: the window query is the answer to Task 2.2 in SQL. {events} and {users} are
-- replaced by the Parquet paths. Queries are separated by lines starting with "-- name:".

-- name: daily_segment_revenue
SELECT CAST(e.event_time AS DATE) AS day, u.segment, count(*) AS orders, round(sum(e.amount), 2) AS revenue
FROM read_parquet('{events}') e JOIN read_parquet('{users}') u USING (user_id)
WHERE e.event_type = 'purchase'
GROUP BY ALL;

-- name: segment_summary
SELECT u.segment, count(*) AS orders, count(DISTINCT e.user_id) AS buyers,
       round(sum(e.amount), 2) AS revenue, round(avg(e.amount), 2) AS avg_order
FROM read_parquet('{events}') e JOIN read_parquet('{users}') u USING (user_id)
WHERE e.event_type = 'purchase'
GROUP BY ALL;

-- name: window_features
SELECT count(*) AS n, count(days_since_prev_event) AS gaps, sum(spend_7d) AS s7, sum(spend_30d) AS s30
FROM (
  SELECT (epoch(event_time) - lag(epoch(event_time)) OVER (PARTITION BY user_id ORDER BY event_time, event_id)) / 86400.0
           AS days_since_prev_event,
         sum(CASE WHEN event_type = 'purchase' THEN amount ELSE 0 END) OVER (
           PARTITION BY user_id ORDER BY epoch(event_time) RANGE BETWEEN 604800 PRECEDING AND CURRENT ROW) AS spend_7d,
         sum(CASE WHEN event_type = 'purchase' THEN amount ELSE 0 END) OVER (
           PARTITION BY user_id ORDER BY epoch(event_time) RANGE BETWEEN 2592000 PRECEDING AND CURRENT ROW) AS spend_30d
  FROM read_parquet('{events}')
);
