"""The HTTP API: the only FastAPI code in carebridge (``create_app`` builds it)."""
