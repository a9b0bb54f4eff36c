"""`python -m services.review` runs the review service."""

from services.review.app import main

main()
