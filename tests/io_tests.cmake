# io/ tests that need their own executable (gzip and friends).
