"""DuckDB baseline for benches/engine.rs: the same unavailability rule in SQL (five consecutive
failures, the fifth within 30 s of the first; from the first of the earliest such five to the
completion of the next non-failure), total API downtime over the data. Prints JSON."""
import json, subprocess, sys, time

try:
    import duckdb
except ImportError:
    subprocess.check_call([sys.executable, "-m", "pip", "install", "-q", "duckdb"])
    import duckdb

csv = sys.argv[1]
# A database file beside the CSV (argument 2) keeps a hundred million rows out of memory.
con = duckdb.connect(sys.argv[2] if len(sys.argv) > 2 else ":memory:")
con.execute("SET memory_limit = '3GB'")
con.execute(f"""CREATE TABLE obs AS SELECT establishment, interface, request_id,
    epoch_ms(CAST(received_at AS TIMESTAMPTZ)) AS t,
    (status IS NULL OR status >= 500 OR coalesce(error_code, '') IN ('INTE', 'INTS')) AS fail,
    coalesce(latency_ms, 0) AS lat
  FROM read_csv('{csv}', header = true, types = {{'status': 'INTEGER', 'latency_ms': 'DOUBLE', 'error_code': 'VARCHAR', 'tpp': 'VARCHAR'}})""")
start = time.perf_counter()
total = con.execute("""
WITH s AS (
  SELECT *, SUM(CASE WHEN fail THEN 0 ELSE 1 END) OVER w AS run,
         LAG(t, 4) OVER w AS t4, LAG(fail, 4) OVER w AS f4
  FROM obs WINDOW w AS (PARTITION BY establishment, interface ORDER BY t, request_id)
), runs AS (
  SELECT s.*, LAG(run, 4) OVER (PARTITION BY establishment, interface ORDER BY t, request_id) AS run4 FROM s
), starts AS (
  SELECT establishment, interface, run, MIN(t4) AS start
  FROM runs WHERE fail AND f4 AND run4 = run AND t - t4 <= 30000 GROUP BY ALL
), obs_runs AS (
  -- The non-failure counted n ends the run of failures counted n - 1.
  SELECT establishment, interface, run - 1 AS run, t, lat FROM runs WHERE NOT fail
), ends AS (
  SELECT establishment, interface, run, MIN(t + round(lat)) AS finish FROM obs_runs GROUP BY ALL
)
SELECT coalesce(SUM(e.finish - s.start), 0) / 1000.0
FROM starts s JOIN ends e USING (establishment, interface, run)
WHERE s.interface = 'api'
""").fetchone()[0]
print(json.dumps({"seconds": time.perf_counter() - start, "api_downtime_s": total}))
