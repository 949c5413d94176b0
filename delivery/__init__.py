"""Email delivery: providers, templates, failover policy and provider webhooks."""
