"""medsift: health signals in social media (ADE detection and opioid-impact span tagging)."""

__version__ = "0.1.0"
