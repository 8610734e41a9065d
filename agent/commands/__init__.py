"""The ``prescreen`` command line, one module per audience (station, customs, compliance, ops)."""
