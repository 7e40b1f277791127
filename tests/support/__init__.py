"""Helpers shared by the test packages (shards, manifests, servers); importable as `support.*`."""
