"""Diagnosis's pure rules: which commit is the suspect, and how sure we are."""
