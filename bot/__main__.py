"""`python -m bot` runs the same CLI as the `pipebot` console script."""

from bot.main import main

main()
