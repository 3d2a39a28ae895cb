"""The Discord front: the bot client, places and checks, the error path, streaming, pages, buttons.

Only this package and `cogs/` import discord. It renders what the service returns and turns
Discord's interactions into service calls; no generation, settings or history logic lives here.
"""
