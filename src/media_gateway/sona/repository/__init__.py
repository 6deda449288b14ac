"""Every SQL statement of SONA: its own `sona` schema, and its reads of the catalog."""
