"""Generated from protos/federation/v1. Do not edit; run `make proto`."""
