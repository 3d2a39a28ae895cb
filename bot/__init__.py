"""The bot process: config, storage, the generation engine, the service layer and the console."""
