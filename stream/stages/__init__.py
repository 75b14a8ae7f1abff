"""Pipeline stages that plug the pure geo, delays and alerting cores into the worker."""
