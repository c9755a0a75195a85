"""`python -m authserver` runs the operator CLI."""

from authserver.cli import main

main()
