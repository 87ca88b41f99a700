"""Remote file stores. Each kind wraps its I/O library in one module behind `Source`."""
