"""What tests and benchmarks share: servers that play the far side."""
