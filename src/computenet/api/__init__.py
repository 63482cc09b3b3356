"""REST API of the service: ``create_app(settings)``."""
