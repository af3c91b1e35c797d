"""The version of cdlib, importable by every layer without the package facade."""

__version__ = "0.1.0"
