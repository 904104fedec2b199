"""Benchmarks: `make bench` (or `python -m bench`) runs the gateway-hop scenario.

Every process runs separately on loopback: an echo domain built with the SDK, a bare
grpc.aio pass-through proxy and the gateway; the load generator runs in the bench's
own process. Results are printed as tables and written to `bench/results/`.
"""
