"""The landing contract, the simulated world that writes it, and landing itself."""
