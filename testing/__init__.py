"""Test support shared by tests/ and bench/: the fake Discord server (testing.fakediscord)."""
