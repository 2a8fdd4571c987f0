"""E-commerce AI operations platform: data generation, landing, quality, models and orchestration."""

__version__ = "0.1.0"
