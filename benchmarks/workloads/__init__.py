"""The workloads, one module per family: overhead (B1, B2), packing (B3, STG), batching (B4),
process (B6), memory (B8), on_ray (B7: legato's Ray backend against Ray); taskgraph holds the
task-graph data and list scheduling."""
