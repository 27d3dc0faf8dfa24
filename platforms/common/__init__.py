"""Code both platforms share: it may import functions.ports and functions.domain, never platforms.local or .azure."""
