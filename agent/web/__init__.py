"""The station page, the local HTTP API and the Prometheus metrics."""
