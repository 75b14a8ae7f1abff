"""Configuration: typed settings from the environment and YAML rule files."""
