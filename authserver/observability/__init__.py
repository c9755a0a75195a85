"""What operators see of a running server: the audit trail (`audit`), Prometheus metrics
(`metrics`, kept fresh by `sampler`) and the log lines of `serve` (`logs`)."""
