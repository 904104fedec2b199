"""Developer tools shipped with the gateway (code generation)."""
