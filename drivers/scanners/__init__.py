"""Barcode-scanner wire modes: line mode and Zebra SSI packets, on a shared scanner base."""
