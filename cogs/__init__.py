"""Discord-only front: one feature per module, each a thin layer over bot.service."""
