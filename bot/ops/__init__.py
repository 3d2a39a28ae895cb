"""Operations: metrics, health, structured logs and backups, for owners who run the bot."""
