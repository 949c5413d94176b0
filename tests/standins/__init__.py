"""Real-protocol stand-ins for external services, usable from tests and benchmarks."""
