"""The web tier: ingest API, WebSockets, the Dash war-room and customer tracking pages."""
