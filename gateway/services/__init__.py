"""Thin gRPC servicers: translate messages to core models and map errors to status codes."""
