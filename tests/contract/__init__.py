"""One contract for every ReleaseStore: SQLite (local) and Azure Table Storage (on Azurite)."""
