"""Talking to Prefect: reaching its API (or an embedded server), its services, what it recorded, UI links."""
