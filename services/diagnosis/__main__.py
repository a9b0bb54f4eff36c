"""`python -m services.diagnosis` runs the diagnosis service."""

from services.diagnosis.app import main

main()
