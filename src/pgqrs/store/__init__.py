"""Storage: connecting, the Store facade, the executor seam and one module per backend."""
