"""Real-time logic: room actors, sessions, the broker between processes. No web framework."""
