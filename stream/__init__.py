"""Stream processing: the event contract, the per-SKU state machine and the Faust worker."""
