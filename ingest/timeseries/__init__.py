"""Time-series access: the one home of everything that speaks to InfluxDB.

- `lineprotocol`: reading batches → line protocol, the only producer of those bytes
  (live writes and spool replay alike), with the escaping of names;
- `influxql`: every InfluxQL statement (reads, counts, schema DDL), with the quoting of
  identifiers and string literals;
- `client`: the v1 HTTP API (`/ping`, `/write`, `/query`) and the schema set-up;
- `history`: one device's stored values (a metric's history, the newest of each metric);
- `readings`: many series' stored readings as batches, for a backtest.
"""
