"""carebridge: health and social care record interoperability bridge."""

__version__ = "0.1.0"
