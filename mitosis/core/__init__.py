"""The pure core: parameters, fingerprints, records, trial ids and redaction, with no I/O."""
