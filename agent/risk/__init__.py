"""The judgement: data-quality and risk rules, entry-grade checks, the on-device model and the
texts of each finding.
"""
