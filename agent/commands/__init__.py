"""The ``prescreen`` command line, one module per audience (station, sim, compliance, screening,
customs, records, ops), what they share in ``helpers`` and the parser built in ``main``."""
