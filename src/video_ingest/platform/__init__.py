"""Reconciling the platform: the config file, `apply`, `status` and the Job reaper."""
