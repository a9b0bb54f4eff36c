"""Diagnosis's pure rules: which lines of a frame matter, which commits are set aside (cosmetic, test-only), which
is the suspect, how sure we are, what to replay, and the report a reviewer reads. Plain values in, plain values
out: git is reached only through the use case's ports."""
