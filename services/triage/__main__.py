"""`python -m services.triage` runs the triage service."""

from services.triage.app import main

main()
