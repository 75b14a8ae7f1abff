"""Configuration: typed settings from the environment and YAML rule files."""

from pathlib import Path

#: The YAML rule files shipped with the package.
PACKAGE_CONFIG_DIR = Path(__file__).resolve().parent
