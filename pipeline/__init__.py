"""agentwatch stream processing, outputs and command line."""
