"""What operators watch: Prometheus metrics, the health check, and logs tagged per SIP request."""
