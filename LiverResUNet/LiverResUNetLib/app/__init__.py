"""The application layer: one module (or package) per command, above the core and the scene bridge."""
