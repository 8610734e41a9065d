"""Tools for the seller's compliance team: corrections and outcomes, seller scorecards, filer exports."""
