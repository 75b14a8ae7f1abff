"""Starting and stopping the local broker and influxd, in code, with readiness deadlines."""
