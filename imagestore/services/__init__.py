"""One module per operation; the only code that changes the store's state."""
