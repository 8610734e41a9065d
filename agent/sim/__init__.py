"""Simulated packing stations: the demo, sample orders and parcels, and the station benchmark."""
