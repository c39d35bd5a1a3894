"""data-management checks: datasets, versions and lineage, queries, pipelines, and a state machine over them."""
