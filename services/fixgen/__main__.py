"""`python -m services.fixgen` runs the fixgen service."""

from services.fixgen.app import main

main()
