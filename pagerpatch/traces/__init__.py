"""Stack traces and symbols: pure parsing shared by triage's fingerprint and diagnosis."""
