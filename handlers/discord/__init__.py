"""Discord: discord.py 2.x edges of pipebot (rendering so far; see docs and issue 12)."""
