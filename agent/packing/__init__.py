"""The packing station at work: devices, orders and the outbox joined into verdicts, and the
process that runs it.
"""
