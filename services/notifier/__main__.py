"""`python -m services.notifier` runs the notifier service."""

from services.notifier.app import main

main()
