"""``fovea loadtest``: closed- and open-loop load, sweeps and latency-budget searches against a
running server, with windowed statistics, the server's own metrics, tables, JSON, CSV and charts."""
