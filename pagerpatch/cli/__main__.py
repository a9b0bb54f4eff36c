"""`python -m pagerpatch.cli`: the same CLI as the `pagerpatch` command."""

from pagerpatch.cli import main

main()
