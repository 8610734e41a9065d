"""The shared contract every part depends on: records and their schemas, canonical JSON, signing
and verification, durable SQLite, errors. Imports nothing else of prescreen.
"""
