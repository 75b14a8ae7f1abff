"""Order Radar: the command line and the local development stack."""
