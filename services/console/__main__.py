"""`python -m services.console` runs the console."""

from services.console.app import main

main()
