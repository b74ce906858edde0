"""The physics: memory (bytes) and time (seconds) of one batch, vectorised with numpy; never imports pulp."""
